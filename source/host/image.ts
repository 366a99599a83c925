import fs from 'node:fs/promises';
import path from 'node:path';
import {mountedTree, type GuestTree} from './guest-tree.js';
import type {ReadOnlyHost} from './host.js';

/**
 * A VM's disk seen from the host: its partition table, the filesystem in a
 * partition (or on the whole volume), a loop device on it and its mount. The
 * stages never mount a device themselves: they go through here, so that each
 * mount is undone and nothing inside the mounted filesystem is followed out.
 */

export type Partition = {number: number; node: string; offset: number; size: number; type: string};
export type PartitionTable = {label: string; sectorSize: number; partitions: Partition[]};

/** Where a filesystem lies on a volume, in bytes. */
export type Region = {offset: number; size: number; where: string};

type SfdiskJson = {
	partitiontable?: {
		label?: string;
		sectorsize?: number;
		partitions?: Array<{node?: string; start?: number; size?: number; type?: string}>;
	};
};

/** `sfdisk -J`: the volume's partitions in bytes, or undefined when it has no partition table. */
export async function readPartitionTable(host: ReadOnlyHost, device: string): Promise<PartitionTable | undefined> {
	const result = await host.run(['sfdisk', '-J', device], {reject: false});
	if (result.exitCode !== 0) {
		if (/does not contain a recognized partition table/.test(result.stderr)) return undefined;
		throw new Error(`sfdisk -J ${device} exited ${result.exitCode}: ${result.stderr.trim()}`);
	}

	const table = (JSON.parse(result.stdout) as SfdiskJson).partitiontable;
	if (!table) throw new Error(`sfdisk -J ${device} printed no partition table`);
	// util-linux before 2.38 leaves sectorsize out; it then means 512.
	const sectorSize = table.sectorsize ?? 512;
	const partitions = (table.partitions ?? []).map((entry, index) => {
		const number = Number(/(\d+)$/.exec(entry.node ?? '')?.[1] ?? index + 1);
		return {
			number,
			node: entry.node ?? '',
			offset: (entry.start ?? 0) * sectorSize,
			size: (entry.size ?? 0) * sectorSize,
			type: String(entry.type ?? '').toLowerCase(),
		};
	});
	return {label: table.label ?? 'unknown', sectorSize, partitions};
}

export type Probe = {type?: string; usage?: string; uuid?: string; label?: string};

/** `blkid -p` of a region: low-level probing, no cache, reads only. */
export async function probeRegion(host: ReadOnlyHost, device: string, region: Region): Promise<Probe> {
	const argv = ['blkid', '-p', '-o', 'export', '-O', String(region.offset), '-S', String(region.size), device];
	const result = await host.run(argv, {reject: false});
	// Exit 2: nothing recognised.
	if (result.exitCode === 2) return {};
	if (result.exitCode !== 0) throw new Error(`${argv.join(' ')} exited ${result.exitCode}: ${result.stderr.trim()}`);
	const values = new Map(
		result.stdout
			.split('\n')
			.map((line) => /^([A-Z_]+)=(.*)$/.exec(line))
			.flatMap((match) => (match ? [[match[1]!, match[2]!] as const] : [])),
	);
	return {type: values.get('TYPE'), usage: values.get('USAGE'), uuid: values.get('UUID'), label: values.get('LABEL')};
}

export const supportedFilesystems = ['ext2', 'ext3', 'ext4'] as const;
export type SupportedFilesystem = (typeof supportedFilesystems)[number];
export type RootFilesystem = {region: Region; type: SupportedFilesystem};

/** The GPT type of a Linux root partition on x86-64: it settles which ext filesystem is the root. */
const gptRootX8664 = '4f68bce3-e8cd-4db1-96e7-fbcaf984b709';
const extendedTypes = new Set(['5', 'f', '85']);

function isSupported(type: string | undefined): type is SupportedFilesystem {
	return (supportedFilesystems as readonly string[]).includes(type ?? '');
}

/**
 * The ext2/3/4 root filesystem of a VM disk: the one ext partition (the GPT
 * root type when there are several), or the whole volume when it has no
 * partition table. Otherwise a sentence saying what is there instead.
 */
export async function findRootFilesystem(
	host: ReadOnlyHost,
	device: string,
	size: number,
): Promise<RootFilesystem | {problem: string}> {
	const table = await readPartitionTable(host, device);
	if (!table) {
		const region = {offset: 0, size, where: 'the whole volume'};
		const probe = await probeRegion(host, device, region);
		if (isSupported(probe.type)) return {region, type: probe.type};
		return {problem: `no partition table, and ${probe.type ? `a ${probe.type} filesystem` : 'no filesystem'} on it`};
	}

	const found: Array<{partition: Partition; type: string | undefined}> = [];
	for (const partition of table.partitions) {
		if (extendedTypes.has(partition.type)) continue;
		const region = {offset: partition.offset, size: partition.size, where: `partition ${partition.number}`};
		found.push({partition, type: (await probeRegion(host, device, region)).type});
	}

	const ext = found.filter((entry) => isSupported(entry.type));
	const root = ext.length === 1 ? ext[0] : ext.find((entry) => entry.partition.type === gptRootX8664);
	if (root && isSupported(root.type)) {
		const {partition} = root;
		return {
			region: {offset: partition.offset, size: partition.size, where: `partition ${partition.number}`},
			type: root.type,
		};
	}

	const seen = found.map((entry) => `partition ${entry.partition.number}: ${entry.type ?? 'unknown'}`).join(', ');
	return {
		problem:
			ext.length > 1
				? `several ext filesystems and none marked as the root (${seen})`
				: `${table.label} partition table without an ext2/3/4 filesystem (${seen || 'no partitions'})`,
	};
}

export function loopArgv(device: string, region: Region, readOnly: boolean): string[] {
	const range = ['--offset', String(region.offset), '--sizelimit', String(region.size)];
	return ['losetup', '--find', '--show', ...(readOnly ? ['--read-only'] : []), ...range, device];
}

/**
 * Mount options: never honour set-uid files or device nodes of the guest. A
 * read-only look at ext3/4 also skips the journal (`noload`), which a plain
 * `ro` mount would replay, writing to the device.
 */
export function mountArgv(loop: string, mountpoint: string, type: SupportedFilesystem, readOnly: boolean): string[] {
	const options = ['nosuid', 'nodev', 'noexec', ...(readOnly ? ['ro', ...(type === 'ext2' ? [] : ['noload'])] : [])];
	return ['mount', '-t', type, '-o', options.join(','), loop, mountpoint];
}

export async function attachLoop(
	host: ReadOnlyHost,
	device: string,
	region: Region,
	readOnly: boolean,
): Promise<string> {
	const {stdout} = await host.run(loopArgv(device, region, readOnly));
	const loop = stdout.trim();
	if (!loop.startsWith('/dev/')) throw new Error(`losetup printed ${JSON.stringify(stdout)}, not a loop device`);
	return loop;
}

export type LoopDevice = {name: string; backFile: string; offset: number; sizeLimit: number; readOnly: boolean};

/** Every loop device, from `losetup -J -l`. */
export async function listLoops(host: ReadOnlyHost): Promise<LoopDevice[]> {
	const columns = 'NAME,BACK-FILE,OFFSET,SIZELIMIT,RO';
	const {stdout} = await host.run(['losetup', '-J', '-l', '-O', columns], {quiet: true});
	// No loop device set up: losetup prints nothing at all.
	if (!stdout.trim()) return [];
	const parsed = JSON.parse(stdout) as {loopdevices?: Array<Record<string, unknown>>};
	return (parsed.loopdevices ?? []).map((row) => ({
		name: String(row['name'] ?? ''),
		backFile: String(row['back-file'] ?? '').replace(/ \(deleted\)$/, ''),
		offset: Number(row['offset'] ?? 0),
		sizeLimit: Number(row['sizelimit'] ?? 0),
		readOnly: row['ro'] === true || row['ro'] === '1',
	}));
}

/** Whether two paths are the same file or block device, whatever symlinks lead to them. */
export async function sameDevice(first: string, second: string): Promise<boolean> {
	try {
		const [a, b] = await Promise.all([fs.stat(first), fs.stat(second)]);
		if (a.isBlockDevice() && b.isBlockDevice()) return a.rdev === b.rdev;
		return a.dev === b.dev && a.ino === b.ino;
	} catch {
		return false;
	}
}

/** The loop devices reading `device`, however their backing file was named. */
export async function loopsBackedBy(host: ReadOnlyHost, device: string): Promise<LoopDevice[]> {
	const loops = await listLoops(host);
	const matches = await Promise.all(loops.map(async (loop) => sameDevice(loop.backFile, device)));
	return loops.filter((_, index) => matches[index]);
}

export type MountEntry = {source: string; mountpoint: string; type: string; options: string};

/** `\040` and friends: how mountinfo escapes spaces, tabs, newlines and backslashes. */
function unescapeMountinfo(text: string): string {
	return text.replaceAll(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** Mounts of this process's namespace, from /proc/self/mountinfo. */
export async function listMounts(host: ReadOnlyHost): Promise<MountEntry[]> {
	const text = await host.readFile('/proc/self/mountinfo');
	return text.split('\n').flatMap((line) => {
		const [before, after] = line.split(' - ');
		if (!before || !after) return [];
		const fields = before.split(' ');
		const [type = '', source = ''] = after.split(' ');
		return [
			{
				source: unescapeMountinfo(source),
				mountpoint: unescapeMountinfo(fields[4] ?? ''),
				type,
				options: fields[5] ?? '',
			},
		];
	});
}

/**
 * Whether `device` is mounted in this namespace, under any of its names:
 * /dev/VG/LV and /dev/mapper/VG-LV both lead to the same /dev/dm-N.
 */
export async function isDeviceMounted(host: ReadOnlyHost, device: string): Promise<boolean> {
	const canonical = async (file: string) => fs.realpath(file).catch(() => file);
	const target = await canonical(device);
	for (const {source} of await listMounts(host)) {
		if (source.startsWith('/dev/') && (source === device || (await canonical(source)) === target)) return true;
	}

	return false;
}

/** Unmounts, retrying a few times while something (a shell's cwd, a scan) still holds the filesystem. */
export async function unmount(host: ReadOnlyHost, mountpoint: string): Promise<void> {
	for (let attempt = 1; ; attempt++) {
		const result = await host.run(['umount', mountpoint], {reject: false});
		if (result.exitCode === 0) return;
		const mounted = (await listMounts(host)).some((entry) => entry.mountpoint === mountpoint);
		if (!mounted) return;
		if (attempt >= 5) throw new Error(`umount ${mountpoint} exited ${result.exitCode}: ${result.stderr.trim()}`);
		await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
	}
}

/** A mountpoint only root can enter. */
export async function makeMountpoint(dir: string): Promise<void> {
	await fs.mkdir(dir, {recursive: true, mode: 0o700});
}

/** Removes a mountpoint when it is an empty directory (never what is under a mount still there). */
export async function removeMountpoint(dir: string): Promise<void> {
	await fs.rmdir(dir).catch(() => undefined);
}

/** About 30 s in all: a udev probe takes milliseconds, a busy machine more. */
const loopReleaseAttempts = 35;

/**
 * Detaches `loop` and returns once the kernel has let go of it. losetup
 * exits 0 while the device is still open elsewhere (udev probing it after
 * the unmount, say): the kernel then only marks it to clear itself on last
 * close, so the loop would still hold the clone's volume for a moment.
 */
export async function detachLoop(host: ReadOnlyHost, loop: string): Promise<void> {
	const backFile = (await listLoops(host)).find((entry) => entry.name === loop)?.backFile;
	const result = await host.run(['losetup', '--detach', loop], {reject: false});
	const stillAttached = async () =>
		(await listLoops(host)).some(
			(entry) => entry.name === loop && (backFile === undefined || entry.backFile === backFile),
		);
	// Gone already (detached by hand, or never fully set up) is what we wanted.
	if (result.exitCode !== 0 && (await stillAttached())) {
		throw new Error(`losetup --detach ${loop} exited ${result.exitCode}: ${result.stderr.trim()}`);
	}

	for (let attempt = 1; await stillAttached(); attempt++) {
		if (attempt > loopReleaseAttempts) {
			throw new Error(
				`${loop} is still attached after losetup --detach: something else holds it open (see fuser -v ${loop})`,
			);
		}

		await new Promise((resolve) => setTimeout(resolve, 100 * Math.min(attempt, 10)));
	}
}

const maxSymlinkHops = 40;

/**
 * The host path of `guestPath` inside the filesystem mounted at `root`, with
 * every symlink resolved as the guest would resolve it: an absolute target
 * starts again at `root`, `..` stops at `root`. The result never leaves
 * `root` and has no symlink left in it except, with `followLast: false`, the
 * last component. A clone's /etc/hostname pointing at /etc/shadow leads to
 * the clone's shadow, never the host's.
 */
export async function resolveInside(
	tree: string | GuestTree,
	guestPath: string,
	options: {followLast?: boolean} = {},
): Promise<string> {
	const guest = typeof tree === 'string' ? mountedTree(tree) : tree;
	const {root} = guest;
	const followLast = options.followLast ?? true;
	const pending = guestPath.split('/').filter((part) => part && part !== '.');
	const resolved: string[] = [];
	let hops = 0;
	while (pending.length > 0) {
		const part = pending.shift()!;
		if (part === '..') {
			resolved.pop();
			continue;
		}

		const candidate = path.join(root, ...resolved, part);
		const stat = await guest.lstat(candidate);
		// Nothing there: no symlink further down either.
		if (!stat) return path.join(root, ...resolved, part, ...pending.filter((rest) => rest !== '..'));
		const last = pending.length === 0;
		if (stat.type === 'symlink' && (!last || followLast)) {
			if (++hops > maxSymlinkHops) throw new Error(`too many symlinks resolving ${guestPath} inside ${root}`);
			const target = await guest.readlink(candidate);
			if (target.startsWith('/')) resolved.length = 0;
			pending.unshift(...target.split('/').filter((piece) => piece && piece !== '.'));
			continue;
		}

		if (!last && stat.type !== 'directory')
			throw new Error(`${guestPath}: ${path.join('/', ...resolved, part)} is no directory`);
		resolved.push(part);
	}

	return path.join(root, ...resolved);
}
