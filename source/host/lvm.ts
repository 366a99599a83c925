import type {ReadOnlyHost} from './host.js';

/** One logical volume as `lvs` reports it, sizes in bytes. */
export type LogicalVolume = {
	name: string;
	vg: string;
	uuid: string;
	/** Device path from `lvs` (lv_path): the only path farmclone opens. */
	path: string;
	size: number;
	attr: string;
	/** lv_attr bit 1 is `s` (or `S` while merging). */
	snapshot: boolean;
	/** lv_attr bit 5: `a`, or a snapshot state that is still mapped. */
	active: boolean;
	/** lv_attr bit 5 is `I` or `S`: the snapshot overflowed and its content is lost. */
	invalid: boolean;
	/** lv_attr bit 6 is `o`: something (a VM, dd, a mount) holds the device open. */
	open: boolean;
	/** Origin LV name, for snapshots; empty otherwise. */
	origin: string;
	/** Snapshot fill level 0-100, for snapshots; undefined otherwise. */
	snapPercent: number | undefined;
	tags: string[];
};

export type VolumeGroup = {name: string; size: number; free: number; extentSize: number};

const lvFields = [
	'lv_name',
	'vg_name',
	'lv_uuid',
	'lv_path',
	'lv_size',
	'lv_attr',
	'origin',
	'snap_percent',
	'lv_tags',
];
const vgFields = ['vg_name', 'vg_size', 'vg_free', 'vg_extent_size'];
// Bytes without a suffix, in JSON: the only unambiguous way to read sizes (no rounding, no locale).
const reportOptions = ['--reportformat', 'json', '--units', 'b', '--nosuffix'];

type ReportRow = Record<string, string>;

/** Rows of one kind (`lv`, `vg`) from an LVM JSON report: {"report": [{"lv": [{...}]}]}. */
export function parseReport(json: string, kind: 'lv' | 'vg'): ReportRow[] {
	const parsed = JSON.parse(json) as {report?: Array<Record<string, unknown>>};
	if (!Array.isArray(parsed.report)) throw new Error(`not an LVM JSON report: ${json.slice(0, 200)}`);
	return parsed.report.flatMap((section) => {
		const rows = section[kind];
		return Array.isArray(rows) ? (rows as ReportRow[]) : [];
	});
}

function bytes(value: string | undefined, field: string): number {
	const number = Number(value);
	if (value === undefined || value.trim() === '' || !Number.isFinite(number)) {
		throw new Error(`lvs reported ${field}=${JSON.stringify(value)}, not a size in bytes`);
	}

	return number;
}

/** Decodes lv_attr as documented in lvs(8): 1 type, 2 permissions, 3 allocation, 4 minor, 5 state, 6 open... */
export function decodeAttr(attr: string): Pick<LogicalVolume, 'snapshot' | 'active' | 'invalid' | 'open'> {
	const type = attr[0] ?? '-';
	const state = attr[4] ?? '-';
	return {
		snapshot: type === 's' || type === 'S',
		invalid: state === 'I' || state === 'S',
		active: state === 'a' || state === 'I' || state === 'm',
		open: attr[5] === 'o',
	};
}

export function lvFromRow(row: ReportRow): LogicalVolume {
	const attr = row['lv_attr'] ?? '';
	const percent = row['snap_percent']?.trim();
	return {
		name: row['lv_name'] ?? '',
		vg: row['vg_name'] ?? '',
		uuid: row['lv_uuid'] ?? '',
		path: row['lv_path'] ?? '',
		size: bytes(row['lv_size'], 'lv_size'),
		attr,
		...decodeAttr(attr),
		origin: row['origin'] ?? '',
		snapPercent: percent ? Number(percent) : undefined,
		tags: (row['lv_tags'] ?? '').split(',').filter(Boolean),
	};
}

export function vgFromRow(row: ReportRow): VolumeGroup {
	return {
		name: row['vg_name'] ?? '',
		size: bytes(row['vg_size'], 'vg_size'),
		free: bytes(row['vg_free'], 'vg_free'),
		extentSize: bytes(row['vg_extent_size'], 'vg_extent_size'),
	};
}

export type QueryOptions = {
	/** Keep the query out of the command log (the copy polls the snapshot every few seconds). */
	quiet?: boolean;
};

export async function listLvs(host: ReadOnlyHost, vg: string, options: QueryOptions = {}): Promise<LogicalVolume[]> {
	const {stdout} = await host.run(['lvs', ...reportOptions, '-o', lvFields.join(','), vg], options);
	return parseReport(stdout, 'lv').map((row) => lvFromRow(row));
}

/**
 * The LV `name` in `vg`, or undefined when there is none. Lists the VG rather
 * than asking for `vg/name`, so that a missing LV is an answer, not an error
 * to tell apart from a missing VG by its message.
 */
export async function getLv(
	host: ReadOnlyHost,
	vg: string,
	name: string,
	options: QueryOptions = {},
): Promise<LogicalVolume | undefined> {
	return (await listLvs(host, vg, options)).find((lv) => lv.name === name);
}

export async function getVg(host: ReadOnlyHost, vg: string, options: QueryOptions = {}): Promise<VolumeGroup> {
	const {stdout} = await host.run(['vgs', ...reportOptions, '-o', vgFields.join(','), vg], options);
	const found = parseReport(stdout, 'vg')
		.map((row) => vgFromRow(row))
		.find((group) => group.name === vg);
	if (!found) throw new Error(`vgs did not report volume group ${vg}`);
	return found;
}

const unitShift: Record<string, number> = {b: 0, k: 10, m: 20, g: 30, t: 40, p: 50, e: 60};

/**
 * An LVM size argument in bytes. As lvm(8) documents for input sizes, units
 * are powers of two whatever their case (`1G` = `1g` = 1 GiB), `s` is a
 * 512-byte sector, and a bare number is MiB: the default unit of
 * `lvcreate --size` and `lvextend --size`.
 */
export function parseSize(text: string): number {
	const match = /^\s*(\d+(?:\.\d+)?)\s*([bskmgtpe])?\s*$/i.exec(text);
	if (!match) throw new Error(`not an LVM size: ${JSON.stringify(text)} (expected e.g. 512M, 1G, 30g)`);
	const value = Number(match[1]);
	const unit = (match[2] ?? 'm').toLowerCase();
	const multiplier = unit === 's' ? 512 : 2 ** (unitShift[unit] ?? 20);
	return Math.ceil(value * multiplier);
}

/** LVM allocates whole extents: what a request of `size` bytes really takes from the VG. */
export function roundUpToExtent(size: number, extentSize: number): number {
	return Math.ceil(size / extentSize) * extentSize;
}

const binaryUnits = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/**
 * Binary units, as `lvs` and `dd` users read them. 'size' (messages about
 * volumes): one decimal, `30.0 GiB`. 'progress' (the copy's live counters):
 * one decimal below 10 so small sizes still move visibly, whole numbers
 * above, `512 MiB`. Exact byte counts below 1 KiB either way.
 */
export function formatBytes(size: number, style: 'size' | 'progress' = 'size'): string {
	let value = style === 'progress' ? Math.max(0, size) : size;
	let unit = 0;
	while (Math.abs(value) >= 1024 && unit < binaryUnits.length - 1) {
		value /= 1024;
		unit++;
	}

	if (unit === 0) return `${Math.round(value)} B`;
	if (style === 'size') return `${value.toFixed(1)} ${binaryUnits[unit]}`;
	const shown = value < 10 ? value.toFixed(1) : String(Math.round(value));
	// Rounding 1023.6 MiB up must not print "1024 MiB".
	if (shown === '1024' && unit < binaryUnits.length - 1) return `1.0 ${binaryUnits[unit + 1]}`;
	return `${shown} ${binaryUnits[unit]}`;
}

/** `lvcreate --snapshot`: a copy-on-write view of `origin` frozen at this instant. */
export function snapshotArgv(vg: string, origin: string, name: string, size: string): string[] {
	return ['lvcreate', '--snapshot', '--size', size, '--name', name, `${vg}/${origin}`];
}

/**
 * A plain LV of exactly `size` bytes. `--yes` answers lvcreate's question
 * about wiping an old filesystem signature found where the new LV lands: the
 * copy overwrites it anyway, and without a terminal the question would abort.
 */
export function createArgv(vg: string, name: string, size: number): string[] {
	return ['lvcreate', '--yes', '--size', `${size}b`, '--name', name, vg];
}

export function extendArgv(vg: string, name: string, by: string): string[] {
	return ['lvextend', '--size', `+${by}`, `${vg}/${name}`];
}

/** `--yes` answers "remove active logical volume?"; lvremove still refuses an open LV either way. */
export function removeArgv(vg: string, name: string, confirm: '--yes' | '-f' = '--yes'): string[] {
	return ['lvremove', confirm, `${vg}/${name}`];
}
