import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import {test, type TestContext} from 'node:test';
import {setTimeout as sleep} from 'node:timers/promises';
import {isAlive, killCopy, type CopyJob} from '../source/host/copy.js';
import {Host} from '../source/host/host.js';
import {getLv, getVg, listLvs, parseSize} from '../source/host/lvm.js';
import {defaultSettings} from '../source/settings/schema.js';
import {buildSimTree} from '../source/sim/tree.js';
import {copyStage} from '../source/stages/copy.js';
import {createVolumeStage} from '../source/stages/create-volume.js';
import {dropSnapshotStage} from '../source/stages/drop-snapshot.js';
import {snapshotStage} from '../source/stages/snapshot.js';
import {StageError, type CopyProgress, type StageStates, type StageContext} from '../source/stages/types.js';
import type {StateValue} from '../source/stages/state.js';

const MiB = 1024 * 1024;

type Farm = {
	context: StageContext;
	states: StageStates;
	logs: string[];
	progress: CopyProgress[];
	prompts: string[];
	/** Replaced to react to what a stage records (the copy's pid, say). */
	onRecord: (stage: string, patch: Record<string, unknown>) => void | Promise<void>;
	lv(name: string): ReturnType<typeof getLv>;
	lvm(...argv: string[]): Promise<void>;
};

/** A simulated farm on disk (not tmpfs) with a real Host, and a StageContext built by hand. */
async function farm(t: TestContext, sourceSize = 16 * MiB): Promise<Farm> {
	const base = await fs.mkdtemp(path.join('/var/tmp', 'farmclone-lvm-stages-'));
	const jobs: CopyJob[] = [];
	t.after(async () => {
		for (const job of jobs) {
			if (await isAlive(job)) {
				process.kill(job.pid, 'SIGCONT');
				await killCopy(job, 'SIGKILL');
			}
		}

		await fs.rm(base, {recursive: true, force: true});
	});
	const tree = await buildSimTree({root: path.join(base, 'farm'), sourceSize});
	const settings = defaultSettings('gallifrey-dev', tree.settings);
	const host = new Host({commandPath: settings.commandPath, backupDir: path.join(base, 'backups')});
	const states: StageStates = {};
	const stateDir = path.join(base, 'state');
	await fs.mkdir(stateDir);
	const result: Farm = {
		states,
		logs: [],
		progress: [],
		prompts: [],
		onRecord() {},
		context: {
			settings,
			host,
			states,
			async saveState(stage, patch) {
				states[stage] = {...states[stage], ...patch};
				if (stage === 'copy' && typeof patch['pid'] === 'number') {
					jobs.push({pid: patch['pid'], startTime: Number(patch['startTime'])} as CopyJob);
				}

				await result.onRecord(stage, patch);
			},
			async updateSettings(patch) {
				Object.assign(settings, patch);
			},
			stateDir,
			log: (text) => void result.logs.push(text),
			progress: (progress) => void result.progress.push(progress),
			prompt: {
				async confirm(message) {
					result.prompts.push(message);
					return true;
				},
				choose: async (_message, choices) => choices[0]!.value,
				typed: async () => true,
			},
			signal: new AbortController().signal,
		},
		lv: (name) => getLv(host, settings.vg, name),
		async lvm(...argv) {
			await host.run(argv);
		},
	};
	// The sim's source disk mixes random, zero, repeated chunks and holes: a sloppy copy does not match it.
	assert.ok(await result.lv(settings.sourceLv), 'the simulated farm has the source disk');
	return result;
}

async function sameBytes(a: string, b: string, length: number): Promise<boolean> {
	const [left, right] = await Promise.all([fs.readFile(a), fs.readFile(b)]);
	return left.subarray(0, length).equals(right.subarray(0, length));
}

async function applyAndVerify(stage: typeof snapshotStage, context: StageContext) {
	await stage.apply(context);
	await stage.verify(context);
}

test('snapshot, create, copy and drop run in order and leave an exact copy', async (t) => {
	const {context, states, lv, progress} = await farm(t);
	const {settings} = context;
	assert.equal((await snapshotStage.check(context)).status, 'pending');
	await applyAndVerify(snapshotStage, context);
	assert.equal((await snapshotStage.check(context)).status, 'done');
	const snapshot = await lv(settings.snapshotLv);
	assert.equal(snapshot?.origin, settings.sourceLv);
	assert.equal(states['snapshot']?.['uuid'], snapshot?.uuid);

	assert.equal((await createVolumeStage.check(context)).status, 'pending');
	await applyAndVerify(createVolumeStage, context);
	const source = (await lv(settings.sourceLv))!;
	const target = (await lv(settings.targetLv))!;
	assert.equal(target.size, source.size, 'the target is exactly as large as the source');
	assert.equal((await createVolumeStage.check(context)).status, 'done');

	const plan = await copyStage.plan(context);
	assert.ok(plan.commands[0]?.includes(`if=${snapshot!.path}`) && plan.commands[0]?.includes(`of=${target.path}`));
	assert.equal((await copyStage.check(context)).status, 'pending');
	await applyAndVerify(copyStage, context);
	assert.equal((await copyStage.check(context)).status, 'done');
	assert.equal(typeof states['copy']?.['pid'], 'number');
	assert.equal(typeof states['copy']?.['startTime'], 'number');
	assert.equal(states['copy']?.['completed'], true);
	assert.equal(progress.at(-1)?.bytes, source.size);
	assert.ok(await sameBytes(source.path, target.path, source.size));

	assert.equal((await dropSnapshotStage.check(context)).status, 'pending');
	await applyAndVerify(dropSnapshotStage, context);
	assert.equal(await lv(settings.snapshotLv), undefined);
	assert.equal((await dropSnapshotStage.check(context)).status, 'done');
	// Resuming later: the earlier stages still see their work done, nothing is made twice.
	assert.equal((await snapshotStage.check(context)).status, 'done');
	assert.equal((await copyStage.check(context)).status, 'done');
});

test('a volume made between the gate and the approval: the approved plan is refused, nothing created', async (t) => {
	const {context, lv, lvm} = await farm(t);
	const {settings} = context;
	const snapshotPlan = await snapshotStage.plan(context);
	const createPlan = await createVolumeStage.plan(context);
	await lvm('lvcreate', '--size', '4m', '--name', settings.snapshotLv, settings.vg);
	await lvm('lvcreate', '--size', '4m', '--name', settings.targetLv, settings.vg);
	const snapshotUuid = (await lv(settings.snapshotLv))!.uuid;
	await assert.rejects(snapshotStage.apply(context, snapshotPlan), {
		name: 'StalePlanError',
		message: new RegExp(
			`^the host changed since you approved this plan: ${settings.vg}/${settings.snapshotLv} appeared`,
		),
	});
	await assert.rejects(createVolumeStage.apply(context, createPlan), {
		name: 'StalePlanError',
		message: new RegExp(`${settings.vg}/${settings.targetLv} appeared`),
	});
	assert.equal((await lv(settings.snapshotLv))!.uuid, snapshotUuid, 'the volume someone made is left alone');
	assert.equal(context.states['snapshot']?.['creating'], undefined, 'refused before announcing a create');
});

test('refuses a target name that exists and a snapshot name taken by another volume', async (t) => {
	const {context, lv, lvm} = await farm(t);
	const {settings} = context;
	await lvm('lvcreate', '--size', '4m', '--name', settings.targetLv, settings.vg);
	await lvm('lvcreate', '--size', '4m', '--name', settings.snapshotLv, settings.vg);
	const snapshotCheck = await snapshotStage.check(context);
	assert.equal(snapshotCheck.status, 'conflict');
	assert.match(snapshotCheck.detail, /not a snapshot/);
	await assert.rejects(snapshotStage.apply(context), StageError);

	const createCheck = await createVolumeStage.check(context);
	assert.equal(createCheck.status, 'conflict');
	assert.match(createCheck.detail, /already exists/);
	await assert.rejects(createVolumeStage.apply(context), /already exists/);
	// Undo touches nothing this run did not create.
	await createVolumeStage.undo(context);
	await snapshotStage.undo(context);
	assert.ok(await lv(settings.targetLv));
	assert.ok(await lv(settings.snapshotLv));
});

test('refuses to snapshot when the VG has no room for the snapshot and the target, naming the numbers', async (t) => {
	const {context, lv, lvm} = await farm(t);
	const {settings} = context;
	const group = await getVg(context.host, settings.vg);
	const source = (await lv(settings.sourceLv))!;
	// Leave room for the target but not for the snapshot too.
	const filler = group.free - source.size - group.extentSize;
	await lvm('lvcreate', '--size', `${filler}b`, '--name', 'filler', settings.vg);
	const check = await snapshotStage.check(context);
	assert.equal(check.status, 'conflict');
	await assert.rejects(snapshotStage.apply(context), (error: Error) => {
		assert.ok(error instanceof StageError);
		assert.match(error.message, new RegExp(`has ${group.extentSize + source.size} bytes free`));
		assert.match(error.message, new RegExp(`needs ${parseSize(settings.snapshotSize)} bytes`));
		assert.match(error.message, new RegExp(`target ${source.size} bytes`));
		return true;
	});
	assert.equal(await lv(settings.snapshotLv), undefined);
});

test('an overflowing snapshot fails the copy loudly, kills dd, and the next run starts over', async (t) => {
	const {context, states, lv} = await farm(t, 64 * MiB);
	const {settings} = context;
	await snapshotStage.apply(context);
	await createVolumeStage.apply(context);
	const state = {pid: 0};
	// Freeze dd as soon as it starts, overflow the snapshot, then let dd go on reading it.
	const harness = overflowingHarness(context, state);
	await assert.rejects(copyStage.apply(harness.context), (error: Error) => {
		assert.ok(error instanceof StageError, String(error));
		assert.match(error.message, /overflowed/);
		assert.match(error.message, /garbage/);
		return true;
	});
	assert.equal(
		await isAlive({pid: state.pid, startTime: Number(states['copy']?.['startTime'])}),
		false,
		'dd is stopped',
	);
	assert.equal(states['copy']?.['completed'], false);
	assert.equal(states['copy']?.['offset'], 0);
	assert.equal((await copyStage.check(context)).status, 'pending');

	// The next run: the snapshot stage sees its snapshot overflowed and makes a new one; the copy starts over.
	const check = await snapshotStage.check(context);
	assert.equal(check.status, 'pending');
	assert.match(check.detail, /overflowed/);
	const before = states['snapshot']?.['uuid'];
	await applyAndVerify(snapshotStage, context);
	assert.notEqual(states['snapshot']?.['uuid'], before);
	await applyAndVerify(copyStage, context);
	const source = (await lv(settings.sourceLv))!;
	assert.ok(await sameBytes(source.path, (await lv(settings.targetLv))!.path, source.size));
});

/** A context whose record() freezes dd when the copy starts and overflows the snapshot meanwhile. */
function overflowingHarness(context: StageContext, state: {pid: number}) {
	return {
		context: {
			...context,
			async saveState(stage: string, patch: Record<string, StateValue>) {
				await context.saveState(stage, patch);
				const more = stage === 'copy' ? patch : {};
				if (typeof more['pid'] !== 'number') return;
				state.pid = more['pid'];
				process.kill(state.pid, 'SIGSTOP');
				const {vg, snapshotLv} = context.settings;
				await context.host.run(['lvm-sim', 'set-snap-percent', `${vg}/${snapshotLv}`, '100']);
				process.kill(state.pid, 'SIGCONT');
			},
		},
	};
}

test('a nearly full snapshot is extended after asking, when the settings allow it', async (t) => {
	const {context, lv, prompts, logs} = await farm(t);
	const {settings} = context;
	// Small enough to stay under the largest useful copy-on-write size of a 16 MiB origin, which LVM caps at.
	Object.assign(settings, {snapshotSize: '4M', snapshotExtendBy: '8M'});
	await snapshotStage.apply(context);
	await createVolumeStage.apply(context);
	await context.host.run(['lvm-sim', 'set-snap-percent', `${settings.vg}/${settings.snapshotLv}`, '85']);
	const before = (await lv(settings.snapshotLv))!.size;
	await applyAndVerify(copyStage, context);
	assert.equal((await lv(settings.snapshotLv))!.size, before + parseSize(settings.snapshotExtendBy));
	assert.equal(prompts.length, 1);
	assert.match(prompts[0]!, /85% full/);
	assert.ok(logs.some((line) => /warning: snapshot .* 85% full/.test(line)));
});

test('an aborted copy leaves dd running; the next apply reattaches to it', async (t) => {
	const {context, states, lv, logs} = await farm(t, 64 * MiB);
	const {settings} = context;
	await snapshotStage.apply(context);
	await createVolumeStage.apply(context);
	const controller = new AbortController();
	const aborting = {
		...context,
		signal: controller.signal,
		async saveState(stage: string, patch: Record<string, StateValue>) {
			await context.saveState(stage, patch);
			const more = stage === 'copy' ? patch : {};
			if (typeof more['pid'] !== 'number') return;
			process.kill(more['pid'], 'SIGSTOP');
			controller.abort();
		},
	};
	await assert.rejects(copyStage.apply(aborting), {name: 'AbortError'});
	const job = {pid: Number(states['copy']?.['pid']), startTime: Number(states['copy']?.['startTime'])};
	assert.equal(await isAlive(job), true, 'dd goes on after the abort');
	const check = await copyStage.check(context);
	assert.match(check.detail, /still copying/);

	// dd stays stopped until the next apply has found it running, or it would finish before being looked for.
	const resuming: StageContext = {
		...context,
		log(text) {
			context.log(text);
			if (text.includes('reattaching')) process.kill(job.pid, 'SIGCONT');
		},
	};
	await applyAndVerify(copyStage, resuming);
	assert.ok(logs.some((line) => line.includes(`reattaching to the copy still running as pid ${job.pid}`)));
	assert.equal(states['copy']?.['pid'], job.pid, 'no second dd was started');
	const source = (await lv(settings.sourceLv))!;
	assert.ok(await sameBytes(source.path, (await lv(settings.targetLv))!.path, source.size));
});

test('a copy that finished while farmclone was away is taken as done, without copying again', async (t) => {
	const {context, states, logs} = await farm(t);
	await snapshotStage.apply(context);
	await createVolumeStage.apply(context);
	const controller = new AbortController();
	const leaving = {
		...context,
		signal: controller.signal,
		async saveState(stage: string, patch: Record<string, StateValue>) {
			await context.saveState(stage, patch);
			const more = stage === 'copy' ? patch : {};
			if (typeof more['pid'] === 'number') controller.abort();
		},
	};
	await assert.rejects(copyStage.apply(leaving), {name: 'AbortError'});
	const job = {pid: Number(states['copy']?.['pid']), startTime: Number(states['copy']?.['startTime'])};
	for (let waited = 0; (await isAlive(job)) && waited < 10_000; waited += 20) {
		await sleep(20);
	}

	assert.equal(states['copy']?.['completed'], false);
	await applyAndVerify(copyStage, context);
	assert.ok(logs.some((line) => line.includes(`dd pid ${job.pid}) finished while farmclone was away`)));
	assert.equal(states['copy']?.['pid'], job.pid, 'no second dd was started');
	assert.equal(states['copy']?.['completed'], true);
});

test('a copy whose dd died resumes from the recorded offset', async (t) => {
	const {context, states, lv, logs, progress} = await farm(t, 128 * MiB);
	const {settings} = context;
	await snapshotStage.apply(context);
	await createVolumeStage.apply(context);
	const snapshot = (await lv(settings.snapshotLv))!;
	const target = (await lv(settings.targetLv))!;
	const written = 112 * MiB;
	const killing = {
		...context,
		async saveState(stage: string, patch: Record<string, StateValue>) {
			await context.saveState(stage, patch);
			const more = stage === 'copy' ? patch : {};
			if (typeof more['pid'] !== 'number') return;
			// dd dies before copying anything, as if the host had lost it...
			await killCopy({pid: more['pid'], startTime: Number(more['startTime'])}, 'SIGKILL');
		},
	};
	await assert.rejects(copyStage.apply(killing), /copy failed/);
	assert.equal(states['copy']?.['offset'], 0, 'a dd that reported nothing leaves nothing to resume');
	// ...whereas one that had copied the first 112 MiB and said so leaves them on the target and in the states,
	// recorded in a boot before a power cut: the device may have lost what it had only cached.
	const head = (await fs.readFile(snapshot.path)).subarray(0, written);
	await fs.writeFile(target.path, head, {flag: 'r+'});
	await context.saveState('copy', {offset: written, bootId: 'a boot before the power cut'});
	assert.match((await copyStage.check(context)).detail, /resumes at 32\.0 MiB/);
	const earlierEvents = progress.length;
	await applyAndVerify(copyStage, context);
	// Another boot: 64 MiB of margin before the recorded offset, in whole windows of the copier (32 MiB).
	const resumed = logs.find((line) => line.startsWith('resuming at 32.0 MiB'));
	assert.ok(resumed?.includes(` from=${32 * MiB} `), resumed);
	assert.ok(progress[earlierEvents]!.bytes >= 32 * MiB, 'progress counts from the resume point');
	const source = (await lv(settings.sourceLv))!;
	assert.ok(await sameBytes(source.path, target.path, source.size));
});

test('undo removes only what this run created, and not while it is open', async (t) => {
	const {context, states, lv} = await farm(t);
	const {settings} = context;
	await snapshotStage.apply(context);
	await createVolumeStage.apply(context);
	const target = (await lv(settings.targetLv))!;
	const handle = await fs.open(target.path, 'r');
	try {
		await assert.rejects(createVolumeStage.undo(context), /is open/);
	} finally {
		await handle.close();
	}

	assert.ok(await lv(settings.targetLv));
	await createVolumeStage.undo(context);
	await snapshotStage.undo(context);
	assert.equal(await lv(settings.targetLv), undefined);
	assert.equal(await lv(settings.snapshotLv), undefined);
	assert.ok(await lv(settings.sourceLv), 'the source is never touched');

	// A volume of the same name made by someone else afterwards is not ours.
	await context.host.run(['lvcreate', '--size', '4m', '--name', settings.targetLv, settings.vg]);
	assert.equal(states['create-volume']?.['created'], true);
	await createVolumeStage.undo(context);
	assert.ok(await lv(settings.targetLv), 'not ours: left alone');
	const names = (await listLvs(context.host, settings.vg)).map((volume) => volume.name);
	assert.ok(!names.includes(settings.snapshotLv) && names.includes(settings.sourceLv));
});
