import {spawnDetached} from './detached.js';
import {isSameProcessAlive, processStartTime, type StartTime} from './proc.js';
import {constants as fsConstants} from 'node:fs';
import fs, {type FileHandle} from 'node:fs/promises';
import {setTimeout as sleep} from 'node:timers/promises';
import {joinLimiter, type Limiter} from './copy-rate.js';
import type {ReadOnlyHost} from './host.js';
import {copierArguments, copierName} from './copier.js';
import type {Shape} from './copy-tuner.js';
import {nodeModuleArgv} from './detached.js';
import {ownModuleUrl} from './own-files.js';

/** What to copy: whole devices (or the simulated farm's files), `total` bytes from offset 0. */
export type CopyRequest = {
	source: string;
	target: string;
	total: number;
	blockSize: number;
	/** Resume point in bytes, a multiple of blockSize: dd starts there with skip= and seek=. */
	offset: number;
	/** dd's stderr (its `status=progress` reports) goes here, so any later farmclone can read it. */
	progressFile: string;
	/** Run dd in the idle I/O class (ionice -c3): a fixed rate. */
	idleClass?: boolean;
	/**
	 * Requests in flight at once (`auto`, `max`): farmclone's own copier with
	 * that many workers, blockSize being its window; without: dd, one block at a time.
	 */
	workers?: number;
	/** Shapes the copier tries and picks from (`max`); blockSize is the largest window. */
	tune?: Shape[];
};

/** A dd started by some farmclone process: enough to find it again after that process is gone. */
export type CopyJob = {
	pid: number;
	/** /proc/<pid>/stat field 22, in clock ticks since boot: tells our dd from a later process reusing the pid. */
	startTime: StartTime;
	progressFile: string;
	offset: number;
	total: number;
	blockSize: number;
	/** Exit code, only when this very process started dd (a reattached job is not our child). */
	exited?: Promise<number | undefined>;
};

export type CopyProgressReport = {
	/** Bytes of the whole copy known written, including the resume offset. */
	bytes: number;
	total: number;
	/** Bytes per second, smoothed over dd's reports. */
	rate: number;
	etaSeconds: number | undefined;
};

export type CopyOutcome = {status: 'completed'; bytes: number} | {status: 'failed'; bytes: number; reason: string};

/**
 * Whether `file` can be opened with O_DIRECT. Block devices and ext4/xfs can;
 * tmpfs (before Linux 6.6) and some FUSE or network filesystems refuse with
 * EINVAL. Probed read-only so that nothing is written to the target.
 */
export async function supportsDirectIo(file: string): Promise<boolean> {
	try {
		const handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_DIRECT);
		await handle.close();
		return true;
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'EINVAL') return false;
		throw error;
	}
}

export async function bothSupportDirectIo(source: string, target: string): Promise<boolean> {
	return (await supportsDirectIo(source)) && (await supportsDirectIo(target));
}

/**
 * The dd command line. With direct I/O on both sides the copy neither evicts
 * the VMs' page cache with 30 GB of data read once, nor piles up dirty pages
 * whose writeback stalls the host; dd then also only reports bytes the device
 * has taken, so the reported count is a safe resume point. Where O_DIRECT is
 * refused (tmpfs), oflag=dsync keeps the second property at the cost of a
 * flush per block; reads then go through the cache. conv=notrunc: a block
 * device ignores truncation but a file-backed volume would shrink to the
 * seek offset. conv=fsync: flush the device's write cache before dd reports
 * success. `ionice -c3 -t`: idle I/O class as in the seed, but run anyway
 * where the scheduler refuses the class.
 */
export function ddArgv(request: Omit<CopyRequest, 'progressFile'>, directIo: boolean): string[] {
	const {source, target, blockSize, offset, total, idleClass = true} = request;
	if (offset % blockSize !== 0) throw new Error(`resume offset ${offset} is not a multiple of ${blockSize}`);
	const blocks = offset / blockSize;
	const position = blocks > 0 ? [`skip=${blocks}`, `seek=${blocks}`] : [];
	const flags = directIo ? ['iflag=direct', 'oflag=direct'] : ['oflag=dsync'];
	return [
		...(idleClass ? ['ionice', '-c3', '-t'] : []),
		'dd',
		`if=${source}`,
		`of=${target}`,
		`bs=${blockSize}`,
		...position,
		`count=${Math.ceil((total - offset) / blockSize)}`,
		...flags,
		'conv=notrunc,fsync',
		'status=progress',
	];
}

/**
 * The copy's command line: dd, or with `workers` farmclone's copier (node
 * found on PATH like every command) with the same guarantees: direct I/O,
 * reports of durable bytes in dd's words, fsync at the end.
 */
export function copyArgv(request: Omit<CopyRequest, 'progressFile'>, directIo: boolean): string[] {
	const {source, target, blockSize, offset, total, workers, tune} = request;
	if (!workers) return ddArgv(request, directIo);
	if (offset % blockSize !== 0) throw new Error(`resume offset ${offset} is not a multiple of ${blockSize}`);
	const [, ...script] = nodeModuleArgv(ownModuleUrl('host/copier.js'));
	return [
		'node',
		...script,
		...copierArguments({source, target, window: blockSize, workers, from: offset, to: total, direct: directIo, tune}),
	];
}

export async function isAlive(job: Pick<CopyJob, 'pid' | 'startTime'>): Promise<boolean> {
	return isSameProcessAlive(job.pid, job.startTime);
}

/**
 * Starts dd in its own session, its output going to the progress file, so
 * that neither a dropped SSH connection (SIGHUP to the session) nor the end
 * of farmclone stops the copy.
 */
export async function startDetachedCopy(
	host: ReadOnlyHost,
	request: CopyRequest,
	limiter?: Limiter,
): Promise<CopyJob & {argv: string[]}> {
	if (!(await host.exists(request.source))) throw new Error(`copy source ${request.source} does not exist`);
	if (!(await host.exists(request.target))) throw new Error(`copy target ${request.target} does not exist`);
	const argv = copyArgv(request, await bothSupportDirectIo(request.source, request.target));
	const {pid, startTime, exited} = await spawnDetached(argv, {
		output: request.progressFile,
		append: false,
		env: host.env(),
		// In its group before it has copied more than a few blocks: the kernel limits it from then on.
		onSpawn: async (pid) => {
			if (limiter) await joinLimiter(limiter, pid).catch(() => undefined);
		},
	});
	// A dd that finished before /proc was read has no start time left to read; the exit code says how it went.
	const {progressFile, offset, total, blockSize} = request;
	return {pid, startTime: startTime ?? -1, progressFile, offset, total, blockSize, exited, argv};
}

/** This boot's id: a copy recorded under another one may have lost writes the device had only cached. */
export async function bootId(): Promise<string | undefined> {
	try {
		return (await fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
	} catch {
		return undefined;
	}
}

/**
 * The process whose stderr is `progressFile`: the dd started for it, found
 * even when the farmclone that started it died before recording its pid.
 */
export async function findCopyByProgressFile(
	progressFile: string,
): Promise<Pick<CopyJob, 'pid' | 'startTime'> | undefined> {
	let entries: string[];
	try {
		entries = await fs.readdir('/proc');
	} catch {
		return undefined;
	}

	for (const entry of entries) {
		if (!/^\d+$/.test(entry)) continue;
		const pid = Number(entry);
		const stderr = await fs.readlink(`/proc/${pid}/fd/2`).catch(() => undefined);
		if (stderr !== progressFile) continue;
		const startTime = await processStartTime(pid);
		if (startTime !== undefined) return {pid, startTime};
	}

	return undefined;
}

/** Stops our dd (and only ours: the start time must match). Returns whether it was running. */
export async function killCopy(
	job: Pick<CopyJob, 'pid' | 'startTime'>,
	signal: NodeJS.Signals = 'SIGTERM',
): Promise<boolean> {
	if (!(await isAlive(job))) return false;
	try {
		process.kill(job.pid, signal);
		// A stopped process only acts on the signal once continued.
		process.kill(job.pid, 'SIGCONT');
	} catch {
		return false;
	}

	for (let waited = 0; waited < 5000 && (await isAlive(job)); waited += 50) await sleep(50);
	return true;
}

export type DdReport = {
	/** Bytes dd has written in this run (without the resume offset). */
	bytes: number;
	/** Seconds since this dd started, as dd says. */
	seconds: number;
	/** The final `records out` summary is there: dd got to the end or was interrupted. */
	finished: boolean;
	/** dd's own error lines (`dd: error writing ...`). */
	errors: string[];
};

const reportLine = /^(\d+) bytes \(.*?\) copied, ([\d.]+) s/;

/** Reads dd's `status=progress` output: reports separated by `\r`, the summary by `\n`. */
export function parseDdOutput(text: string): DdReport {
	let bytes = 0;
	let seconds = 0;
	const lines = text.split(/[\r\n]+/).map((line) => line.trim());
	for (const line of lines) {
		const match = reportLine.exec(line);
		if (match) {
			bytes = Number(match[1]);
			seconds = Number(match[2]);
		}
	}

	return {
		bytes,
		seconds,
		finished: lines.some((line) => /^\d+\+\d+ records out$/.test(line)),
		errors: lines.filter((line) => ['dd: ', 'ionice: ', `${copierName}: `].some((prefix) => line.startsWith(prefix))),
	};
}

export type WatchOptions = {
	signal: AbortSignal;
	/** How often the progress file is read; dd itself reports once a second. */
	intervalMs?: number;
	onProgress(report: CopyProgressReport): void | Promise<void>;
	/** Called on every poll, progress or not: the caller's own periodic checks (the snapshot's fill level). */
	onTick?(): void | Promise<void>;
};

export class CopyAbortedError extends Error {
	constructor() {
		super('stopped watching the copy; dd goes on in the background and a later run reattaches to it');
		this.name = 'AbortError';
	}
}

/**
 * Follows a running (or finished) dd through its progress file until it
 * ends, calling onProgress on every new report. An abort stops the watching
 * only: the copy keeps running. A throw from onProgress ends the watch too
 * (the caller decides whether to kill dd).
 */
export async function watchCopy(job: CopyJob, options: WatchOptions): Promise<CopyOutcome> {
	const intervalMs = options.intervalMs ?? 250;
	let lastBytes = -1;
	let lastSample: {bytes: number; seconds: number} | undefined;
	let rate = 0;
	for (;;) {
		if (options.signal.aborted) throw new CopyAbortedError();
		// Alive is read before the file, so that a dd seen gone has written all it will ever write.
		const alive = await isAlive(job);
		const report = parseDdOutput(await fs.readFile(job.progressFile, 'utf8').catch(() => ''));
		if (report.bytes !== lastBytes) {
			if (lastSample && report.seconds > lastSample.seconds) {
				const instant = (report.bytes - lastSample.bytes) / (report.seconds - lastSample.seconds);
				rate = rate === 0 ? instant : 0.7 * rate + 0.3 * instant;
			} else if (!lastSample && report.seconds > 0) {
				rate = report.bytes / report.seconds;
			}

			lastSample = {bytes: report.bytes, seconds: report.seconds};
			lastBytes = report.bytes;
			const bytes = job.offset + report.bytes;
			const remaining = job.total - bytes;
			await options.onProgress({
				bytes,
				total: job.total,
				rate,
				etaSeconds: rate > 0 ? Math.max(0, remaining / rate) : undefined,
			});
		}

		if (!alive) return outcome(job, report);
		await options.onTick?.();
		// Our own child's exit ends the wait at once: a short copy is not rounded up to the poll interval.
		await Promise.race([
			sleep(intervalMs, undefined, {signal: options.signal}).catch(() => undefined),
			...(job.exited ? [job.exited] : []),
		]);
	}
}

/** What dd's progress file says so far (an empty report when there is none yet). */
export async function readDdReport(progressFile: string): Promise<DdReport> {
	return parseDdOutput(await fs.readFile(progressFile, 'utf8').catch(() => ''));
}

/** Removes an earlier dd's progress file. */
export async function removeProgressFile(progressFile: string): Promise<void> {
	await fs.rm(progressFile, {force: true});
}

/** How a dd that is no longer running ended, from its progress file (and exit code, if it was our child). */
export async function copyOutcome(job: CopyJob): Promise<CopyOutcome> {
	return outcome(job, parseDdOutput(await fs.readFile(job.progressFile, 'utf8').catch(() => '')));
}

/**
 * Our child's exit code. The child is unref'd (it outlives farmclone): with
 * nothing else pending, node may exit before reaping it (probably the bench's
 * one exit code 13, an await that never settled). A timer keeps the loop alive
 * meanwhile, and is cancelled once the code comes.
 */
async function exitCodeOf(exited: Promise<number | undefined>): Promise<number | undefined> {
	const timer = new AbortController();
	try {
		const waited = sleep(5000, undefined, {signal: timer.signal}).then(
			() => undefined,
			() => undefined,
		);
		return await Promise.race([exited, waited]);
	} finally {
		timer.abort();
	}
}

async function outcome(job: CopyJob, report: DdReport): Promise<CopyOutcome> {
	const exitCode = job.exited ? await exitCodeOf(job.exited) : undefined;
	const bytes = job.offset + report.bytes;
	const complete = report.finished && bytes >= job.total && report.errors.length === 0;
	if (complete && (exitCode === undefined || exitCode === 0)) return {status: 'completed', bytes};
	const reason =
		(report.errors.length > 0 ? report.errors.join('; ') : undefined) ??
		(exitCode === undefined
			? `dd stopped after ${bytes} of ${job.total} bytes without its final report (killed?)`
			: `dd exited ${exitCode} after ${bytes} of ${job.total} bytes`);
	return {status: 'failed', bytes, reason};
}

/**
 * Compares the first `length` bytes of two files or devices, reading both
 * side by side in 4 MiB chunks. Faster than `cmp` (which reads in small
 * blocks and compares byte by byte), and it says where they differ.
 * Returns the offset of the first differing chunk, or undefined when equal.
 */
export async function firstDifference(a: string, b: string, length: number): Promise<number | undefined> {
	const chunk = 4 * 1024 * 1024;
	const [left, right] = await Promise.all([fs.open(a, 'r'), fs.open(b, 'r')]);
	try {
		const leftBuffer = Buffer.alloc(chunk);
		const rightBuffer = Buffer.alloc(chunk);
		for (let position = 0; position < length; position += chunk) {
			const size = Math.min(chunk, length - position);
			const [l, r] = await Promise.all([
				readFully(left, leftBuffer, size, position),
				readFully(right, rightBuffer, size, position),
			]);
			if (l !== size || r !== size) return position + Math.min(l, r);
			if (!leftBuffer.subarray(0, size).equals(rightBuffer.subarray(0, size))) return position;
		}

		return undefined;
	} finally {
		await Promise.all([left.close(), right.close()]);
	}
}

async function readFully(handle: FileHandle, buffer: Buffer, size: number, position: number): Promise<number> {
	let done = 0;
	while (done < size) {
		const {bytesRead} = await handle.read(buffer, done, size - done, position + done);
		if (bytesRead === 0) break;
		done += bytesRead;
	}

	return done;
}

/**
 * Asks the kernel to drop `file`'s pages from the page cache (posix_fadvise
 * DONTNEED through dd, as coreutils documents), so that reading a whole disk
 * once does not push the VMs' cached data out. Needs no privilege; dirty
 * pages are left alone.
 */
export async function dropCache(host: ReadOnlyHost, file: string): Promise<void> {
	await host.run(['dd', `if=${file}`, 'iflag=nocache', 'count=0', 'status=none'], {quiet: true, reject: false});
}
