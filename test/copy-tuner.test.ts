import assert from 'node:assert/strict';
import {test} from 'node:test';
import {ShapeTuner, type Segment, type Shape} from '../source/host/copy-tuner.js';
import {tuneShapesFor} from '../source/host/copy-rate.js';

const MiB = 1024 * 1024;
const small: Shape = {window: MiB, workers: 2};
const large: Shape = {window: 32 * MiB, workers: 2};

/** Runs a whole copy through the tuner with a made-up rate per shape (bytes per second, by the segment's start). */
function simulate(tuner: ShapeTuner, total: number, rateOf: (shape: Shape, at: number) => number) {
	const segments: Array<Segment & {at: number}> = [];
	const winners: Shape[] = [];
	for (let at = 0; at < total;) {
		const segment = tuner.next(total - at);
		assert.ok(segment.bytes > 0, 'every segment copies something');
		segments.push({...segment, at});
		const chosen = tuner.measured(segment, segment.bytes / rateOf(segment.shape, at));
		if (chosen) winners.push(chosen.winner);
		at += segment.bytes;
	}

	return {segments, winners};
}

const sizes = {trial: 256 * MiB, retune: 4096 * MiB};

test('the tuner tries each shape on a segment, keeps the fastest, and tries again every few GiB', () => {
	const tuner = new ShapeTuner([small, large], large, 32 * MiB, sizes);
	// Idle until 4.5 GiB (small windows faster), busy CPUs after (large windows faster).
	const busyFrom = 4608 * MiB;
	const rateOf = (shape: Shape, at: number) => ((shape === small) === at < busyFrom ? 800e6 : 600e6);
	const total = 9 * 1024 * MiB;
	const {segments, winners} = simulate(tuner, total, rateOf);
	assert.deepEqual(winners, [small, large]);
	assert.deepEqual(
		segments.map(({shape, bytes, trial}) => [shape === small ? 'small' : 'large', bytes / MiB, trial]),
		[
			['small', 256, true],
			['large', 256, true],
			['small', 4096, false],
			['small', 256, true],
			['large', 256, true],
			['large', 4096, false],
		],
	);
	assert.equal(
		segments.reduce((sum, segment) => sum + segment.bytes, 0),
		total,
	);
	// Every segment starts on a whole window of the largest shape: the resume point's alignment.
	for (const {at} of segments) assert.equal(at % (32 * MiB), 0);
});

test('a copy too short for trials keeps the given shape; trial sizes round up to whole large windows', () => {
	const short = simulate(new ShapeTuner([small, large], large, 32 * MiB, sizes), 1000 * MiB, () => 1);
	assert.deepEqual(
		short.segments.map(({shape, bytes, trial}) => [shape, bytes, trial]),
		[[large, 1000 * MiB, false]],
	);
	const odd = new ShapeTuner([small, large], large, 48 * MiB, sizes);
	assert.equal(odd.next(10_000 * MiB).bytes, 288 * MiB);
	// A tie goes to the first candidate, and so does a later one faster by no more than the margin: trials a
	// rate limit holds to one rate (auto's, with the neighbours busy) keep the small windows.
	const tie = simulate(new ShapeTuner([small, large], large, 32 * MiB, sizes), 2048 * MiB, () => 5e8);
	assert.deepEqual(tie.winners, [small]);
	const near = (shape: Shape) => (shape === small ? 5e8 : 5.2e8);
	assert.deepEqual(simulate(new ShapeTuner([small, large], large, 32 * MiB, sizes), 2048 * MiB, near).winners, [small]);
	const clear = (shape: Shape) => (shape === small ? 5e8 : 5.5e8);
	assert.deepEqual(simulate(new ShapeTuner([small, large], large, 32 * MiB, sizes), 2048 * MiB, clear).winners, [
		large,
	]);
});

test('max and auto tune, a fixed rate does not: one block against the window of 32 blocks', () => {
	assert.deepEqual(tuneShapesFor({mode: 'max'}, MiB), [small, large]);
	assert.deepEqual(tuneShapesFor({mode: 'auto'}, MiB), [small, large]);
	assert.deepEqual(tuneShapesFor({mode: 'max'}, 4096), [
		{window: 4096, workers: 2},
		{window: 128 * 1024, workers: 2},
	]);
	assert.equal(tuneShapesFor({mode: 'fixed', bytesPerSecond: 1e6}, MiB), undefined);
	// 3 MiB blocks: a window capped at 64 MiB that is no whole number of them.
	assert.equal(tuneShapesFor({mode: 'max'}, 3 * MiB), undefined);
	assert.equal(tuneShapesFor({mode: 'max'}, 1000), undefined);
});
