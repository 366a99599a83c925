import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {isSameProcessAlive, processStartTime, recordedStartTime, type StartTime} from '../host/proc.js';

export type LockOwner = {pid: number; host: string; since: string; startTime?: StartTime; command: string};

function ago(since: string, now = Date.now()): string {
	const seconds = Math.max(0, Math.round((now - Date.parse(since)) / 1000));
	if (!Number.isFinite(seconds)) return 'unknown';
	if (seconds < 90) return `${seconds} s ago`;
	if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
	return `${(seconds / 3600).toFixed(1)} h ago`;
}

export class LockedError extends Error {
	constructor(readonly owner: LockOwner) {
		super(
			`the farm is in use by another session: "${owner.command}", pid ${owner.pid} on ${owner.host}, ` +
				`since ${owner.since} (${ago(owner.since)}); wait for it to finish, or stop that process (kill ${owner.pid})`,
		);
		this.name = 'LockedError';
	}
}

function lockPath(farmDir: string): string {
	return path.join(farmDir, 'lock');
}

export async function readLock(farmDir: string): Promise<LockOwner | undefined> {
	try {
		const owner = JSON.parse(await fs.readFile(lockPath(farmDir), 'utf8')) as LockOwner;
		return {...owner, startTime: recordedStartTime(owner.startTime)};
	} catch {
		return undefined;
	}
}

/** Whether the lock's owner still runs: a lock from another host counts as held, as acquireLock treats it. */
export async function isLockHeld(owner: LockOwner): Promise<boolean> {
	return owner.host !== os.hostname() || isSameProcessAlive(owner.pid, owner.startTime);
}

/** Held for the instant a stale lock is replaced, so that two takers cannot both replace it. */
async function withTakeoverGuard(farmDir: string, action: () => Promise<void>): Promise<void> {
	const guard = path.join(farmDir, 'lock.takeover');
	try {
		await fs.writeFile(guard, String(process.pid), {flag: 'wx', mode: 0o600});
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
		// Its owner died in the middle of a takeover: a guard this old is no one's.
		const stat = await fs.stat(guard).catch(() => undefined);
		if (stat && Date.now() - stat.mtimeMs > 10_000) await fs.rm(guard, {force: true});
		return;
	}

	try {
		await action();
	} finally {
		await fs.rm(guard, {force: true});
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
	for (let attempt = 0; attempt < 20; attempt++) {
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
		if (owner && (await isLockHeld(owner))) throw new LockedError(owner);
		// Stale (its owner died), or unreadable half-way through its creation: replace it only if it is still the
		// same file, under the takeover guard, then retry the exclusive create.
		await withTakeoverGuard(farmDir, async () => {
			const again = await readLock(farmDir);
			if (JSON.stringify(again) !== JSON.stringify(owner)) return;
			const stat = await fs.stat(file).catch(() => undefined);
			// An unreadable lock may be one being written right now; only an old one is a leftover.
			if (owner || (stat && Date.now() - stat.mtimeMs > 2000)) await fs.rm(file, {force: true});
		});
		await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
	}

	throw new Error(`could not take the lock ${file}`);
}
