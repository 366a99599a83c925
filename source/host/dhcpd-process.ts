import fs from 'node:fs/promises';
import path from 'node:path';
import type {ReadOnlyHost} from './host.js';
import {clockTime} from './clock.js';
import {processStartedAt, readProcCmdline, readProcStat} from './proc.js';

/**
 * dhcpd reads its configuration only when it starts, and refuses to start on
 * a bad one, while an init script or systemctl may exit 0 all the same. So
 * the proof that dhcpd loaded dhcpd.conf is the process itself: the pid file
 * names a live dhcpd reading that file, started after the restart began and
 * after the file last changed.
 */

/** Where Debian's dhcpd reads its configuration when not given -cf. */
export const dhcpdDefaultConf = '/etc/dhcp/dhcpd.conf';

/** Start times count in 10 ms clock ticks and /proc/uptime in 10 ms steps: comparisons allow both. */
const clockSlackMs = 20;

export type DhcpdFiles = {dhcpdPidFile: string; dhcpdConf: string};

export type RunningDhcpd = {pid: number; startedAt: number; conf: string};

/**
 * What one look found. `absent`: no live process behind the pid file;
 * `foreign`: the pid file names something else; `other-conf`: a dhcpd
 * reading another file; `stale`: our dhcpd, started too early.
 */
export type DhcpdLook =
	| {dhcpd: RunningDhcpd; problem?: undefined}
	| {dhcpd?: RunningDhcpd; problem: string; kind: 'absent' | 'foreign' | 'other-conf' | 'stale'};

/** A point in time the running dhcpd must not have started before, and what happened then. */
export type StartedAfter = {at: number; what: string};

async function realPath(file: string): Promise<string> {
	return fs.realpath(file).catch(() => path.resolve(file));
}

async function modifiedAt(file: string): Promise<number | undefined> {
	return fs.stat(file).then(
		(stat) => stat.mtimeMs,
		() => undefined,
	);
}

/** The dhcpd the pid file names, provided it is alive and reads `files.dhcpdConf`. */
export async function findRunningDhcpd(host: ReadOnlyHost, files: DhcpdFiles): Promise<DhcpdLook> {
	const pidFile = files.dhcpdPidFile;
	const text = await host.readFileIfExists(pidFile);
	if (text === undefined) return {kind: 'absent', problem: `dhcpd is not running (pid file ${pidFile} missing)`};
	const pid = Number(/^\s*(\d+)\s*$/.exec(text)?.[1]);
	if (!pid) {
		return {
			kind: 'absent',
			problem: `dhcpd is not running (pid file ${pidFile} holds no pid: ${JSON.stringify(text)})`,
		};
	}

	const stat = await readProcStat(pid);
	if (!stat || stat.state === 'Z' || stat.state === 'X') {
		const how = stat ? 'has exited' : 'is gone';
		return {kind: 'absent', problem: `dhcpd is not running (pid ${pid} of ${pidFile} ${how})`};
	}

	const argv = (await readProcCmdline(pid)) ?? [];
	// Pids get reused: the command line read must belong to the process whose stat was read.
	if ((await readProcStat(pid))?.startTime !== stat.startTime) {
		return {kind: 'absent', problem: `dhcpd is not running (pid ${pid} of ${pidFile} exited while looked at)`};
	}

	if (path.basename(argv[0] ?? '') !== 'dhcpd') {
		const what = argv.length > 0 ? argv.join(' ').slice(0, 120) : 'a kernel thread';
		return {kind: 'foreign', problem: `pid ${pid} of ${pidFile} is not dhcpd: it runs ${what}`};
	}

	const named = argv.includes('-cf') ? argv[argv.indexOf('-cf') + 1] : undefined;
	let conf = named ?? dhcpdDefaultConf;
	if (!path.isAbsolute(conf)) conf = path.resolve((await host.readLink(`/proc/${pid}/cwd`)) ?? '/', conf);
	const dhcpd = {pid, startedAt: await processStartedAt(stat), conf};
	if ((await realPath(conf)) !== (await realPath(files.dhcpdConf))) {
		return {dhcpd, kind: 'other-conf', problem: `dhcpd pid ${pid} reads ${conf}, not ${files.dhcpdConf}`};
	}

	return {dhcpd};
}

/**
 * One look: the running dhcpd, and a problem unless it reads dhcpd.conf as
 * the file is now (started after its last change) and started after `after`.
 */
export async function inspectLoadedDhcpd(
	host: ReadOnlyHost,
	files: DhcpdFiles,
	after?: StartedAfter,
): Promise<DhcpdLook> {
	const found = await findRunningDhcpd(host, files);
	if (found.problem !== undefined) return found;
	const {dhcpd} = found;
	const started = clockTime(dhcpd.startedAt, true);
	if (after && dhcpd.startedAt < after.at - clockSlackMs) {
		const problem = `dhcpd pid ${dhcpd.pid} started at ${started}, before ${after.what} (${clockTime(after.at, true)})`;
		return {dhcpd, kind: 'stale', problem};
	}

	const changed = await modifiedAt(files.dhcpdConf);
	if (changed === undefined) return {dhcpd, kind: 'other-conf', problem: `${files.dhcpdConf} does not exist`};
	if (changed > dhcpd.startedAt + clockSlackMs) {
		const problem = `dhcpd pid ${dhcpd.pid} started at ${started}, before ${files.dhcpdConf} last changed (${clockTime(changed, true)})`;
		return {dhcpd, kind: 'stale', problem};
	}

	return {dhcpd};
}

/**
 * Looks again and again for a few seconds: a restart may return before the
 * new dhcpd has written its pid file. The last look when time runs out.
 */
export async function waitForLoadedDhcpd(
	host: ReadOnlyHost,
	files: DhcpdFiles,
	after: StartedAfter,
	options: {timeoutMs?: number; signal?: AbortSignal} = {},
): Promise<DhcpdLook> {
	const deadline = Date.now() + (options.timeoutMs ?? 5000);
	for (;;) {
		const look = await inspectLoadedDhcpd(host, files, after);
		if (look.problem === undefined || Date.now() >= deadline || options.signal?.aborted) return look;
		await new Promise((resolve) => setTimeout(resolve, 200));
	}
}
