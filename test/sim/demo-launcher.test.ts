import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {execa} from 'execa';
import {stopSimServices} from '../../source/sim/services.js';

const cli = path.resolve('dist/cli.js');

test('the demo prints its commands within 80 columns, each alone on its line, and each works as printed', async (t) => {
	const work = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-demo-'));
	t.after(async () => {
		await stopSimServices(work).catch(() => undefined);
		await fs.rm(work, {recursive: true, force: true});
	});
	// No directories in the environment: the demo picks its own inside DIR, as a new user's would.
	const env = {FARMCLONE_CONFIG_DIR: '', FARMCLONE_STATE_DIR: '', FARMCLONE_SELF: '', FARMCLONE_DEMO_DIR: ''};
	const demo = await execa(process.execPath, [cli, 'demo', '--no-run', '--size', '32M', '--dir', work], {env});
	const lines = demo.stdout.split('\n');
	const after = (label: string) => lines[lines.findIndex((line) => line.endsWith(label)) + 1]?.trim() ?? '';
	const run = after('run it with:');
	const stop = after('stop them with:');
	const launcher = path.join(work, 'bin', 'farmclone');
	assert.equal(run, `${launcher} run gallifrey-dev`);
	assert.equal(stop, `${launcher} demo --stop`);
	// Each command alone on its line, indented, within 80 columns (the mkdtemp directory is as long as any).
	for (const command of [run, stop]) assert.ok(`  ${command}`.length <= 80, command);
	// The launcher carries the demo's directories: the farm it saved is there, and plan reads it.
	const plan = await execa(launcher, ['plan', 'gallifrey-dev'], {env, reject: false});
	assert.equal(plan.exitCode, 0, `${plan.stdout}\n${plan.stderr}`);
	assert.match(plan.stdout, /gallifrey-dev/);
	const stopped = await execa('sh', ['-c', stop], {env});
	assert.match(stopped.stdout, new RegExp(`stopped the simulated host's services in ${work}`));
});
