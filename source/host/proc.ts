import fs from 'node:fs/promises';

export type ProcStat = {
	/** One letter: R, S, D, Z (zombie), X (dead)... */
	state: string;
	/** Field 22, clock ticks since boot: with the pid it names one process for good. */
	startTime: string;
};

/** The fields of /proc/PID/stat farmclone needs, or undefined when there is no such process. */
export async function readProcStat(pid: number): Promise<ProcStat | undefined> {
	let stat: string;
	try {
		stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
	} catch {
		return undefined;
	}

	// Field 2 is the command name in parentheses and may itself hold spaces or parentheses.
	const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
	const [state, startTime] = [fields[0], fields[22 - 3]];
	return state === undefined || startTime === undefined ? undefined : {state, startTime};
}

/**
 * USER_HZ, the unit of /proc's clock ticks: 100 on every architecture Debian
 * releases for (sysconf(_SC_CLK_TCK) is not reachable from Node).
 */
export const clockTicksPerSecond = 100;

/** Seconds since boot, on the clock /proc/PID/stat's start times count on (10 ms steps). */
export async function readUptimeSeconds(): Promise<number> {
	const uptime = Number((await fs.readFile('/proc/uptime', 'utf8')).split(' ')[0]);
	if (!Number.isFinite(uptime)) throw new Error('/proc/uptime holds no uptime');
	return uptime;
}

/**
 * When the process of `stat` started, in milliseconds since the epoch:
 * within 10 ms (a clock tick, and /proc/uptime's step).
 */
export async function processStartedAt(stat: ProcStat): Promise<number> {
	const now = Date.now();
	const uptime = await readUptimeSeconds();
	return now - (uptime - Number(stat.startTime) / clockTicksPerSecond) * 1000;
}

/** The argument vector of a process; undefined when there is no such process. */
export async function readProcCmdline(pid: number): Promise<string[] | undefined> {
	let cmdline: string;
	try {
		cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
	} catch {
		return undefined;
	}

	const words = cmdline.split('\0');
	if (words.at(-1) === '') words.pop();
	return words;
}

/** Field 22 of /proc/PID/stat: start time in clock ticks, which with the pid names one process for good. */
export async function processStartTime(pid: number): Promise<string | undefined> {
	return (await readProcStat(pid))?.startTime;
}

/**
 * Whether the process `pid` that started at `startTime` (any, when undefined)
 * still runs. A zombie has ended: it only waits for its parent to reap it.
 */
export async function isSameProcessAlive(pid: number, startTime: string | undefined): Promise<boolean> {
	const stat = await readProcStat(pid);
	if (stat === undefined || stat.state === 'Z' || stat.state === 'X') return false;
	return startTime === undefined || stat.startTime === startTime;
}
