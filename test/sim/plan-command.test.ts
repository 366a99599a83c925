import assert from 'node:assert/strict';
import {test} from 'node:test';
import {execa} from 'execa';
import {SettingsStore} from '../../source/settings/store.js';
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

test('another saved farm taking the same address and port: plan and run refuse it alike, naming that farm', async (t) => {
	const farm = await makeFarm(t);
	const store = new SettingsStore(farm.env['FARMCLONE_CONFIG_DIR']);
	store.save({...farm.settings, name: 'other-dev', record: 'other-dev.xivo.vm', mac: '52:54:00:4f:a1:7f'});
	const clash = /^ {2}(✘ )?(ip|sshPort) = .*farm other-dev's settings take it too/;
	const same = (line: string) => line.replace('✘ ', '').replace(/; \S+ is free: .*/, '');
	const plan = await execa(process.execPath, [cli, 'plan', farmName], {env: farm.env, reject: false});
	const planned = plan.stdout.split('\n').filter((line) => clash.test(line));
	assert.equal(planned.length, 2, plan.stdout);
	const run = await execa(process.execPath, [cli, 'run', farmName, '--yes'], {env: farm.env, reject: false});
	assert.equal(run.exitCode, 2, `${run.stdout}\n${run.stderr}`);
	const refused = `${run.stdout}\n${run.stderr}`.split('\n').filter((line) => clash.test(line));
	assert.deepEqual(refused.map(same), planned.map(same));
	assert.equal(await farm.journal().catch(() => undefined), undefined, 'nothing ran: no journal');
});
