import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export type LockOwner = {pid: number; host: string; since: string; startTime?: string; command: string};

export class LockedError extends Error {
	constructor(readonly owner: LockOwner) {
		super(
			`farm is in use by pid ${owner.pid} on ${owner.host} since ${owner.since} (${owner.command}); ` +
				'wait for it to finish, or stop that process',
		);
		this.name = 'LockedError';
	}
}

/** Field 22 of /proc/PID/stat: start time in clock ticks, which with the pid names one process for good. */
export async function processStartTime(pid: number): Promise<string | undefined> {
	try {
		const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
		// The command name may hold spaces and parentheses: count fields after the last ')'.
		const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
		return fields[19];
	} catch {
		return undefined;
	}
}

export async function isSameProcessAlive(pid: number, startTime: string | undefined): Promise<boolean> {
	const current = await processStartTime(pid);
	if (current === undefined) return false;
	return startTime === undefined || current === startTime;
}

function lockPath(farmDir: string): string {
	return path.join(farmDir, 'lock');
}

export async function readLock(farmDir: string): Promise<LockOwner | undefined> {
	try {
		return JSON.parse(await fs.readFile(lockPath(farmDir), 'utf8')) as LockOwner;
	} catch {
		return undefined;
	}
}

/**
 * One session per farm. The lock file names its owner (pid, start time,
 * host); a lock whose owner is gone is taken over. Detached helpers (the copy,
 * the firewall watchdog) never hold it, so they are not mistaken for a session.
 */
export async function acquireLock(farmDir: string, command: string): Promise<() => Promise<void>> {
	await fs.mkdir(farmDir, {recursive: true, mode: 0o700});
	const me: LockOwner = {
		pid: process.pid,
		host: os.hostname(),
		since: new Date().toISOString(),
		startTime: await processStartTime(process.pid),
		command,
	};
	const file = lockPath(farmDir);
	for (let attempt = 0; attempt < 3; attempt++) {
		try {
			await fs.writeFile(file, JSON.stringify(me), {flag: 'wx', mode: 0o600});
			return async () => {
				const owner = await readLock(farmDir);
				if (owner?.pid === me.pid && owner.startTime === me.startTime) await fs.rm(file, {force: true});
			};
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
		}

		const owner = await readLock(farmDir);
		if (owner && owner.host === me.host && (await isSameProcessAlive(owner.pid, owner.startTime))) {
			throw new LockedError(owner);
		}

		if (owner && owner.host !== me.host) throw new LockedError(owner);
		// Stale: its owner died. Remove it only if it is still the same stale file, then retry the exclusive create.
		const again = await readLock(farmDir);
		if (JSON.stringify(again) === JSON.stringify(owner)) await fs.rm(file, {force: true});
	}

	throw new Error(`could not take the lock ${file}`);
}
