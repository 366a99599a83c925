import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import {test} from 'node:test';
import {completeRun, farmName, farmTree, makeFarm, runArgs, startCli, treeDifferences} from '../kit/farm.js';

const isRoot = process.getuid?.() === 0;

/** Every file under `dir` with its content (empty when there is no such directory). */
async function files(dir: string): Promise<Record<string, string>> {
	const found: Record<string, string> = {};
	const entries = await fs.readdir(dir, {recursive: true, withFileTypes: true}).catch(() => []);
	for (const entry of entries) {
		const file = path.join(entry.parentPath, entry.name);
		if (entry.isFile()) found[path.relative(dir, file)] = await fs.readFile(file, 'utf8');
	}

	return found;
}

test(
	'farmclone plan changes nothing: the farm tree and the run state stay byte-identical',
	{skip: !isRoot && 'the simulated farm needs root', timeout: 300_000},
	async (t) => {
		const farm = await makeFarm(t);
		const tree = await farmTree(farm.root, {normalize: false});
		const state = await files(path.dirname(farm.stateDir));
		const plan = await startCli(farm, ['plan', farmName]).done;
		assert.equal(plan.exitCode, 0, `${plan.stdout}\n${plan.stderr}`);
		assert.match(plan.stdout, /identity|Make the clone its own machine/);
		assert.doesNotMatch(plan.stdout, /while only looking/, 'no stage tried to change the host while planning');
		assert.deepEqual(treeDifferences(tree, await farmTree(farm.root, {normalize: false})), []);
		assert.deepEqual(await files(path.dirname(farm.stateDir)), state, 'no journal, facts nor lock written');
	},
);

test(
	'farmclone plan in a loop beside a full run: the run ends byte-identical to an undisturbed one',
	{skip: !isRoot && 'the simulated farm needs root', timeout: 900_000},
	async (t) => {
		const undisturbed = await makeFarm(t);
		await completeRun(undisturbed);
		const expected = await farmTree(undisturbed.root, {normalize: true});

		const farm = await makeFarm(t);
		const run = startCli(farm, await runArgs());
		let ended = false;
		const result = run.done.finally(() => {
			ended = true;
		});
		let plans = 0;
		// As many plans as the run lasts, one after the other: no timing, the loop ends when the run does.
		while (!ended) {
			await startCli(farm, ['plan', farmName]).done;
			plans++;
		}

		const {exitCode, stdout, stderr} = await result;
		assert.equal(exitCode, 0, `the run failed beside plan:\n${stdout.split('\n').slice(-15).join('\n')}\n${stderr}`);
		assert.equal((await farm.journal()).outcome, 'done');
		assert.ok(plans >= 1);
		assert.deepEqual(treeDifferences(expected, await farmTree(farm.root, {normalize: true})), []);
	},
);
