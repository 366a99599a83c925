import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {defaultSettings, fqdn, shorewallParamFor} from '../source/settings/schema.js';
import {SettingsStore} from '../source/settings/store.js';
import {completeSettings, macProblem, SettingsError, validateSettings} from '../source/settings/validate.js';

const valid = () => ({...defaultSettings('gallifrey-dev'), sourceLv: 'f3e8d23f.disk0'});

test('defaults follow the seed', () => {
	const settings = defaultSettings('gallifrey-dev');
	assert.equal(settings.vg, 'all');
	assert.equal(fqdn(settings), 'gallifrey-dev.xivo.vm.farm');
	assert.equal(settings.sshPort, 22_006);
	assert.equal(settings.shorewallParam, 'VM_GALLIFREY_DEV_XIVO');
	assert.equal(settings.memory, '4G');
	assert.equal(settings.balloonMemory, '1G');
	assert.equal(shorewallParamFor('web.xivo.vm'), 'VM_WEB_XIVO');
});

test('port follows the last octet of a custom IP', () => {
	const settings = completeSettings({name: 'b', ip: '10.10.60.42', sourceLv: 'x'});
	assert.equal(settings.sshPort, 22_042);
});

test('valid settings have no errors', () => {
	assert.deepEqual(validateSettings(valid()), []);
});

const badValues: Array<[string, unknown, RegExp]> = [
	['name', 'Bad_Name', /DNS label/],
	['ip', '10.10.60.300', /IPv4/],
	['mac', '01:00:5e:00:00:01', /multicast/],
	['mac', '00:16:3e:00:00:01', /locally administered/],
	['sshPort', 70_000, /1 to 65535/],
	['vg', 'all vg', /LVM names/],
	['targetLv', 'f3e8d23f.disk0', /source volume/],
	['shorewallParam', '1VM', /shell variable/],
	['zoneFile', 'etc/bind/db.farm', /absolute/],
	['snapshotSize', 'lots', /LVM size/],
	['dhcpRestart', [], /command words/],
	['record', 'gallifrey-dev.xivo.vm.', /relative/],
	['balloonMemory', '8G', /more than memory/],
];

for (const [field, value, reason] of badValues) {
	test(`refuses ${field} = ${JSON.stringify(value)}`, () => {
		const errors = validateSettings({...valid(), [field]: value});
		const error = errors.find((entry) => entry.field === field);
		assert.ok(error, `no error for ${field}`);
		assert.match(error.reason, reason);
	});
}

test('unknown fields are refused by name', () => {
	const errors = validateSettings({...valid(), colour: 'blue'});
	assert.deepEqual(
		errors.map((error) => [error.field, error.reason]),
		[['colour', 'unknown setting']],
	);
});

test('completeSettings lists every bad field in its message', () => {
	assert.throws(
		() => completeSettings({name: 'x', ip: 'nope', sshPort: 0, sourceLv: 'a'}),
		(error: unknown) =>
			error instanceof SettingsError &&
			/ip = "nope"/.test(error.message) &&
			/sshPort = 0/.test(error.message) &&
			error.errors.length === 2,
	);
});

test('macProblem accepts 52:54 MACs', () => {
	assert.equal(macProblem('52:54:86:b3:3f:10'), undefined);
	assert.match(macProblem('52:54:86:b3:3f') ?? '', /not a MAC/);
});

test('the store keeps farms in FARMCLONE_CONFIG_DIR and re-validates on read', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-settings-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	const store = new SettingsStore(dir);
	store.save(valid());
	assert.equal(path.dirname(store.path), dir);
	assert.deepEqual(
		store.list().map((farm) => farm.name),
		['gallifrey-dev'],
	);
	const text = JSON.parse(await fs.readFile(store.path, 'utf8')) as {farms: Record<string, {ip: string}>};
	text.farms['gallifrey-dev']!.ip = 'broken';
	await fs.writeFile(store.path, JSON.stringify(text));
	assert.throws(() => new SettingsStore(dir).get('gallifrey-dev'), /ip = "broken"/);
	assert.throws(() => store.save({...valid(), sshPort: -1}), SettingsError);
	assert.equal(store.remove('gallifrey-dev'), true);
	assert.equal(store.remove('gallifrey-dev'), false);
});
