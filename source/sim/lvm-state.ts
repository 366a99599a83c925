import {randomInt} from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {withFileLock} from './file-lock.js';
import {simPaths} from './paths.js';

/**
 * One logical volume of the simulated farm. Its device is the sparse file
 * root/dev/<vg>/<name>. For a snapshot, `size` is the copy-on-write space
 * (what `lvcreate -L` asked for and `lvs` shows), while its device holds a
 * point-in-time copy of the origin, as large as the origin.
 */
export type SimLv = {
	name: string;
	vg: string;
	uuid: string;
	/** Bytes, a whole number of extents. */
	size: number;
	/** Snapshots only: the origin LV's name. */
	origin?: string;
	/** Snapshots only: how full the copy-on-write space is, 0-100. */
	snapPercent?: number;
	/** Snapshots only: overflowed, its content is lost (attr `swi-I-s---`). */
	invalid?: boolean;
	tags: string[];
};

export type SimVg = {name: string; size: number; extentSize: number; uuid?: string};

export type SimLvmState = {vgs: SimVg[]; lvs: SimLv[]};

export const defaultExtentSize = 4 * 1024 * 1024;

/** A refusal or failure the way LVM reports it: message lines for stderr and the exit code (5, ECMD_FAILED). */
export class LvmError extends Error {
	constructor(
		message: string,
		readonly exitCode = 5,
	) {
		super(message);
		this.name = 'LvmError';
	}
}

export function lvDevicePath(root: string, vg: string, lv: string): string {
	return path.join(simPaths(root).dev, vg, lv);
}

function stateFile(root: string): string {
	return path.join(simPaths(root).state, 'lvm.json');
}

export async function readLvmState(root: string): Promise<SimLvmState> {
	let text: string;
	try {
		text = await fs.readFile(stateFile(root), 'utf8');
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {vgs: [], lvs: []};
		throw error;
	}

	const parsed = JSON.parse(text) as Partial<SimLvmState>;
	return {vgs: parsed.vgs ?? [], lvs: parsed.lvs ?? []};
}

async function saveLvmState(root: string, state: SimLvmState): Promise<void> {
	const file = stateFile(root);
	await fs.mkdir(path.dirname(file), {recursive: true});
	const temporary = `${file}.tmp-${process.pid}`;
	const handle = await fs.open(temporary, 'w');
	try {
		await handle.writeFile(`${JSON.stringify(state, undefined, '\t')}\n`);
		await handle.sync();
	} finally {
		await handle.close();
	}

	await fs.rename(temporary, file);
}

/**
 * Read-modify-write of the LVM metadata under a lock, like LVM's VG lock:
 * commands running at the same time see each other's changes. The state is
 * saved (atomically) only when `change` returns; when it throws, nothing is.
 */
export async function withLvmState<T>(root: string, change: (state: SimLvmState) => T | Promise<T>): Promise<T> {
	return withFileLock(path.join(simPaths(root).state, 'lvm.lock'), async () => {
		const state = await readLvmState(root);
		const result = await change(state);
		await saveLvmState(root, state);
		return result;
	});
}

export function findVg(state: SimLvmState, vg: string): SimVg | undefined {
	return state.vgs.find((group) => group.name === vg);
}

export function findLv(state: SimLvmState, vg: string, lv: string): SimLv | undefined {
	return state.lvs.find((volume) => volume.vg === vg && volume.name === lv);
}

export function snapshotsOf(state: SimLvmState, vg: string, origin: string): SimLv[] {
	return state.lvs.filter((volume) => volume.vg === vg && volume.origin === origin);
}

export function vgFreeExtents(state: SimLvmState, vg: SimVg): number {
	const used = state.lvs
		.filter((volume) => volume.vg === vg.name)
		.reduce((sum, volume) => sum + Math.ceil(volume.size / vg.extentSize), 0);
	return Math.floor(vg.size / vg.extentSize) - used;
}

const uuidAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** LVM's identifier format: 32 characters in groups of 6-4-4-4-4-4-6. */
export function newLvmUuid(): string {
	const characters = Array.from({length: 32}, () => uuidAlphabet[randomInt(uuidAlphabet.length)]).join('');
	let offset = 0;
	return [6, 4, 4, 4, 4, 4, 6].map((length) => characters.slice(offset, (offset += length))).join('-');
}

/** Every file some process holds open, from the /proc/<pid>/fd symlinks. */
export async function openFiles(): Promise<Set<string>> {
	const open = new Set<string>();
	const pids = (await fs.readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
	await Promise.all(
		pids.map(async (pid) => {
			let descriptors: string[];
			try {
				descriptors = await fs.readdir(`/proc/${pid}/fd`);
			} catch {
				return;
			}

			await Promise.all(
				descriptors.map(async (descriptor) => {
					try {
						open.add(await fs.readlink(`/proc/${pid}/fd/${descriptor}`));
					} catch {}
				}),
			);
		}),
	);
	return open;
}

/** The device path as /proc shows it in fd links: symlinks in `root` resolved. */
export async function canonicalDevicePath(root: string, vg: string, lv: string): Promise<string> {
	const device = lvDevicePath(root, vg, lv);
	try {
		return path.join(await fs.realpath(path.dirname(device)), path.basename(device));
	} catch {
		return device;
	}
}

/** Whether any process holds the LV's device open: lv_attr's `o`, and why lvremove refuses. */
export async function isLvOpen(root: string, vg: string, lv: string, open?: Set<string>): Promise<boolean> {
	return (open ?? (await openFiles())).has(await canonicalDevicePath(root, vg, lv));
}

export function assertLvName(name: string, what = 'Logical volume name'): void {
	const valid =
		name.length > 0 &&
		name.length <= 127 &&
		!name.startsWith('-') &&
		name !== '.' &&
		name !== '..' &&
		/^[A-Za-z0-9+_.-]+$/.test(name);
	if (!valid) throw new LvmError(`${what} "${name}" is invalid.`, 3);
}

/** Renames an LV and its device file, as `lvrename` does (and Ganeti when it adopts a volume). */
export async function renameLv(root: string, vg: string, from: string, to: string): Promise<void> {
	assertLvName(to, 'New logical volume name');
	await withLvmState(root, async (state) => {
		if (!findVg(state, vg)) throw new LvmError(`Volume group "${vg}" not found`);
		const volume = findLv(state, vg, from);
		if (!volume) throw new LvmError(`Existing logical volume "${from}" not found in volume group "${vg}"`);
		if (findLv(state, vg, to)) throw new LvmError(`Logical Volume "${to}" already exists in volume group "${vg}"`);
		await fs.rename(lvDevicePath(root, vg, from), lvDevicePath(root, vg, to));
		volume.name = to;
		for (const snapshot of snapshotsOf(state, vg, from)) snapshot.origin = to;
	});
}

/**
 * Test hook (not an LVM command): make a snapshot `percent` full. At 100 the
 * snapshot overflows and becomes invalid, as the kernel drops it: its
 * content is gone. The device file is cut to nothing (a copy reading it
 * meanwhile hits the end early and comes out short) and replaced by a
 * directory, so that any later read fails (EISDIR, or EINVAL with O_DIRECT),
 * standing for the EIO of a dropped snapshot.
 */
export async function setSnapPercent(root: string, vg: string, lv: string, percent: number): Promise<void> {
	if (!Number.isFinite(percent) || percent < 0) throw new LvmError(`Invalid snapshot percentage ${percent}.`, 3);
	await withLvmState(root, async (state) => {
		const volume = findLv(state, vg, lv);
		if (!volume) throw new LvmError(`Failed to find logical volume "${vg}/${lv}"`);
		if (volume.origin === undefined) throw new LvmError(`Logical volume ${vg}/${lv} is not a snapshot.`);
		volume.snapPercent = Math.min(percent, 100);
		if (percent < 100 || volume.invalid) return;
		volume.invalid = true;
		const device = lvDevicePath(root, vg, lv);
		await fs.truncate(device, 0);
		await fs.rm(device, {force: true});
		await fs.mkdir(device);
	});
}

/** Removes an LV's device, whether a file or (an invalidated snapshot) a directory. */
export async function removeLvDevice(root: string, vg: string, lv: string): Promise<void> {
	await fs.rm(lvDevicePath(root, vg, lv), {recursive: true, force: true});
}
