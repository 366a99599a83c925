import assert from 'node:assert/strict';
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

test('auto and max copy with workers in windows of 16 blocks, capped at 64 MiB; a fixed rate with dd', () => {
	assert.equal(blockSizeFor({mode: 'max'}, 1024 * 1024), 16 * 1024 * 1024);
	assert.equal(blockSizeFor({mode: 'auto'}, 4096), 64 * 1024);
	assert.equal(blockSizeFor({mode: 'max'}, 32 * 1024 * 1024), 64 * 1024 * 1024);
	assert.equal(blockSizeFor({mode: 'fixed', bytesPerSecond: 80 * MiB}, 1024 * 1024), 1024 * 1024);
	assert.equal(workersFor({mode: 'auto'}), 4);
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

test('auto: others waiting far above idle cut the copy to the floor; near idle it speeds up; alone it lifts the limit', () => {
	const state: AutoState = {limit: undefined, peakRate: 0, quietIntervals: 0, idleLatencyMs: 0.4};
	// Alone: the copy's own requests are slow (a queue of its own), and that is nobody's business.
	const alone = {seconds: 0.5, diskRequests: 300, ownRequests: 298, completed: 300, ticks: 3000, ownRate: 200e6};
	assert.equal(autoStep(state, alone).limit, undefined);
	// Other requests at idle latency: nobody suffers, no limit.
	const harmless = {...alone, diskRequests: 2000, completed: 2000, ticks: 2000 * 0.4};
	assert.equal(autoStep(state, harmless).limit, undefined);
	// Others at 10x idle: straight to the floor.
	const hurting = {...harmless, ticks: 2000 * 4};
	const decision = autoStep(state, hurting);
	assert.equal(decision.limit, autoFloor);
	assert.equal(decision.foreignRate, (2000 - 298) / 0.5);
	assert.equal(decision.latencyMs, 4);
	// 1.2x idle while the copy uses its limit: a quarter faster.
	assert.equal(autoStep(state, {...harmless, ticks: 2000 * 0.48, ownRate: autoFloor}).limit, autoFloor * 1.25);
	// 3x idle: half of what the copy did.
	state.limit = 100 * MiB;
	assert.equal(autoStep(state, {...harmless, ticks: 2000 * 1.2, ownRate: 80 * MiB}).limit, 40 * MiB);
	let steps = 0;
	while (autoStep(state, {...alone, ownRate: 10e6}).limit !== undefined) steps++;
	// From the floor, x4 per half-second step past 1.5x the 200 MB/s peak: within 2 s, well within 10 s.
	assert.ok(steps <= 3, `${steps} steps`);
});

test('auto: an unknown idle latency is learned as the least seen while others use the disks', () => {
	const state: AutoState = {limit: undefined, peakRate: 0, quietIntervals: 0, idleLatencyMs: undefined};
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
