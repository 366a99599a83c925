import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {
	autoFloor,
	autoStep,
	blockSizeFor,
	workersFor,
	copyRateProblem,
	nudgeCopyRate,
	parseCopyRate,
	parseDiskstats,
	type AutoState,
} from '../source/host/copy-rate.js';
import {CopyGovernor} from '../source/host/copy-governor.js';
import {LatencyProbe} from '../source/host/latency-probe.js';
import {defaultSettings} from '../source/settings/schema.js';
import {validateSettings} from '../source/settings/validate.js';

const MiB = 1024 * 1024;

test('copyRate: auto, max and fixed rates parse; bad values get an error naming the problem', () => {
	assert.deepEqual(parseCopyRate('auto'), {mode: 'auto'});
	assert.deepEqual(parseCopyRate('MAX'), {mode: 'max'});
	assert.deepEqual(parseCopyRate('80M'), {mode: 'fixed', bytesPerSecond: 80 * 1024 * 1024});
	assert.deepEqual(parseCopyRate('1.5G'), {mode: 'fixed', bytesPerSecond: 1.5 * 1024 ** 3});
	assert.throws(() => parseCopyRate('fast'), /copyRate "fast" is not auto, max or a rate such as 80M/);
	assert.throws(() => parseCopyRate('80'), /below 1M per second: write the unit/);
	assert.equal(copyRateProblem('80M'), undefined);
	assert.match(copyRateProblem('-3M') ?? '', /not auto, max or a rate/);
	assert.match(copyRateProblem(80) ?? '', /must be auto, max or a rate/);
});

test('auto and max copy with 2 workers in windows of 32 blocks, capped at 64 MiB; a fixed rate with dd', () => {
	assert.equal(blockSizeFor({mode: 'max'}, 1024 * 1024), 32 * 1024 * 1024);
	assert.equal(blockSizeFor({mode: 'auto'}, 4096), 128 * 1024);
	assert.equal(blockSizeFor({mode: 'max'}, 32 * 1024 * 1024), 64 * 1024 * 1024);
	assert.equal(blockSizeFor({mode: 'fixed', bytesPerSecond: 80 * MiB}, 1024 * 1024), 1024 * 1024);
	assert.equal(workersFor({mode: 'auto'}), 2);
	assert.equal(workersFor({mode: 'fixed', bytesPerSecond: 80 * MiB}), undefined);
});

test('diskstats are summed over the watched devices only, merged requests counted as submitted', () => {
	const text = [
		' 254       0 vda 100 10 8000 50 200 20 16000 150 0 300 400 0 0 0 0',
		' 254       1 vda1 5 0 40 1 0 0 0 0 0 1 1 0 0 0 0',
		' 253       0 zram0 7 0 56 0 9 0 72 0 0 0 0 0 0 0 0',
	].join('\n');
	assert.deepEqual(parseDiskstats(text, ['254:0'], 5), {submitted: 330, completed: 300, ticks: 200, atMs: 5});
});

const fresh = (idleLatencyMs: number | undefined): AutoState => ({
	limit: undefined,
	peakRate: 0,
	quietIntervals: 0,
	idleLatencyMs,
});

test('auto: others whose small reads wait above idle cut the copy; near idle it doubles; alone it lifts the limit', () => {
	const state = fresh(0.4);
	// Alone: the copy's own requests are slow (a queue of its own), and that is nobody's business.
	const alone = {seconds: 0.5, diskRequests: 300, ownRequests: 298, completed: 300, ticks: 3000, ownRate: 200e6};
	assert.equal(autoStep(state, alone).limit, undefined);
	// The probe's own reads are not somebody else's.
	assert.equal(autoStep(state, {...alone, diskRequests: 320, probeRequests: 20, probeMs: 40}).limit, undefined);
	// Others in one poll after quiet ones (a journal commit): held, whatever the probe says.
	const harmless = {...alone, diskRequests: 2000, completed: 2000, ticks: 2000 * 5, probeMs: 0.4, probeRequests: 3};
	assert.equal(autoStep(state, {...harmless, probeMs: 40}).limit, undefined, 'a lone burst is not a neighbour');
	// Others there, and a small read waits as on idle disks: nobody suffers, no limit.
	assert.equal(autoStep(state, harmless).limit, undefined, "the disks' mean (5 ms) is the copy's own queue");
	// At 10x idle: straight to the floor.
	const hurting = {...harmless, probeMs: 4};
	const decision = autoStep(state, hurting);
	assert.equal(decision.limit, autoFloor);
	assert.equal(decision.foreignRate, (2000 - 298 - 3) / 0.5);
	assert.equal(decision.latencyMs, 4);
	// 1.2x idle: twice the limit.
	assert.equal(autoStep(state, {...harmless, probeMs: 0.48, ownRate: autoFloor}).limit, autoFloor * 2);
	// 1.6x idle: held. 3x idle, once: half of what the copy did.
	assert.equal(autoStep(state, {...harmless, probeMs: 0.64}).limit, autoFloor * 2);
	state.limit = 100 * MiB;
	assert.equal(autoStep(state, {...harmless, probeMs: 1.2, ownRate: 80 * MiB}).limit, 40 * MiB);
	let steps = 0;
	state.limit = autoFloor;
	while (autoStep(state, {...alone, ownRate: 10e6}).limit !== undefined) steps++;
	// From the floor, x4 per half-second step past 1.5x the 200 MB/s peak: within 2 s, well within 10 s.
	assert.ok(steps <= 3, `${steps} steps`);
	// Others back and near idle: a poll held, then x2 per step, from the floor to none within 5 steps.
	state.limit = autoFloor;
	steps = 0;
	while (autoStep(state, {...harmless, ownRate: 10e6}).limit !== undefined) steps++;
	assert.ok(steps <= 5, `${steps} steps`);
});

test('auto: without a probe, the mean per request; an unknown idle latency is learned as the least seen', () => {
	const state = fresh(undefined);
	const others = {seconds: 0.5, diskRequests: 1000, ownRequests: 10, completed: 1000, ownRate: 20e6};
	autoStep(state, {...others, ticks: 300});
	assert.equal(state.idleLatencyMs, 0.3);
	assert.equal(state.limit, undefined);
	autoStep(state, {...others, ticks: 3000});
	assert.equal(state.idleLatencyMs, 0.3);
	assert.equal(state.limit, autoFloor);
});

test('settings: copyRate defaults to auto and a bad one is refused', () => {
	const settings = defaultSettings('dev');
	assert.equal(settings.copyRate, 'auto');
	const errors = validateSettings({...settings, copyRate: 'quick'} as unknown as Record<string, unknown>);
	assert.match(errors.find((error) => error.field === 'copyRate')?.reason ?? '', /is not auto, max or a rate/);
	const fine = validateSettings(settings as unknown as Record<string, unknown>);
	assert.equal(
		fine.find((error) => error.field === 'copyRate'),
		undefined,
	);
});

test('+ and - move a running copy limit by a half and a third, and auto stops adjusting', () => {
	const devices = {throttled: [], watched: []};
	const governor = new CopyGovernor(0, {mode: 'fixed', bytesPerSecond: 60 * MiB}, devices, {kind: 'pacing'}, MiB, 0.4);
	try {
		assert.equal(nudgeCopyRate(-1), true, 'a running copy listens');
		assert.equal(governor.status().limit, 40 * MiB);
		assert.equal(governor.status().mode, 'manual');
		governor.nudge(1);
		assert.equal(governor.status().limit, 60 * MiB);
		assert.equal(governor.status().idleLatencyMs, 0.4, 'the idle latency recorded before dd started');
	} finally {
		governor.stop();
	}

	assert.equal(nudgeCopyRate(1), false, 'no copy, nobody listens');
});

test('max starts without a limit; - gives it one below what it reached', () => {
	const governor = new CopyGovernor(0, {mode: 'max'}, {throttled: [], watched: []}, {kind: 'pacing'}, MiB, undefined);
	try {
		assert.equal(governor.status().limit, undefined);
		governor.nudge(-1);
		assert.ok(governor.status().limit! > 0 && governor.status().limit! <= 16 * MiB);
	} finally {
		governor.stop();
	}
});

test('the latency probe: small direct reads, timed and counted; refused where direct reads are', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'probe-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	const file = path.join(dir, 'volume');
	await fs.writeFile(file, Buffer.alloc(MiB, 7));
	assert.equal(await LatencyProbe.open(file, 1024), undefined, 'a volume smaller than one read');
	assert.equal(await LatencyProbe.open(path.join(dir, 'missing'), MiB), undefined);
	const probe = await LatencyProbe.open(file, MiB);
	if (!probe) {
		t.skip(`${os.tmpdir()} takes no direct reads`);
		return;
	}

	try {
		const before = probe.reads;
		const ms = await probe.sample(3);
		assert.ok(ms !== undefined && ms >= 0, `${ms}`);
		assert.equal(probe.reads - before, 3);
	} finally {
		await probe.close();
	}
});
