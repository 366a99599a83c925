import assert from 'node:assert/strict';
import {randomUUID} from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {preflight, volumeOwnershipProblems, type Finding} from '../../source/engine/preflight.js';
import {instanceVolumes, parseInstanceVolumes} from '../../source/host/ganeti.js';
import {Host} from '../../source/host/host.js';
import {createArgv, listLvs} from '../../source/host/lvm.js';
import {fqdn, type FarmSettings} from '../../source/settings/schema.js';
import {SettingsStore} from '../../source/settings/store.js';
import {createSimFarm} from '../../source/sim/farm.js';
import {withGanetiState} from '../../source/sim/ganeti-state.js';
import {simFarm} from '../../source/sim/tree.js';
import {allStages} from '../../source/stages/index.js';
import {createVolumeStage} from '../../source/stages/create-volume.js';
import {snapshotStage} from '../../source/stages/snapshot.js';
import {StageError, type StageStates, type StageContext} from '../../source/stages/types.js';
import {statesInMemory} from '../../source/stages/state.js';
import {farmTree, treeDifferences, waitFor} from '../kit/farm.js';
import {killSession, tmux} from '../kit/tmux.js';

const cli = path.resolve('dist/cli.js');
const skaro = simFarm.hosts.find((host) => host.record === 'skaro.xivo.vm')!;
const skaroInstance = `${skaro.record}.${simFarm.zone}`;
const ids = allStages.map((stage) => stage.id);
const escape = (text: string) => text.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * `gnt-instance info` as Ganeti prints it for what the simulated cluster
 * cannot hold: a DRBD disk (its logical_id spread over nodeA/nodeB/port, its
 * LVs as children, status lines on both nodes), a file disk (a tuple), and
 * an instance as Ganeti 2.5 printed it (no list dash, aligned values).
 */
const otherFormats = `- Instance name: web.example.org
  UUID: 5d1f0c7e-2b8a-4a63-9f0e-0c5b7d9e1a24
  Serial number: 12
  State: configured to be up, actual state is up
  Disk template: drbd
  Disks: 
    - disk/0: drbd, size 10.0G
      access mode: rw
      nodeA: node1.example.org, minor=0
      nodeB: node2.example.org, minor=0
      port: 11000
      auth key: 3f0c1e9a2b7d
      on primary: /dev/drbd0 (147:0) in sync, status ok
      on secondary: /dev/drbd0 (147:0) in sync, status ok
      name: None
      UUID: 0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a
      child devices: 
        - child 0: plain, size 10.0G
          logical_id: xenvg/1b2c3d4e.disk0_data
          on primary: /dev/xenvg/1b2c3d4e.disk0_data (253:0)
          on secondary: /dev/xenvg/1b2c3d4e.disk0_data (253:0)
          name: None
          UUID: 7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d
        - child 1: plain, size 128M
          logical_id: xenvg/1b2c3d4e.disk0_meta
          name: None
          UUID: 2d3c4b5a-6f7e-4d8c-9b0a-1f2e3d4c5b6a
- Instance name: files.example.org
  Disks: 
    - disk/0: file, size 1.0G
      access mode: rw
      logical_id: ('loop', '/srv/ganeti/file-storage/files.example.org/disk0')
Instance name: old.example.org
UUID: 9c8b7a6f-5e4d-4c3b-8a29-1f0e9d8c7b6a
  Nodes:
    - primary: node1.example.org
  Disks:
    - disk/0: lvm, size 10.0G
      access mode: rw
      logical_id:  xenvg/9c8b7a6f.disk0
      on primary:   /dev/xenvg/9c8b7a6f.disk0 (253:1)
`;

/**
 * The source must be the source instance's disk and no volume farmclone
 * writes may belong to an instance, as Ganeti's configuration says: in the
 * preflight (refusals name the instance), again in the snapshot and
 * create-volume stages right before their lvcreate, and a TUI refusal exits 2
 * as a headless one, leaving the farm byte-identical.
 */
test('preflight: the volumes Ganeti instances own', {timeout: 300_000}, async (t) => {
	const work = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-preflight-volumes-'));
	const farm = await createSimFarm({root: path.join(work, 'farm'), sourceSize: 16 * 1024 ** 2, startSource: false});
	t.after(async () => {
		await farm.stop();
		await fs.rm(work, {recursive: true, force: true});
	});
	const host = new Host({commandPath: farm.settings.commandPath, backupDir: path.join(work, 'backups')});
	const {settings} = farm;
	const {vg} = settings;
	const fieldFindings = (findings: Finding[], field: string) => findings.filter((finding) => finding.field === field);

	await t.test("gnt-instance info: each instance's volumes, from the stand-in and Ganeti's other formats", async () => {
		const volumes = await instanceVolumes(host);
		assert.deepEqual(volumes.get(settings.sourceInstance), [{vg, lv: settings.sourceLv}]);
		assert.deepEqual(volumes.get(skaroInstance), [{vg, lv: skaro.lv}]);
		assert.deepEqual(
			parseInstanceVolumes(otherFormats),
			new Map([
				[
					'web.example.org',
					[
						{vg: 'xenvg', lv: '1b2c3d4e.disk0_data'},
						{vg: 'xenvg', lv: '1b2c3d4e.disk0_meta'},
					],
				],
				['files.example.org', []],
				['old.example.org', [{vg: 'xenvg', lv: '9c8b7a6f.disk0'}]],
			]),
		);
	});

	await t.test("the source instance's real disk passes", async () => {
		assert.deepEqual(await preflight(host, settings, {}, ids), []);
	});

	await t.test(
		"sourceLv set to another instance's disk: refused, naming the instance and the source's disks",
		async () => {
			const findings = await preflight(host, {...settings, sourceLv: skaro.lv!}, {}, ids);
			const [finding, ...more] = fieldFindings(findings, 'sourceLv');
			assert.ok(finding && more.length === 0, JSON.stringify(findings));
			assert.equal(finding.value, skaro.lv);
			assert.match(
				finding.reason,
				new RegExp(
					`is not a disk of ${escape(settings.sourceInstance)} \\(its disks are ${escape(`${vg}/${settings.sourceLv}`)}\\): it is a disk of Ganeti instance ${escape(skaroInstance)}`,
				),
			);
		},
	);

	await t.test("targetLv or snapshotLv set to another instance's disk: refused once, naming it", async () => {
		for (const field of ['targetLv', 'snapshotLv'] as const) {
			const findings = await preflight(host, {...settings, [field]: skaro.lv!}, {}, ids);
			const found = fieldFindings(findings, field);
			assert.equal(found.length, 1, JSON.stringify(findings));
			assert.match(found[0]!.reason, new RegExp(`is a disk of Ganeti instance ${escape(skaroInstance)}`));
		}
	});

	await t.test('gnt-instance info failing is reported under sourceInstance', async () => {
		const fakes = path.join(work, 'fake-bin');
		await fs.mkdir(fakes, {recursive: true});
		const real = path.join(farm.root, 'bin', 'gnt-instance');
		await fs.writeFile(
			path.join(fakes, 'gnt-instance'),
			`#!/bin/sh\nif [ "$1" = info ]; then echo 'Failure: command execution error:' >&2; echo 'Cannot connect to the master daemon' >&2; exit 1; fi\nexec '${real}' "$@"\n`,
			{mode: 0o755},
		);
		const broken = new Host({commandPath: [fakes, ...settings.commandPath], backupDir: path.join(work, 'backups')});
		const findings = await preflight(broken, settings, {}, ids);
		assert.deepEqual(
			findings.map((finding) => finding.field),
			['sourceInstance'],
			JSON.stringify(findings),
		);
		assert.match(findings[0]!.reason, /^gnt-instance info fails: .*Cannot connect to the master daemon/s);
	});

	const stageContext = (overrides: Partial<FarmSettings>, states: StageStates = {}): StageContext => ({
		settings: {...settings, ...overrides},
		host,
		...statesInMemory(states),
		async updateSettings() {},
		stateDir: work,
		log() {},
		progress() {},
		prompt: {
			confirm: async () => true,
			choose: async (_message, choices) => choices[0]!.value,
			typed: async () => true,
		},
		signal: new AbortController().signal,
	});
	const lvNames = async () => (await listLvs(host, vg)).map((lv) => lv.name);

	await t.test("the snapshot stage checks again before lvcreate: only the source instance's disk", async () => {
		const context = stageContext({sourceLv: skaro.lv!});
		await assert.rejects(snapshotStage.apply(context), (error: unknown) => {
			assert.ok(error instanceof StageError);
			assert.match(error.message, new RegExp(`it is a disk of Ganeti instance ${escape(skaroInstance)}`));
			return true;
		});
		assert.ok(!(await lvNames()).includes(settings.snapshotLv), 'no snapshot was made');
		assert.equal(context.states['snapshot']?.['creating'], undefined, 'refused before announcing the lvcreate');
	});

	await t.test('the create-volume stage checks again before lvcreate: no name an instance holds', async () => {
		// Ganeti holds a disk of that name whose volume is gone: lvs alone would let lvcreate make it.
		const setClaim = async (claim: boolean) =>
			withGanetiState(farm.root, (state) => {
				const instance = state.instances.find((candidate) => candidate.name === skaroInstance)!;
				instance.disks = instance.disks.filter((disk) => disk.lv !== settings.targetLv);
				if (claim) {
					instance.disks.push({uuid: randomUUID(), vg, lv: settings.targetLv, sizeMiB: 16, name: null, mode: 'rw'});
				}
			});
		await setClaim(true);
		try {
			const findings = await preflight(host, settings, {}, ids);
			assert.match(fieldFindings(findings, 'targetLv')[0]?.reason ?? '', new RegExp(escape(skaroInstance)));
			await assert.rejects(
				createVolumeStage.apply(stageContext({})),
				new RegExp(
					`targetLv: ${escape(`${vg}/${settings.targetLv}`)} is a disk of Ganeti instance ${escape(skaroInstance)}`,
				),
			);
			assert.ok(!(await lvNames()).includes(settings.targetLv), 'no volume was made');
		} finally {
			await setClaim(false);
		}
	});

	await t.test('a resumed run after the ganeti-instance stage is not refused', async (st) => {
		const mac = '52:54:00:4f:a1:7e';
		const ours = {...settings, mac};
		const source = (await listLvs(host, vg)).find((lv) => lv.name === settings.sourceLv)!;
		await host.run(createArgv(vg, settings.targetLv, source.size));
		const target = (await listLvs(host, vg)).find((lv) => lv.name === settings.targetLv)!;
		const states: StageStates = {
			'create-volume': {created: true, uuid: target.uuid, size: source.size},
			copy: {completed: true},
		};
		assert.deepEqual(await preflight(host, ours, states, ids), [], 'before the instance: our target');
		await host.run([
			'gnt-instance',
			'add',
			'-n',
			settings.ganetiNode,
			'-o',
			settings.ganetiOs,
			'-t',
			'plain',
			'--disk',
			`0:adopt=${settings.targetLv}`,
			'--no-install',
			'--no-start',
			'--no-name-check',
			'--no-ip-check',
			'--net',
			`0:mac=${mac}`,
			fqdn(ours),
		]);
		st.after(async () => host.run(['gnt-instance', 'remove', '-f', fqdn(ours)], {reject: false}));
		states['ganeti-instance'] = {created: true};
		const clone = (await instanceVolumes(host)).get(fqdn(ours));
		assert.equal(clone?.length, 1, 'the clone owns its adopted disk');
		assert.deepEqual(await preflight(host, ours, states, ids), []);

		// A Ganeti that kept the adopted volume's name: the clone's disk is still ours.
		const keepName = async (lv: string) =>
			withGanetiState(farm.root, (state) => {
				state.instances.find((instance) => instance.name === fqdn(ours))!.disks[0]!.lv = lv;
			});
		await keepName(settings.targetLv);
		try {
			const lvs = await listLvs(host, vg);
			assert.deepEqual(await volumeOwnershipProblems(host, ours, {states}, lvs), []);
			const strangers = await volumeOwnershipProblems(host, ours, {states: {}}, lvs);
			assert.deepEqual(
				strangers.map((problem) => problem.field),
				['targetLv'],
				'the same disk is refused to a run that did not make it',
			);
		} finally {
			await keepName(clone![0]!.lv);
		}
	});

	await t.test('the TUI refusing in its preflight exits 2 with the findings, and changes nothing', async (st) => {
		const env = {
			FARMCLONE_CONFIG_DIR: path.join(work, 'config'),
			FARMCLONE_STATE_DIR: path.join(work, 'state'),
		};
		new SettingsStore(env.FARMCLONE_CONFIG_DIR).save({...settings, sourceLv: skaro.lv!});
		const before = await farmTree(farm.root, {normalize: false});
		const session = `farmclone-preflight-volumes-${process.pid}`;
		const exitFile = path.join(work, 'tui.exit');
		const stderrFile = path.join(work, 'tui.stderr');
		const words = [
			'env',
			'CI=false',
			'TERM=xterm-256color',
			'NO_COLOR=1',
			...Object.entries(env).map(([name, value]) => `${name}=${value}`),
			process.execPath,
			cli,
			'run',
			settings.name,
		];
		const script = path.join(work, 'tui.sh');
		await fs.writeFile(
			script,
			`#!/bin/sh\n${words.map((word) => `'${word}'`).join(' ')} 2> '${stderrFile}'\necho $? > '${exitFile}'\nsleep 600\n`,
			{mode: 0o755},
		);
		st.after(async () => killSession(session));
		await tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '40', script);
		let screen = '';
		await waitFor(
			async () => {
				screen = await tmux('capture-pane', '-p', '-t', session);
				return /press any key to exit/.test(screen);
			},
			120_000,
			'the TUI to show the refusal',
		);
		assert.match(screen, /preflight refuses to start gallifrey-dev/);
		await tmux('send-keys', '-t', session, 'x');
		await waitFor(
			async () => (await fs.readFile(exitFile, 'utf8').catch(() => '')).trim() !== '',
			30_000,
			'farmclone to exit',
		);
		const stderr = await fs.readFile(stderrFile, 'utf8');
		assert.equal((await fs.readFile(exitFile, 'utf8')).trim(), '2', `screen:\n${screen}\nstderr:\n${stderr}`);
		assert.match(stderr, /preflight refuses to start gallifrey-dev; nothing was changed/);
		assert.match(
			stderr,
			new RegExp(`sourceLv = "${escape(skaro.lv!)}": .*a disk of Ganeti instance ${escape(skaroInstance)}`),
		);
		assert.deepEqual(treeDifferences(before, await farmTree(farm.root, {normalize: false})), []);
	});
});
