import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {readLock, removeStaleLock, withFileLock} from '../source/sim/file-lock.js';

async function lockDir(t: {after(fn: () => Promise<void>): void}): Promise<string> {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-lock-'));
	t.after(async () => fs.rm(dir, {recursive: true, force: true}));
	return dir;
}

test('a lock released by an owner that then exited is not taken from the owner that came next', async (t) => {
	const lockFile = path.join(await lockDir(t), 'lvm.lock');
	await fs.writeFile(lockFile, '999999999');
	const seen = await readLock(lockFile);
	assert.ok(seen);
	// The owner seen releases it; another takes it before the waiter acts on what it read.
	await fs.rm(lockFile);
	await fs.writeFile(lockFile, String(process.pid));
	await removeStaleLock(lockFile, seen);
	assert.equal(await fs.readFile(lockFile, 'utf8'), String(process.pid));
	assert.deepEqual((await fs.readdir(path.dirname(lockFile))).sort(), ['lvm.lock']);
});

test('the lock of an owner that died holding it is taken over', async (t) => {
	const lockFile = path.join(await lockDir(t), 'lvm.lock');
	await fs.writeFile(lockFile, '999999999');
	let ran = false;
	await withFileLock(lockFile, async () => {
		ran = true;
		assert.equal(await fs.readFile(lockFile, 'utf8'), String(process.pid));
	});
	assert.ok(ran);
	await assert.rejects(fs.stat(lockFile), {code: 'ENOENT'});
});

test('a lock held by a live owner is waited for', async (t) => {
	const lockFile = path.join(await lockDir(t), 'lvm.lock');
	const order: string[] = [];
	let release!: () => void;
	const held = new Promise<void>((resolve) => {
		release = resolve;
	});
	const first = withFileLock(lockFile, async () => {
		order.push('first in');
		await held;
		order.push('first out');
	});
	while (!order.includes('first in')) await new Promise((resolve) => setImmediate(resolve));
	const second = withFileLock(lockFile, async () => {
		order.push('second');
	});
	release();
	await Promise.all([first, second]);
	assert.deepEqual(order, ['first in', 'first out', 'second']);
});

test("while another waiter takes over, a waiter leaves the lock alone; a dead waiter's takeover is cleared", async (t) => {
	const lockFile = path.join(await lockDir(t), 'lvm.lock');
	await fs.writeFile(lockFile, '999999999');
	const seen = await readLock(lockFile);
	assert.ok(seen);
	// A live waiter (this process) is taking over: the dead owner's file stays for it to remove.
	await fs.writeFile(`${lockFile}.takeover`, String(process.pid));
	await removeStaleLock(lockFile, seen);
	assert.equal(await fs.readFile(lockFile, 'utf8'), '999999999');
	// The waiter that was taking over died: its file goes, and the next try takes the stale lock over.
	await fs.writeFile(`${lockFile}.takeover`, '999999998');
	await removeStaleLock(lockFile, seen);
	await removeStaleLock(lockFile, seen);
	assert.deepEqual(await fs.readdir(path.dirname(lockFile)), []);
});
