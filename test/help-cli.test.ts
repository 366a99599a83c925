import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {execa} from 'execa';

const cli = path.resolve('dist/cli.js');

async function farmclone(args: string[]) {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-help-'));
	const env = {FARMCLONE_CONFIG_DIR: path.join(dir, 'config'), FARMCLONE_STATE_DIR: path.join(dir, 'state')};
	try {
		const result = await execa('node', [cli, ...args], {env, reject: false});
		// Help touches no farm: neither the settings nor the state directory comes to exist.
		const left = await fs.readdir(dir);
		return {...result, left};
	} finally {
		await fs.rm(dir, {recursive: true, force: true});
	}
}

for (const args of [
	['run', '--help'],
	['run', 'gallifrey', '--help'],
	['run', 'gallifrey', '-h'],
	['help', 'run'],
]) {
	test(`farmclone ${args.join(' ')} prints the usage of run and exits 0`, async () => {
		const result = await farmclone(args);
		assert.equal(result.exitCode, 0, result.stderr);
		assert.match(result.stdout, /\$ farmclone run NAME/);
		assert.doesNotMatch(result.stdout, /\$ farmclone plan NAME/);
		assert.deepEqual(result.left, []);
	});
}

for (const command of ['plan', 'status', 'undo', 'demo', 'farm']) {
	test(`farmclone help ${command} and ${command} -h print its usage`, async () => {
		for (const args of [
			['help', command],
			[command, '-h'],
		]) {
			const result = await farmclone(args);
			assert.equal(result.exitCode, 0, result.stderr);
			assert.match(result.stdout, new RegExp(`\\$ farmclone ${command}`));
			assert.deepEqual(result.left, []);
		}
	});
}

test('farmclone -h and --help print the whole usage', async () => {
	for (const flag of ['-h', '--help']) {
		const result = await farmclone([flag]);
		assert.equal(result.exitCode, 0);
		assert.match(result.stdout, /\$ farmclone run NAME/);
		assert.match(result.stdout, /\$ farmclone plan NAME/);
	}
});

test('farmclone help of an unknown command is a usage error', async () => {
	const result = await farmclone(['help', 'bogus']);
	assert.equal(result.exitCode, 2);
	assert.match(result.stderr, /unknown command bogus/);
});

test('a missing farm name says how to give one', async () => {
	const result = await farmclone(['run']);
	assert.equal(result.exitCode, 2);
	assert.match(result.stderr, /farmclone run NAME/);
});

test('every usage fits 80 columns: nothing wraps in an 80-column terminal', async () => {
	const {commandUsage, usage} = await import('../source/help.js');
	for (const command of [undefined, ...Object.keys(commandUsage)]) {
		const long = (usage(command) ?? '').split('\n').filter((line) => line.length > 80);
		assert.deepEqual(long, [], `farmclone help ${command ?? ''}`);
	}
});
