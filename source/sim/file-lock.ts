import fs from 'node:fs/promises';
import path from 'node:path';

export function isProcessAlive(pid: number | undefined): pid is number {
	if (!pid || !Number.isInteger(pid) || pid <= 0) return false;
	try {
		process.kill(pid, 0);
		return true;
	} catch (error) {
		return (error as NodeJS.ErrnoException).code === 'EPERM';
	}
}

/** The lock file's owner and inode, read through one handle so that both are of the same file. */
export async function readLock(lockFile: string): Promise<{owner: number; inode: number} | undefined> {
	const handle = await fs.open(lockFile, 'r').catch(() => undefined);
	if (!handle) return undefined;
	try {
		const {ino} = await handle.stat();
		return {owner: Number((await handle.readFile('utf8')).trim()), inode: ino};
	} finally {
		await handle.close();
	}
}

/**
 * Removes the lock file `stale` was read from, and only that file. A pid
 * that no longer runs is not enough: an owner that released the lock and
 * exited looks the same, and by then the file may be a new owner's. So the
 * takeover is itself done under a second lock (`.takeover`, one waiter at a
 * time), which reads the lock file again and removes it only when it is
 * still the same file, owner and inode. Nobody else removes a dead owner's
 * file, so it cannot be replaced between that reading and the removal (moving
 * it aside and back, as before, let a third process create a lock in between:
 * two owners at once).
 */
export async function removeStaleLock(lockFile: string, stale: {owner: number; inode: number}): Promise<void> {
	const takeover = `${lockFile}.takeover`;
	try {
		const handle = await fs.open(takeover, 'wx');
		await handle.writeFile(String(process.pid));
		await handle.close();
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
		// Another waiter takes over; one that died doing so leaves its file, removed here for the next try.
		const other = await readLock(takeover);
		if (other?.owner && !isProcessAlive(other.owner)) await fs.rm(takeover, {force: true});
		return;
	}

	try {
		const current = await readLock(lockFile);
		if (current?.inode === stale.inode && current.owner === stale.owner) await fs.rm(lockFile, {force: true});
	} finally {
		await fs.rm(takeover, {force: true});
	}
}

/**
 * Runs `action` holding an exclusive lock file (which names its owner's pid),
 * so that stand-ins called at the same time do not interleave their state
 * changes. A lock whose owner died is taken over.
 */
export async function withFileLock<T>(lockFile: string, action: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
	await fs.mkdir(path.dirname(lockFile), {recursive: true});
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		try {
			const handle = await fs.open(lockFile, 'wx');
			await handle.writeFile(String(process.pid));
			await handle.close();
			break;
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
			const lock = await readLock(lockFile);
			// An empty file is an owner between its open and its write.
			if (lock?.owner && !isProcessAlive(lock.owner)) {
				await removeStaleLock(lockFile, lock);
				continue;
			}

			if (Date.now() > deadline) throw new Error(`${lockFile} is held by process ${lock?.owner || '?'}`);
			await new Promise((resolve) => setTimeout(resolve, 50));
		}
	}

	try {
		return await action();
	} finally {
		await fs.rm(lockFile, {force: true});
	}
}
