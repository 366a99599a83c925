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
 * file is moved aside (one waiter wins the move) and kept away only when it
 * is the same file, owner and inode (a freed inode is reused at once); a live
 * owner's file moved by mistake goes back.
 */
export async function removeStaleLock(lockFile: string, stale: {owner: number; inode: number}): Promise<void> {
	const aside = `${lockFile}.stale-${process.pid}`;
	try {
		await fs.rename(lockFile, aside);
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
		throw error;
	}

	const moved = await readLock(aside);
	if (moved && (moved.inode !== stale.inode || moved.owner !== stale.owner))
		await fs.link(aside, lockFile).catch(() => undefined);
	await fs.rm(aside, {force: true});
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
