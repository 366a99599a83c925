import fs from 'node:fs/promises';

/**
 * When a process started: /proc/PID/stat field 22, in clock ticks since boot.
 * With the pid it names one process for good, so a later process reusing the
 * pid is not taken for it.
 */
export type StartTime = number;

export type ProcStat = {
	/** One letter: R, S, D, Z (zombie), X (dead)... */
	state: string;
	startTime: StartTime;
	/** Field 4. */
	ppid: number;
	/** Field 2, the command name (at most 15 bytes). */
	comm: string;
	/** Fields 14 and 15: CPU time spent in user and in kernel mode, in clock ticks. */
	utime: number;
	stime: number;
};

/** /proc/PID/NAME, or undefined when there is no such process (or it ended while being read). */
async function readProcFile(pid: number, name: string): Promise<string | undefined> {
	return fs.readFile(`/proc/${pid}/${name}`, 'utf8').catch(() => undefined);
}

/** The fields of /proc/PID/stat farmclone needs, or undefined when there is no such process. */
export async function readProcStat(pid: number): Promise<ProcStat | undefined> {
	const stat = await readProcFile(pid, 'stat');
	if (stat === undefined) return undefined;

	// Field 2 is the command name in parentheses and may itself hold spaces or parentheses.
	const close = stat.lastIndexOf(')');
	const comm = stat.slice(stat.indexOf('(') + 1, close);
	const fields = stat.slice(close + 2).split(' ');
	// fields[0] is field 3 of the whole line.
	const field = (number: number) => Number(fields[number - 3]);
	const state = fields[0];
	const startTime = field(22);
	if (state === undefined || !Number.isFinite(startTime)) return undefined;
	return {state, startTime, ppid: field(4), comm, utime: field(14), stime: field(15)};
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
	return now - (uptime - stat.startTime / clockTicksPerSecond) * 1000;
}

/** The argument vector of a process; undefined when there is no such process. */
export async function readProcCmdline(pid: number): Promise<string[] | undefined> {
	const cmdline = await readProcFile(pid, 'cmdline');
	if (cmdline === undefined) return undefined;

	const words = cmdline.split('\0');
	if (words.at(-1) === '') words.pop();
	return words;
}

/** Whether a process in this state has ended: a zombie only waits for its parent to reap it. */
const hasEnded = (stat: ProcStat) => stat.state === 'Z' || stat.state === 'X';

/** The start time of the running process `pid`; undefined when there is none, or it has ended (a zombie). */
export async function processStartTime(pid: number): Promise<StartTime | undefined> {
	const stat = await readProcStat(pid);
	return stat && !hasEnded(stat) ? stat.startTime : undefined;
}

/**
 * Whether the process `pid` that started at `startTime` (any, when undefined)
 * still runs. A zombie has ended.
 */
export async function isSameProcessAlive(pid: number, startTime: StartTime | undefined): Promise<boolean> {
	const current = await processStartTime(pid);
	return current !== undefined && (startTime === undefined || current === startTime);
}

/**
 * A start time as it was recorded (journal facts, lock and state files):
 * a number, or the string of digits that earlier versions wrote.
 */
export function recordedStartTime(value: unknown): StartTime | undefined {
	const startTime = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
	return typeof startTime === 'number' && Number.isFinite(startTime) ? startTime : undefined;
}

/** A process of the session's sshd: the one forked for this connection, or its privilege-separated child. */
export type SessionSshd = {pid: number; comm: string; startTime: StartTime};

/**
 * The sshd nearest above `pid` in its ancestry: the process sshd forked for
 * this SSH connection (named sshd, or sshd-session since OpenSSH 9.8), so it
 * started when the connection did. A multiplexed session reuses its
 * connection's sshd, and so its age too.
 */
export async function sessionSshd(pid: number = process.pid): Promise<SessionSshd | undefined> {
	let current = pid;
	for (let depth = 0; depth < 64 && current > 1; depth++) {
		const stat = await readProcStat(current);
		if (!stat) return undefined;
		if (current !== pid && /^sshd(-session)?$/.test(stat.comm)) {
			return {pid: current, comm: stat.comm, startTime: stat.startTime};
		}

		current = stat.ppid;
	}

	return undefined;
}

export type MountHolder = {pid: number; comm: string};

/**
 * The processes whose mount namespace has `source` (a device) mounted. A copy
 * of a mount made when a namespace was created (`unshare -m`, `ip netns exec`,
 * a service with private mounts) outlives an umount in ours and keeps the
 * filesystem, and the device under it, in use. One process per namespace.
 */
export async function processesMounting(source: string): Promise<MountHolder[]> {
	const pids = (await fs.readdir('/proc').catch(() => [])).filter((name) => /^\d+$/.test(name)).map(Number);
	const seen = new Set<string>();
	const holders: MountHolder[] = [];
	for (const pid of pids) {
		const namespace = await fs.readlink(`/proc/${pid}/ns/mnt`).catch(() => undefined);
		if (!namespace || seen.has(namespace)) continue;
		seen.add(namespace);
		const mountinfo = await readProcFile(pid, 'mountinfo');
		if (!mountinfo?.split('\n').some((line) => line.split(' - ')[1]?.split(' ')[1] === source)) continue;
		holders.push({pid, comm: (await readProcStat(pid))?.comm ?? '?'});
	}

	return holders;
}
