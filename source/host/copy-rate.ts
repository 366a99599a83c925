import type {Shape} from './copy-tuner.js';
import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * How fast the copy goes. `auto`: full speed while nobody else uses the
 * disks, slower while other I/O (the running VMs) waits longer than idle in
 * /proc/diskstats. `max`: full speed. Both with several requests in flight.
 * A fixed rate: a kernel-enforced ceiling in bytes per second.
 */
export type CopyRate = {mode: 'auto'} | {mode: 'max'} | {mode: 'fixed'; bytesPerSecond: number};

const units: Record<string, number> = {'': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3};
/** Below this a 30 GB copy takes more than a day: surely a typo (80 instead of 80M). */
const minimumFixedRate = 1024 * 1024;

/** Parses the `copyRate` setting; throws an error naming the problem. */
export function parseCopyRate(text: string): CopyRate {
	const value = text.trim().toLowerCase();
	if (value === 'auto' || value === 'max') return {mode: value};
	const match = /^(\d+(?:\.\d+)?)([kmg]?)(?:i?b?)?(?:\/s)?$/.exec(value);
	if (!match) {
		throw new Error(`copyRate ${JSON.stringify(text)} is not auto, max or a rate such as 80M (bytes per second)`);
	}

	const bytesPerSecond = Math.round(Number(match[1]) * units[match[2]!]!);
	if (bytesPerSecond < minimumFixedRate) {
		throw new Error(`copyRate ${JSON.stringify(text)} is below 1M per second: write the unit, such as 80M`);
	}

	return {mode: 'fixed', bytesPerSecond};
}

export function copyRateProblem(value: unknown): string | undefined {
	if (typeof value !== 'string') return 'must be auto, max or a rate such as 80M';
	try {
		parseCopyRate(value);
		return undefined;
	} catch (error) {
		return (error as Error).message.replace(/^copyRate "[^"]*" /, '');
	}
}

/**
 * Requests `auto` and `max` keep in flight: one window is read while the other
 * is written. Measured on the bench's disk (virtio, mq-deadline), medians of 5
 * alternating rounds: 2 workers of 32 MiB 0.94x `dd bs=64M`'s rate and 2 of
 * 64 MiB 0.95x, against 0.85x for 4 of 16 MiB and 0.75-0.89x for 8 or 16
 * smaller windows: large requests count more here than many of them.
 */
export const copyWorkers = 2;

/**
 * The copy's block in each mode: dd's block for a fixed rate; for `auto` and
 * `max` the copier's window, 32 blocks (32 MiB by default: 2 workers then keep
 * 64 MiB in flight, what a resume may copy again).
 */
export function blockSizeFor(rate: CopyRate, copyBlockSize: number): number {
	return rate.mode === 'fixed' ? copyBlockSize : Math.min(64 * 1024 * 1024, copyBlockSize * 32);
}

export function workersFor(rate: CopyRate): number | undefined {
	return rate.mode === 'fixed' ? undefined : copyWorkers;
}

/**
 * The shapes `max` tries on the copy and picks from (copy-tuner.ts): windows
 * of one block (1 MiB by default), fastest on an idle machine (2 x 1 MiB made
 * 1.25x `dd bs=64M`, where 2 x 32 MiB made 0.97x), and the window of
 * `blockSizeFor`, fastest with the CPUs busy (0.87-0.97x, where 2 x 1 MiB fell
 * to 0.73x). `auto` keeps one shape: its governor's limit and the tuner's
 * trials would measure each other.
 */
export function tuneShapesFor(rate: CopyRate, copyBlockSize: number): Shape[] | undefined {
	const window = blockSizeFor(rate, copyBlockSize);
	if (rate.mode === 'fixed' || window <= copyBlockSize || window % copyBlockSize !== 0 || copyBlockSize % 4096 !== 0) {
		return undefined;
	}

	return [
		{window: copyBlockSize, workers: copyWorkers},
		{window, workers: copyWorkers},
	];
}

// ---------------------------------------------------------------- devices

export type DeviceNumber = `${number}:${number}`;

/** The device a path's I/O goes to: a block device itself, else the filesystem's device it lives on. */
async function deviceOf(file: string): Promise<DeviceNumber> {
	const stat = await fs.stat(file, {bigint: true});
	const device = stat.isBlockDevice() ? stat.rdev : stat.dev;
	// Linux's encoding of dev_t (glibc's gnu_dev_major/minor).
	const major = Number(((device >> 8n) & 0xfffn) | ((device >> 32n) & ~0xfffn));
	const minor = Number((device & 0xffn) | ((device >> 12n) & ~0xffn));
	return `${major}:${minor}`;
}

/** A partition's whole disk: cgroup limits take whole disks only, and diskstats of both would count twice. */
async function wholeDisk(device: DeviceNumber): Promise<DeviceNumber> {
	const sys = `/sys/dev/block/${device}`;
	const isPartition = await fs
		.access(path.join(sys, 'partition'))
		.then(() => true)
		.catch(() => false);
	if (!isPartition) return device;
	const parent = (await fs.readFile(path.join(sys, '..', 'dev'), 'utf8').catch(() => '')).trim();
	return /^\d+:\d+$/.test(parent) ? (parent as DeviceNumber) : device;
}

/** The disks at the bottom of a device stack (LV, dm-crypt, md): the ones the VMs share. */
async function leafDisks(device: DeviceNumber, seen = new Set<string>()): Promise<DeviceNumber[]> {
	if (seen.has(device)) return [];
	seen.add(device);
	const slavesDir = `/sys/dev/block/${device}/slaves`;
	const slaves = await fs.readdir(slavesDir).catch(() => [] as string[]);
	if (slaves.length === 0) return [await wholeDisk(device)];
	const found: DeviceNumber[] = [];
	for (const slave of slaves) {
		const number = (await fs.readFile(path.join(slavesDir, slave, 'dev'), 'utf8').catch(() => '')).trim();
		if (/^\d+:\d+$/.test(number)) found.push(...(await leafDisks(number as DeviceNumber, seen)));
	}

	return found;
}

export type CopyDevices = {
	/** Where dd's requests are limited: the LVs themselves, or the disk under the simulated farm's files. */
	throttled: DeviceNumber[];
	/** Whose /proc/diskstats tell how busy the shared disks are: the PVs' disks. */
	watched: DeviceNumber[];
};

export async function copyDevices(source: string, target: string): Promise<CopyDevices> {
	const throttled = [
		...new Set(await Promise.all([source, target].map(async (file) => wholeDisk(await deviceOf(file))))),
	];
	const watched = new Set<DeviceNumber>();
	for (const device of throttled) for (const leaf of await leafDisks(device)) watched.add(leaf);
	return {throttled, watched: [...watched]};
}

// ---------------------------------------------------------------- diskstats

export type DiskSample = {
	/** Requests submitted (completed plus merged into others), reads and writes. */
	submitted: number;
	completed: number;
	/** Milliseconds spent by completed requests, reads and writes. */
	ticks: number;
	atMs: number;
};

/** Sums /proc/diskstats over `devices`. */
export function parseDiskstats(text: string, devices: DeviceNumber[], atMs: number): DiskSample {
	const sample: DiskSample = {submitted: 0, completed: 0, ticks: 0, atMs};
	for (const line of text.split('\n')) {
		const fields = line.trim().split(/\s+/);
		if (fields.length < 14 || !devices.includes(`${fields[0]}:${fields[1]}` as DeviceNumber)) continue;
		const [reads, readMerges, , readTicks, writes, writeMerges, , writeTicks] = fields.slice(3, 11).map(Number);
		sample.submitted += reads! + readMerges! + writes! + writeMerges!;
		sample.completed += reads! + writes!;
		sample.ticks += readTicks! + writeTicks!;
	}

	return sample;
}

export async function readDiskstats(devices: DeviceNumber[]): Promise<DiskSample | undefined> {
	const text = await fs.readFile('/proc/diskstats', 'utf8').catch(() => undefined);
	return text === undefined ? undefined : parseDiskstats(text, devices, performance.now());
}

// ---------------------------------------------------------------- limits

/**
 * A place the kernel enforces a byte rate on dd: a cgroup of its own, v2
 * (io.max) or v1 (blkio.throttle.*), whichever the host mounts. Where
 * neither exists the copy paces itself (`pace`: dd stopped and continued).
 */
export type Limiter = {
	kind: 'cgroup2' | 'cgroup1' | 'pacing';
	/** The cgroup directory (none for pacing). */
	dir?: string;
};

async function mounts(): Promise<{type: string; dir: string; options: string[]}[]> {
	const text = await fs.readFile('/proc/mounts', 'utf8').catch(() => '');
	return text
		.split('\n')
		.map((line) => line.split(' '))
		.filter((fields) => fields.length >= 4)
		.map(([, dir, type, options]) => ({type: type!, dir: dir!.replace(/\\040/g, ' '), options: options!.split(',')}));
}

async function made(dir: string): Promise<boolean> {
	return fs.mkdir(dir, {recursive: true}).then(
		() => true,
		() => false,
	);
}

/** Finds the host's cgroup I/O controller at run time and makes dd's group under it (named after its job). */
export async function makeLimiter(name: string): Promise<Limiter> {
	const all = await mounts();
	for (const mount of all.filter((entry) => entry.type === 'cgroup2')) {
		const controllers = await fs.readFile(path.join(mount.dir, 'cgroup.controllers'), 'utf8').catch(() => '');
		if (!controllers.split(/\s+/).includes('io')) continue;
		const subtree = await fs.readFile(path.join(mount.dir, 'cgroup.subtree_control'), 'utf8').catch(() => '');
		if (!subtree.split(/\s+/).includes('io')) {
			const enabled = await fs
				.writeFile(path.join(mount.dir, 'cgroup.subtree_control'), '+io')
				.then(() => true)
				.catch(() => false);
			if (!enabled) continue;
		}

		const dir = path.join(mount.dir, name);
		if (await made(dir)) return {kind: 'cgroup2', dir};
	}

	for (const mount of all.filter((entry) => entry.type === 'cgroup' && entry.options.includes('blkio'))) {
		const dir = path.join(mount.dir, name);
		if (await made(dir)) return {kind: 'cgroup1', dir};
	}

	return {kind: 'pacing'};
}

/** The limiter a running copy was given, recorded as kind + dir. */
export function limiterFrom(kind: unknown, dir: unknown): Limiter | undefined {
	if (kind === 'pacing') return {kind};
	if ((kind === 'cgroup2' || kind === 'cgroup1') && typeof dir === 'string') return {kind, dir};
	return undefined;
}

/** Puts dd into the limiter's group (before it has copied more than a few blocks). */
export async function joinLimiter(limiter: Limiter, pid: number): Promise<void> {
	if (!limiter.dir) return;
	await fs.writeFile(path.join(limiter.dir, 'cgroup.procs'), String(pid));
}

/** Sets the kernel's limit on the group's reads and writes; undefined lifts it. */
export async function setKernelLimit(
	limiter: Limiter,
	devices: DeviceNumber[],
	bytesPerSecond: number | undefined,
): Promise<void> {
	if (!limiter.dir) return;
	const rate = bytesPerSecond === undefined ? undefined : Math.max(1, Math.round(bytesPerSecond));
	for (const device of devices) {
		if (limiter.kind === 'cgroup2') {
			const value = rate === undefined ? 'max' : String(rate);
			await fs.writeFile(path.join(limiter.dir, 'io.max'), `${device} rbps=${value} wbps=${value}`);
		} else {
			for (const file of ['blkio.throttle.read_bps_device', 'blkio.throttle.write_bps_device']) {
				await fs.writeFile(path.join(limiter.dir, file), `${device} ${rate ?? 0}`);
			}
		}
	}
}

/** The requests dd's group has submitted to `devices`, from the group's own statistics (undefined: unknown). */
export async function groupRequests(limiter: Limiter, devices: DeviceNumber[]): Promise<number | undefined> {
	if (!limiter.dir) return undefined;
	if (limiter.kind === 'cgroup2') {
		const text = await fs.readFile(path.join(limiter.dir, 'io.stat'), 'utf8').catch(() => undefined);
		if (text === undefined) return undefined;
		let total = 0;
		for (const line of text.split('\n')) {
			const [device, ...pairs] = line.trim().split(/\s+/);
			if (!devices.includes(device as DeviceNumber)) continue;
			for (const pair of pairs) {
				const [key, value] = pair.split('=');
				if (key === 'rios' || key === 'wios') total += Number(value);
			}
		}

		return total;
	}

	const text = await fs.readFile(path.join(limiter.dir, 'blkio.throttle.io_serviced'), 'utf8').catch(() => undefined);
	if (text === undefined) return undefined;
	let total = 0;
	for (const line of text.split('\n')) {
		const [device, kind, value] = line.trim().split(/\s+/);
		if (devices.includes(device as DeviceNumber) && (kind === 'Read' || kind === 'Write')) total += Number(value);
	}

	return total;
}

/** Removes dd's group once dd is gone (a group with a process in it cannot be removed: then it stays). */
export async function removeLimiter(limiter: Limiter): Promise<void> {
	if (limiter.dir) await fs.rmdir(limiter.dir).catch(() => undefined);
}

// ---------------------------------------------------------------- the controller

export type RateDecision = {
	/** The limit to apply, bytes per second; undefined: none (full speed). */
	limit: number | undefined;
	/** Other requests per second on the watched disks: the VMs' I/O. */
	foreignRate: number;
	/** Mean milliseconds per request on the watched disks in the last interval. */
	latencyMs: number | undefined;
};

export type AutoState = {
	limit: number | undefined;
	/** Highest copy rate seen without a limit: what `unlimited` is worth. */
	peakRate: number;
	quietIntervals: number;
	/**
	 * The latency of a small read without the copy: measured before it
	 * started, and lowered to the least seen since while others used the disks.
	 */
	idleLatencyMs: number | undefined;
};

/** Fewer other requests than this per second: nobody to be gentle with (a filesystem's journal, a log). */
export const foreignThreshold = 25;
/** The slowest `auto` goes: gentle enough for a 4k random reader, still 1 GB a minute. */
export const autoFloor = 16 * 1024 * 1024;
/** Others' latency above this multiple of idle: the copy slows down (the target is a neighbour's p99 <= 3x alone). */
export const latencyCeiling = 2;
/** Below this multiple of idle the copy doubles its limit. */
const latencyComfort = 1.4;
/** The idle latency to start from when the disks did nothing while it was measured: a rotating disk's seek. */
const unknownIdleMs = 1;

/**
 * One step of `auto`, at each poll of the copy (4 a second). Whether anybody else uses the disks:
 * the requests /proc/diskstats counts on the disks under the volume group,
 * less the copy's own (its cgroup's count, or its bytes divided by the window
 * where the kernel keeps none) and farmclone's probe reads. How much they
 * suffer: `probeMs`, the time a small read of farmclone's own took (what a VM
 * waits), against the same read on idle disks; without a probe, the disks'
 * mean time per request, which the copy's own large requests inflate.
 *
 * Nobody else: x4 per step, the limit lifted past 1.5x the copy's peak, so the
 * copy is back to full speed within a second or two of the VMs going quiet.
 * Others there (two polls in a row) and waiting far above idle (2x
 * latencyCeiling): straight to the floor; above latencyCeiling: half of what the copy did, never below the
 * floor. Others there and comfortably near idle: x2 per step. In between: held.
 */
export function autoStep(
	state: AutoState,
	sample: {
		seconds: number;
		diskRequests: number;
		ownRequests: number;
		completed: number;
		ticks: number;
		ownRate: number;
		probeMs?: number;
		probeRequests?: number;
	},
): RateDecision {
	const foreign = sample.diskRequests - sample.ownRequests - (sample.probeRequests ?? 0);
	const foreignRate = Math.max(0, foreign) / Math.max(sample.seconds, 0.001);
	const latencyMs = sample.probeMs ?? (sample.completed > 0 ? sample.ticks / sample.completed : undefined);
	if (state.limit === undefined) state.peakRate = Math.max(state.peakRate, sample.ownRate);
	const raise = (factor: number) => {
		if (state.limit === undefined) return;
		state.limit *= factor;
		if (state.peakRate > 0 && state.limit > state.peakRate * 1.5) state.limit = undefined;
		else if (state.peakRate === 0 && state.limit > 64 * autoFloor) state.limit = undefined;
	};

	if (foreignRate <= foreignThreshold || latencyMs === undefined) {
		state.quietIntervals++;
		raise(4);
		return {limit: state.limit, foreignRate, latencyMs};
	}

	// Others in one poll after quiet ones: held, not yet judged. A lone burst (a filesystem's journal commit, a
	// log) would otherwise send a full-speed copy to the floor; a VM that keeps reading is judged a poll later.
	const afterQuiet = state.quietIntervals > 0;
	state.quietIntervals = 0;
	if (afterQuiet) return {limit: state.limit, foreignRate, latencyMs};
	const idle = Math.min(state.idleLatencyMs ?? unknownIdleMs, Math.max(latencyMs, 0.05));
	state.idleLatencyMs = idle;
	const ratio = latencyMs / idle;
	const doing = Math.min(state.limit ?? Number.POSITIVE_INFINITY, Math.max(sample.ownRate, autoFloor));
	if (ratio > 2 * latencyCeiling) state.limit = autoFloor;
	else if (ratio > latencyCeiling) state.limit = Math.max(autoFloor, doing / 2);
	else if (ratio < latencyComfort) raise(2);

	return {limit: state.limit, foreignRate, latencyMs};
}

// ---------------------------------------------------------------- live changes from the screen

type RateListener = (delta: 1 | -1) => void;
const listeners = new Set<RateListener>();

/** The screen's `+`/`-`: the running copy's controller raises or lowers its limit by one step. */
export function nudgeCopyRate(delta: 1 | -1): boolean {
	for (const listener of listeners) listener(delta);
	return listeners.size > 0;
}

export function onCopyRateNudge(listener: RateListener): () => void {
	listeners.add(listener);
	return () => listeners.delete(listener);
}
