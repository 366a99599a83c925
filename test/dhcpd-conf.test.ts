import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {parseBraceConfig} from '../source/host/brace-config.js';
import {
	addDhcpHost,
	DhcpConflictError,
	dhcpdErrors,
	inspectDhcpd,
	normalizeMac,
	parseDhcpdConf,
	removeDhcpHost,
} from '../source/host/dhcpd-conf.js';
import {splitLines} from '../source/host/markers.js';

const request = {
	name: 'gallifrey-dev.xivo.vm.farm',
	fqdn: 'gallifrey-dev.xivo.vm.farm',
	mac: '52:54:86:b3:3f:10',
	ip: '10.10.60.6',
	subnetMask: '255.255.255.0',
	farm: 'gallifrey-dev',
};

/** Debian's dhcpd.conf with the farm's subnet and hosts, strings holding `#`, `{` and `;`. */
const farmConf = `# dhcpd.conf
#
# Sample configuration file for ISC dhcpd
#

option domain-name "farm";
option domain-name-servers 10.10.60.1;
# a string with the characters that matter: "#", "{", ";"
option domain-search "farm", "xivo.vm.farm";
filename "pxelinux { 0 }; # not a comment";

default-lease-time 600;
max-lease-time 7200;
ddns-update-style none;
authoritative;

subnet 10.10.60.0 netmask 255.255.255.0 {
	range 10.10.60.100 10.10.60.200;
	option routers 10.10.60.1;
	option broadcast-address 10.10.60.255;
}

host gallifrey.xivo.vm.farm {
	hardware ethernet 52:54:a2:31:7c:01;
	fixed-address gallifrey.xivo.vm.farm;
	option subnet-mask 255.255.255.0;
}

host build.xivo.vm.farm {
	hardware ethernet 52:54:a2:31:7c:02;
	fixed-address 10.10.60.7;
}

# printers live elsewhere
`;

function dhcpdCheck(t: import('node:test').TestContext, text: string): {ok: boolean; output: string} {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-dhcpd-'));
	t.after(() => fs.rmSync(dir, {recursive: true, force: true}));
	const file = path.join(dir, 'dhcpd.conf');
	fs.writeFileSync(file, text);
	const result = spawnSync('dhcpd', ['-t', '-cf', file], {encoding: 'utf8'});
	return {ok: result.status === 0, output: result.stdout + result.stderr};
}

test('adds a marked host block after the last top-level host; dhcpd -t accepts it', (t) => {
	const edit = addDhcpHost(farmConf, request);
	assert.equal(edit.added.length, 5);
	const lines = splitLines(edit.text);
	const hostLine = lines.indexOf('host gallifrey-dev.xivo.vm.farm { # farmclone:gallifrey-dev');
	assert.equal(lines[hostLine - 1], '}');
	assert.equal(lines[hostLine - 2], '\tfixed-address 10.10.60.7;');
	assert.deepEqual(lines.slice(hostLine + 1, hostLine + 5), [
		'\thardware ethernet 52:54:86:b3:3f:10; # farmclone:gallifrey-dev',
		'\tfixed-address 10.10.60.6; # farmclone:gallifrey-dev',
		'\toption subnet-mask 255.255.255.0; # farmclone:gallifrey-dev',
		'} # farmclone:gallifrey-dev',
	]);
	const check = dhcpdCheck(t, edit.text);
	assert.ok(check.ok, check.output);
	assert.doesNotMatch(check.output, /Host declarations are global/);
	assert.equal(inspectDhcpd(edit.text, request).status, 'ours');
});

test('idempotent, and undo gives the original bytes back', () => {
	const edit = addDhcpHost(farmConf, request);
	assert.equal(addDhcpHost(edit.text, request).text, edit.text);
	const undone = removeDhcpHost(edit.text, request.farm);
	assert.equal(undone.text, farmConf);
	assert.equal(undone.removed.length, 5);
});

test('keeps CRLF and four-space indentation; hosts only inside groups: block goes at the end', (t) => {
	const conf = [
		'authoritative;',
		'shared-network farm {',
		'    subnet 10.10.60.0 netmask 255.255.255.0 {',
		'        option routers 10.10.60.1;',
		'    }',
		'    subnet 10.10.61.0 netmask 255.255.255.0 {',
		'    }',
		'}',
		'group {',
		'    option domain-name "vms.farm";',
		'    host old { hardware ethernet 52:54:00:00:00:09; fixed-address 10.10.61.9; }',
		'}',
		'',
	].join('\r\n');
	const edit = addDhcpHost(conf, request);
	assert.ok(edit.text.startsWith(conf));
	const tail = edit.text.slice(conf.length);
	assert.equal(tail.split('\r\n').length, 6);
	assert.doesNotMatch(tail.replaceAll('\r\n', ''), /\n/);
	assert.match(tail, /^ {4}hardware ethernet/m);
	assert.equal(inspectDhcpd(conf, request).subnet, '10.10.60.0 netmask 255.255.255.0');
	const check = dhcpdCheck(t, edit.text);
	assert.ok(check.ok, check.output);
	assert.equal(removeDhcpHost(edit.text, request.farm).text, conf);
});

test('a file without a final newline gets its bytes back', () => {
	const conf = farmConf.replace('# printers live elsewhere\n', '').trimEnd();
	const edit = addDhcpHost(conf, request);
	assert.equal(removeDhcpHost(edit.text, request.farm).text, conf);
});

test('one-line host blocks: after the last one, unless more statements follow it on its line', () => {
	const subnet = 'subnet 10.10.60.0 netmask 255.255.255.0 { }\n';
	const alone = `${subnet}host a { fixed-address 10.10.60.9; } host b { fixed-address 10.10.60.8; } # b\n# end\n`;
	assert.match(splitLines(addDhcpHost(alone, request).text)[2]!, /^host gallifrey-dev/);
	const followed = `${subnet}host a { fixed-address 10.10.60.9; } default-lease-time 600;\n# end\n`;
	const lines = splitLines(addDhcpHost(followed, request).text);
	assert.equal(lines[2], '# end');
	assert.match(lines[3]!, /^host gallifrey-dev/);
});

test('conflicts: name, MAC in any spelling, fixed-address as IP or name, outside subnets, in a range', (t) => {
	const cases: Array<[string, RegExp]> = [
		['host GALLIFREY-DEV.xivo.vm.farm { hardware ethernet 52:54:00:00:00:01; }', /already uses the name/],
		['host other { hardware ethernet 52:54:86:B3:3F:10; }', /already has hardware ethernet/],
		['host other { hardware ethernet 52:54:86:b3:3f:1; }', /^$/],
		['host other { fixed-address 10.10.60.4, 10.10.60.6; }', /already has fixed-address 10\.10\.60\.6/],
		['host other { fixed-address gallifrey-dev.xivo.vm.farm; }', /already has fixed-address gallifrey-dev/],
	];
	for (const [extra, expected] of cases) {
		const conf = `${farmConf}${extra}\n`;
		const {conflicts} = inspectDhcpd(conf, request);
		if (expected.source === '^$') {
			assert.deepEqual(conflicts, [], extra);
			continue;
		}

		assert.equal(conflicts.length, 1, extra);
		assert.match(conflicts[0]!, expected);
		assert.throws(() => addDhcpHost(conf, request), DhcpConflictError);
	}

	// dhcpd -t lets these through; the clone would fight another machine for its address.
	const sharedMac = `${farmConf}host other { hardware ethernet 52:54:86:b3:3f:10; fixed-address 10.10.60.6; }\n`;
	assert.ok(dhcpdCheck(t, addDhcpHostUnchecked(sharedMac)).ok);
	const outside = inspectDhcpd(farmConf, {...request, ip: '10.10.99.6'});
	assert.match(outside.conflicts[0]!, /10\.10\.99\.6 is in no declared subnet \(10\.10\.60\.0\/255\.255\.255\.0\)/);
	const inRange = inspectDhcpd(farmConf, {...request, ip: '10.10.60.150'});
	assert.match(inRange.conflicts[0]!, /inside the dynamic range 10\.10\.60\.100-10\.10\.60\.200/);
});

/** The block added without our checks, to show what dhcpd -t alone accepts. */
function addDhcpHostUnchecked(text: string): string {
	return `${text}host gallifrey-dev.xivo.vm.farm {\n\thardware ethernet 52:54:86:b3:3f:10;\n\tfixed-address 10.10.60.6;\n}\n`;
}

test('the seed’s block written by hand counts as done, and undo leaves it', () => {
	const conf = `${farmConf}host gallifrey-dev.xivo.vm.farm {
        hardware ethernet 52:54:86:b3:3f:10;
        fixed-address gallifrey-dev.xivo.vm.farm;
        option subnet-mask 255.255.255.0;
    }
`;
	assert.equal(inspectDhcpd(conf, request).status, 'manual');
	assert.deepEqual(addDhcpHost(conf, request).added, []);
	assert.equal(removeDhcpHost(conf, request.farm).text, conf);
});

test('include statements are reported, not followed', () => {
	const state = inspectDhcpd(`${farmConf}include "/etc/dhcp/vms.conf";\n`, request);
	assert.deepEqual(state.conflicts, []);
	assert.equal(state.notes.length, 1);
	assert.match(state.notes[0]!, /include "\/etc\/dhcp\/vms\.conf" is not read/);
});

test('no MAC yet: refused', () => {
	assert.throws(() => addDhcpHost(farmConf, {...request, mac: ''}), /no MAC address/);
	assert.equal(inspectDhcpd(farmConf, {...request, mac: ''}).conflicts.length, 0);
});

test('the parser survives comments, strings, nesting, and says where a brace is missing', () => {
	const parsed = parseDhcpdConf(farmConf);
	assert.deepEqual(
		parsed.hosts.map((host) => [host.name, host.macs, host.fixedAddresses]),
		[
			['gallifrey.xivo.vm.farm', ['52:54:a2:31:7c:01'], ['gallifrey.xivo.vm.farm']],
			['build.xivo.vm.farm', ['52:54:a2:31:7c:02'], ['10.10.60.7']],
		],
	);
	assert.deepEqual(parsed.ranges, [{low: '10.10.60.100', high: '10.10.60.200', line: 17}]);
	assert.throws(
		() => parseBraceConfig('subnet 1.2.3.0 netmask 255.255.255.0 {\n  host x {\n'),
		/line 2: "\{" never closed/,
	);
	assert.throws(() => parseBraceConfig('option a 1\n}\n'), /line 2/);
	assert.equal(normalizeMac('52:54:0:B3:3F:1'), '52:54:00:b3:3f:01');
});

test('dhcpdErrors keeps the complaint, not the banner', (t) => {
	const check = dhcpdCheck(t, 'option foo-bar 1;\n');
	assert.equal(check.ok, false);
	const errors = dhcpdErrors(check.output);
	assert.match(errors, /line 1: unknown option dhcp\.foo-bar/);
	assert.doesNotMatch(errors, /Internet Systems Consortium|If you think/);
});
