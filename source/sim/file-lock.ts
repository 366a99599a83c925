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
			const owner = Number((await fs.readFile(lockFile, 'utf8').catch(() => '')).trim());
			if (owner && !isProcessAlive(owner)) {
				await fs.rm(lockFile, {force: true});
				continue;
			}

			if (Date.now() > deadline) throw new Error(`${lockFile} is held by process ${owner || '?'}`);
			await new Promise((resolve) => setTimeout(resolve, 50));
		}
	}

	try {
		return await action();
	} finally {
		await fs.rm(lockFile, {force: true});
	}
}
