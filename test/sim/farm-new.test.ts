import assert from 'node:assert/strict';
import {randomUUID} from 'node:crypto';
import {test} from 'node:test';
import {execa} from 'execa';
import {SettingsStore} from '../../source/settings/store.js';
import {withGanetiState} from '../../source/sim/ganeti-state.js';
import {simFarm} from '../../source/sim/tree.js';
import {cli, farmTree, makeFarm, treeDifferences} from '../kit/farm.js';

/**
 * `farmclone farm new` against a simulated farm: the settings read off the
 * cluster and the files, the farm tree byte for byte as it was, and the new
 * farm's plan passing the preflight. The kit's farm gallifrey-dev is saved
 * with 10.10.60.6, the zone holds .7 and .8: the new farm gets .9 and 22009.
 */
test('farm new: a farm by discovery, read-only until it saves', {timeout: 300_000}, async (t) => {
	const farm = await makeFarm(t);
	const farmclone = async (...args: string[]) =>
		execa(process.execPath, [cli, ...args], {env: farm.env, reject: false});
	// An instance without a disk (a diskless one, as Ganeti allows): nothing to clone.
	await withGanetiState(farm.root, (state) => {
		const [first] = state.instances;
		state.instances.push({...first!, name: 'tardis.xivo.vm.farm', uuid: randomUUID(), disks: [], adminState: 'down'});
	});
	const before = await farmTree(farm.root, {normalize: false});

	const made = await farmclone('farm', 'new', 'dev2', '--from', simFarm.sourceInstance, '--yes');
	assert.equal(made.exitCode, 0, made.stderr);
	const table = made.stdout.split('\nsaved farm')[0]!;
	t.diagnostic(made.stdout);
	for (const line of table.split('\n')) assert.ok(line.length <= 80, `wider than 80 columns: ${line}`);
	assert.match(made.stdout, /^ {2}sourceLv +f3e8d23f-21c0-417d-9b5e-91bb4da9b926\.disk0/m);
	assert.match(made.stdout, /^ {2}ip +10\.10\.60\.9 +first free after gallifrey 10\.10\.60\.5$/m);
	assert.match(made.stdout, /10\.10\.60\.6: farm gallifrey-dev's settings/);
	assert.match(made.stdout, /10\.10\.60\.7: db\.farm line \d+\s+\(skaro\.xivo\.vm\)/);
	assert.match(made.stdout, /saved farm dev2; next: (\S+ )*\S*(farmclone|cli\.js) plan dev2$/m);

	const saved = new SettingsStore(farm.env['FARMCLONE_CONFIG_DIR']).get('dev2');
	assert.ok(saved, 'dev2 is saved');
	assert.deepEqual(
		{
			sourceInstance: saved.sourceInstance,
			vg: saved.vg,
			sourceLv: saved.sourceLv,
			ganetiNode: saved.ganetiNode,
			ganetiOs: saved.ganetiOs,
			record: saved.record,
			ip: saved.ip,
			sshPort: saved.sshPort,
			subnetMask: saved.subnetMask,
			shorewallParam: saved.shorewallParam,
			serverName: saved.serverName,
			targetLv: saved.targetLv,
			mac: saved.mac,
		},
		{
			sourceInstance: simFarm.sourceInstance,
			vg: simFarm.vg,
			sourceLv: simFarm.sourceLv,
			ganetiNode: simFarm.node,
			ganetiOs: 'debootstrap+default',
			record: 'dev2.xivo.vm',
			ip: '10.10.60.9',
			sshPort: 22_009,
			subnetMask: simFarm.netmask,
			shorewallParam: 'VM_DEV2_XIVO',
			serverName: 'dev2.dachary.org',
			targetLv: 'dev2',
			mac: '',
		},
	);
	// The host's part is the farm's it shares the host with.
	assert.equal(saved.zoneFile, farm.settings.zoneFile);
	assert.deepEqual(saved.commandPath, farm.settings.commandPath);

	const refusals: Array<[string[], RegExp]> = [
		[['farm', 'new', 'dev2', '--from', simFarm.sourceInstance, '--yes'], /farm dev2 exists already/],
		[['farm', 'new', 'dev3', '--from', 'nosuch.xivo.vm.farm', '--yes'], /no Ganeti instance nosuch\.xivo\.vm\.farm/],
		[['farm', 'new', 'dev3', '--from', 'tardis', '--yes'], /tardis\.xivo\.vm\.farm has no disk/],
		[['farm', 'new', 'skaro', '--from', simFarm.sourceInstance, '--yes'], /the name skaro is taken.*A record/],
		[['farm', 'new', 'dev3', '--yes'], /needs --from INSTANCE/],
	];
	for (const [args, message] of refusals) {
		const refused = await farmclone(...args);
		assert.equal(refused.exitCode, 2, `${args.join(' ')}: ${refused.stderr}`);
		assert.match(refused.stderr, message);
	}

	// Without a terminal it saves only with --yes; --json alone prints, and saves nothing.
	const unasked = await farmclone('farm', 'new', 'dev3', '--from', 'gallifrey');
	assert.equal(unasked.exitCode, 2);
	assert.match(unasked.stderr, /not saved: .*add --yes/);
	const printed = await farmclone('farm', 'new', 'dev3', '--from', 'gallifrey', '--json');
	assert.equal(printed.exitCode, 0, printed.stderr);
	const json = JSON.parse(printed.stdout) as {saved: boolean; settings: {ip: string}; choices: unknown[]};
	// .9 is dev2's now.
	assert.deepEqual([json.saved, json.settings.ip], [false, '10.10.60.10']);
	assert.equal(new SettingsStore(farm.env['FARMCLONE_CONFIG_DIR']).get('dev3'), undefined);
	assert.deepEqual(treeDifferences(before, await farmTree(farm.root, {normalize: false})), []);

	const plan = await farmclone('plan', 'dev2');
	assert.equal(plan.exitCode, 0, plan.stderr);
	assert.match(plan.stdout, /preflight: no problem found/);

	// A taken address: the refusal names a free one, and the command that takes it.
	assert.equal((await farmclone('farm', 'set', 'dev2', 'ip=10.10.60.7', 'sshPort=22007')).exitCode, 0);
	const refusedPlan = await farmclone('plan', 'dev2');
	assert.match(
		refusedPlan.stdout,
		/ip = "10\.10\.60\.7": .*; 10\.10\.60\.9 is free: (\S+ )*\S*(farmclone|cli\.js) farm set dev2 ip=10\.10\.60\.9 sshPort=22009/,
	);
});
