import assert from 'node:assert/strict';
import {test} from 'node:test';
import {makeFarm, runArgs, startCli} from '../kit/farm.js';

/**
 * The output going away under a headless run (the reading end of its pipe
 * closed, as with a dropped SSH session running `farmclone ... | tee log`):
 * writing fails with EPIPE, which must not kill farmclone. It stops quietly
 * at its next safe point, with the journal saying what is done, and a rerun
 * finishes.
 */
test(
	'stdout closed under a headless run: no crash, a consistent journal, a rerun finishes',
	{timeout: 240_000},
	async (t) => {
		const farm = await makeFarm(t);
		let closed = false;
		const first = startCli(farm, await runArgs(), (event) => {
			if (closed || event.type !== 'stage-done' || event.stage !== 'dns-record') return;
			closed = true;
			first.child.stdout?.destroy();
		});
		const result = await first.done;
		assert.ok(closed);
		assert.equal(result.signal, undefined, 'farmclone was not killed by a signal');
		assert.equal(result.exitCode, 1, `farmclone stopped (not crashed): ${result.stderr}`);
		assert.doesNotMatch(result.stderr, /EPIPE|Unhandled|at .*\.js:\d+/);

		const journal = await farm.journal();
		assert.equal(journal.stages['dns-record']?.state, 'done');
		assert.notEqual(journal.outcome, 'done', 'it stopped before the end');
		assert.equal(journal.outcome, 'stopped');

		const rerun = await startCli(farm, await runArgs()).done;
		assert.equal(rerun.exitCode, 0, rerun.stdout.split('\n').slice(-8).join('\n'));
		assert.equal((await farm.journal()).outcome, 'done');
	},
);
