import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {writeFileAtomic} from '../source/host/atomic.js';

/** A pid that names no process now: a child that has exited and been reaped. */
async function deadPid(): Promise<number> {
	const child = spawn('true');
	await new Promise((resolve) => child.on('exit', resolve));
	return child.pid!;
}

test('a write removes the temp files that a killed writer left beside the file, not a live one', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-atomic-'));
	const sleeper = spawn('sleep', ['30']);
	t.after(async () => {
		sleeper.kill('SIGKILL');
		await fs.rm(dir, {recursive: true, force: true});
	});
	const file = path.join(dir, 'dhcpd.conf');
	await fs.writeFile(file, 'before\r\n', {mode: 0o640});
	const dead = `.dhcpd.conf.farmclone-${await deadPid()}-3`;
	const live = `.dhcpd.conf.farmclone-${sleeper.pid}-0`;
	const otherFile = `.rules.farmclone-${await deadPid()}-1`;
	for (const name of [dead, live, otherFile]) await fs.writeFile(path.join(dir, name), 'half written');

	const {backup} = await writeFileAtomic(file, 'after\r\n', {backupDir: path.join(dir, 'backups')});
	assert.equal(await fs.readFile(file, 'utf8'), 'after\r\n');
	assert.equal(await fs.readFile(backup!, 'utf8'), 'before\r\n');
	assert.equal((await fs.stat(file)).mode & 0o777, 0o640, 'the mode is kept');
	const left = (await fs.readdir(dir)).filter((name) => name.startsWith('.')).sort();
	assert.deepEqual(left, [live, otherFile].sort(), 'only the dead writer of this file is cleaned');
});
