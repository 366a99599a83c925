import assert from 'node:assert/strict';
import {test} from 'node:test';
import {madeLines, whatWasMade} from '../source/engine/made.js';
import {createHeadlessPrinter} from '../source/headless.js';
import type {FarmSettings} from '../source/settings/schema.js';

const settings = {
	name: 'gallifrey-dev',
	record: 'gallifrey-dev.xivo.vm',
	zone: 'farm',
	ip: '10.0.0.6',
	mac: 'aa:00:00:00:00:01',
	sshPort: 22006,
	serverName: 'gallifrey-dev.example.org',
	listen: '80',
	memory: '4G',
	balloonMemory: '2G',
} as FarmSettings;

const states = {
	'dhcp-host': {mac: 'aa:00:00:00:00:06'},
	identity: {sshHostKeys: ['256 SHA256:abc root@gallifrey-dev (ED25519)']},
	'dns-record': {backup: '/var/lib/farmclone/gallifrey-dev/backups/db.farm'},
	copy: {bootId: 'not for people'},
};

test('what a run made names the address, ssh command, url, keys and backups', () => {
	const lines = madeLines(whatWasMade(settings, states)).join('\n');
	assert.match(lines, /10\.0\.0\.6/);
	assert.match(lines, /MAC aa:00:00:00:00:06/);
	assert.match(lines, /ssh -p 22006 root@gallifrey-dev\.example\.org/);
	assert.match(lines, /url: http:\/\/gallifrey-dev\.example\.org\//);
	assert.match(lines, /SHA256:abc/);
	assert.match(lines, /^ {2}backups in \/var\/lib\/farmclone\/gallifrey-dev\/backups\/:\n {4}db\.farm$/m);
	assert.deepEqual(
		lines.split('\n').filter((line) => line.length > 80),
		[],
	);
	assert.doesNotMatch(lines, /bootId/);
});

test('a headless run-end of a done run prints what was made; --json carries it', () => {
	const made = whatWasMade(settings, states);
	const event = {type: 'run-end', farm: 'gallifrey-dev', outcome: 'done', made} as const;
	const text: string[] = [];
	createHeadlessPrinter({json: false, write: (line) => text.push(line), stages: []})(event);
	assert.match(text.join('\n'), /ssh -p 22006 root@gallifrey-dev\.example\.org/);
	const json: string[] = [];
	createHeadlessPrinter({json: true, write: (line) => json.push(line), stages: []})(event);
	assert.equal(JSON.parse(json[0]!).made.ssh, 'ssh -p 22006 root@gallifrey-dev.example.org');
});

test("the backups made list every edited file's backup, the firewall's and nginx's too, not those an undo wrote", () => {
	// The state of a run whose firewall was rolled back and run again: each stage keeps its own names.
	const rerun = {
		identity: states.identity,
		'dns-record': {...states['dns-record'], undoBackup: '/state/backups/db.farm.undo'},
		'dhcp-host': {...states['dhcp-host'], backup: '/state/backups/dhcpd.conf.1'},
		'firewall-rule': {paramsBackup: '/state/backups/params.2', rulesBackup: '/state/backups/rules.2'},
		'firewall-restart': {saved: 'farmclone-gallifrey-dev'},
		'reverse-proxy': {backup: '/state/backups/gallifrey-dev.example.org.1'},
	};
	assert.deepEqual(whatWasMade(settings, rerun).backups, [
		'/var/lib/farmclone/gallifrey-dev/backups/db.farm',
		'/state/backups/dhcpd.conf.1',
		'/state/backups/params.2',
		'/state/backups/rules.2',
		'/state/backups/gallifrey-dev.example.org.1',
	]);
});
