import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {preflight, PreflightError, assertPreflight} from '../../source/engine/preflight.js';
import {Host} from '../../source/host/host.js';
import {listLvs} from '../../source/host/lvm.js';
import {SettingsError} from '../../source/settings/validate.js';
import {createSimFarm} from '../../source/sim/farm.js';
import {withGanetiState} from '../../source/sim/ganeti-state.js';
import {simFarm} from '../../source/sim/tree.js';
import {allStages} from '../../source/stages/index.js';

const skaro = simFarm.hosts.find((host) => host.record === 'skaro.xivo.vm')!;

/**
 * The preflight against a simulated farm with the real checkers: nothing on
 * a clean farm, each problem named by its setting, its value and the reason,
 * and what this farm's own run made (marked lines, volumes known by their
 * uuid in the journal) never counted against it.
 */
test('preflight', {timeout: 300_000}, async (t) => {
	const work = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-preflight-'));
	const farm = await createSimFarm({root: path.join(work, 'farm'), sourceSize: 16 * 1024 ** 2, startSource: false});
	t.after(async () => {
		await farm.stop();
		await fs.rm(work, {recursive: true, force: true});
	});
	const host = new Host({commandPath: farm.settings.commandPath, backupDir: path.join(work, 'backups')});
	const {settings} = farm;
	const ids = allStages.map((stage) => stage.id);

	await t.test('a clean farm: no finding', async () => {
		assert.deepEqual(await preflight(host, settings, {}, ids), []);
	});

	await t.test('only the checks of the stages that run', async () => {
		const bad = {...settings, ip: '10.10.60.999'};
		assert.deepEqual(await preflight(host, bad, {}, ['some-other-stage']), []);
		const findings = await preflight(host, bad, {}, ids);
		assert.deepEqual(findings, [
			{field: 'ip', value: '10.10.60.999', reason: 'must be an IPv4 address such as 10.10.60.6'},
		]);
	});

	await t.test('several conflicts at once, each with its setting, value and reason', async () => {
		const findings = await preflight(host, {...settings, ip: skaro.ip, sshPort: 22_005}, {}, ids);
		const byField = (field: string) => findings.filter((finding) => finding.field === field);
		assert.ok(
			byField('ip').some(
				(finding) => finding.value === skaro.ip && /skaro\.xivo\.vm.*already holds/.test(finding.reason),
			),
		);
		assert.ok(byField('ip').some((finding) => /fixed-address 10\.10\.60\.7/.test(finding.reason)));
		assert.ok(
			byField('sshPort').some((finding) => finding.value === 22_005 && /already forwarded/.test(finding.reason)),
		);
		await assert.rejects(assertPreflight(host, {...settings, sshPort: 22_005}, {}, allStages), (error: unknown) => {
			assert.ok(error instanceof PreflightError);
			// A SettingsError: the command exits 2, as for any bad input.
			assert.ok(error instanceof SettingsError);
			assert.match(error.message, /refuses to start gallifrey-dev; nothing was changed:\n {2}sshPort = 22005: /);
			return true;
		});
	});

	await t.test("an address Ganeti gives another instance (nic.ips), which the files don't show", async () => {
		const setIp = async (ip: string | null) =>
			withGanetiState(farm.root, (state) => {
				const instance = state.instances.find((candidate) => candidate.name === `${skaro.record}.${simFarm.zone}`);
				instance!.nics[0]!.ip = ip;
			});
		await setIp(settings.ip);
		try {
			const findings = await preflight(host, settings, {}, ids);
			// The refusal names a free address: after .6, .7 and .8 are in the zone.
			assert.deepEqual(findings, [
				{
					field: 'ip',
					value: settings.ip,
					reason:
						'used by Ganeti instance skaro.xivo.vm.farm (nic.ips); 10.10.60.9 is free: farmclone farm set gallifrey-dev ip=10.10.60.9 sshPort=22009',
				},
			]);
		} finally {
			await setIp(null);
		}
	});

	await t.test("the target volume: this run's is no conflict, anyone else's is", async () => {
		await host.run(['lvcreate', '--yes', '--size', '4m', '--name', settings.targetLv, settings.vg]);
		try {
			const lv = (await listLvs(host, settings.vg)).find((candidate) => candidate.name === settings.targetLv)!;
			const findings = await preflight(host, settings, {}, ids);
			assert.ok(
				findings.some((finding) => finding.field === 'targetLv' && /this run did not create it/.test(finding.reason)),
				JSON.stringify(findings),
			);
			assert.deepEqual(await preflight(host, settings, {'create-volume': {uuid: lv.uuid}}, ids), []);
		} finally {
			await host.run(['lvremove', '-f', `${settings.vg}/${settings.targetLv}`]);
		}
	});

	await t.test('the VG without room for the snapshot and the target', async () => {
		const findings = await preflight(host, {...settings, snapshotSize: '1T'}, {}, ids);
		assert.equal(findings.length, 1, JSON.stringify(findings));
		assert.equal(findings[0]!.field, 'vg');
		assert.match(findings[0]!.reason, /free, but the snapshot \(1T\) and the target \(16\.0 MiB\) need/);
	});
});
