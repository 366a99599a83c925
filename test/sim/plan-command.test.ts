import assert from 'node:assert/strict';
import {test} from 'node:test';
import {execa} from 'execa';
import {cli, farmName, makeFarm} from '../kit/farm.js';

test('farmclone plan on a fresh farm: nothing in the way, what later stages make is "not yet"', async (t) => {
	const farm = await makeFarm(t);
	const result = await execa(process.execPath, [cli, 'plan', farmName], {env: farm.env, reject: false});
	assert.equal(result.exitCode, 0, result.stderr);
	const text = result.stdout;
	assert.deepEqual(
		text.split('\n').filter((line) => /^ {3}now: conflict/.test(line)),
		[],
		'a fresh farm has nothing in the way',
	);
	assert.match(
		text,
		/10\. Ganeti instance.*\n {3}now: not yet: volume all\/gallifrey-dev to adopt is missing \(stage 2,/,
	);
	assert.match(text, /13\. Start the VM.*\n {3}now: not yet: no instance .* to start \(stage 10, Ganeti instance/);
	assert.match(text, /14\. Balloon memory down.*\n {3}now: not yet: .* is not running: nothing to balloon \(stage 13,/);
});
