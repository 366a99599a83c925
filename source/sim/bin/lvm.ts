/**
 * Stand-in for the LVM2 2.03 commands farmclone runs (lvs, vgs, lvcreate,
 * lvremove, lvextend), for a simulated farm whose logical volumes are sparse
 * files under root/dev. Only the options farmclone and the simulated farm's
 * tests give are known; any other is refused as LVM refuses an unknown option.
 * Output formats, messages (stdout for reports and notices, stderr for errors
 * and prompts, all with LVM's two-space prefix) and exit codes follow the real
 * commands (3: bad command line, 5: command failed). `lvm-sim` is the test
 * hook, not an LVM command.
 */
import {realpathSync} from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import {createInterface} from 'node:readline';
import {fileURLToPath} from 'node:url';
import {
	defaultUnits,
	displayPercent,
	displaySize,
	messagePrefix,
	parseUnits,
	renderReport,
	type ReportField,
	type Units,
} from '../lvm-format.js';
import {
	assertLvName,
	canonicalDevicePath,
	findLv,
	findVg,
	LvmError,
	lvDevicePath,
	newLvmUuid,
	openFiles,
	readLvmState,
	removeLvDevice,
	setSnapPercent,
	snapshotsOf,
	vgFreeExtents,
	withLvmState,
	type SimLv,
	type SimLvmState,
	type SimVg,
} from '../lvm-state.js';
import {simPaths} from '../paths.js';

export {setSnapPercent} from '../lvm-state.js';

export type LvmIo = {
	out: (text: string) => void;
	err: (text: string) => void;
	/** Shows a yes/no prompt on stderr and reads the answer; end of input is "n". */
	ask: (prompt: string) => Promise<'y' | 'n'>;
};

type Context = {root: string; io: LvmIo; units: Units};

function print(context: Context, message: string): void {
	context.io.out(`${messagePrefix}${message}\n`);
}

function printError(context: Context, message: string): void {
	context.io.err(`${messagePrefix}${message}\n`);
}

// --- command line -----------------------------------------------------------

/** getopt's own complaints: printed unprefixed, then LVM's "Error during parsing", exit 3. */
class UsageError extends Error {}

type OptionSpec = {long: string; short?: string; value?: boolean};
type CommandLine = {options: Map<string, string[]>; positionals: string[]};

// farmclone's own: `lvs`/`vgs --reportformat json --units b --nosuffix -o F VG`, `lvcreate [--snapshot] [--yes]
// --size S --name N`, `lvextend --size +S VG/LV`, `lvremove --yes|-f VG/LV`; --noheadings and the short forms
// for the tests that read the stand-in by hand.
const reportOptions: OptionSpec[] = [
	{long: 'noheadings'},
	{long: 'nosuffix'},
	{long: 'options', short: 'o', value: true},
	{long: 'reportformat', value: true},
	{long: 'units', value: true},
];

const commandOptions: Record<string, OptionSpec[]> = {
	lvs: reportOptions,
	vgs: reportOptions,
	lvcreate: [
		{long: 'name', short: 'n', value: true},
		{long: 'size', short: 'L', value: true},
		{long: 'snapshot', short: 's'},
		{long: 'yes', short: 'y'},
	],
	lvremove: [
		{long: 'force', short: 'f'},
		{long: 'yes', short: 'y'},
	],
	lvextend: [{long: 'size', short: 'L', value: true}],
};

function parseCommandLine(command: string, args: string[], specs: OptionSpec[]): CommandLine {
	const options = new Map<string, string[]>();
	const positionals: string[] = [];
	const add = (spec: OptionSpec, value: string) => options.set(spec.long, [...(options.get(spec.long) ?? []), value]);
	for (let index = 0; index < args.length; index++) {
		const arg = args[index]!;
		if (arg === '--') {
			positionals.push(...args.slice(index + 1));
			break;
		}

		if (arg.startsWith('--')) {
			const equals = arg.indexOf('=');
			const name = equals === -1 ? arg.slice(2) : arg.slice(2, equals);
			const inline = equals === -1 ? undefined : arg.slice(equals + 1);
			const exact = specs.find((spec) => spec.long === name);
			const candidates = exact ? [exact] : specs.filter((spec) => spec.long.startsWith(name));
			if (candidates.length === 0) throw new UsageError(`${command}: unrecognized option '--${name}'`);
			if (candidates.length > 1) {
				const possibilities = candidates.map((spec) => `'--${spec.long}'`).join(' ');
				throw new UsageError(`${command}: option '--${name}' is ambiguous; possibilities: ${possibilities}`);
			}

			const spec = candidates[0]!;
			if (spec.value) {
				const value = inline ?? args[++index];
				if (value === undefined) throw new UsageError(`${command}: option '--${spec.long}' requires an argument`);
				add(spec, value);
			} else {
				if (inline !== undefined) {
					throw new UsageError(`${command}: option '--${spec.long}' doesn't allow an argument`);
				}

				add(spec, '');
			}

			continue;
		}

		if (arg.startsWith('-') && arg.length > 1) {
			for (let position = 1; position < arg.length; position++) {
				const letter = arg[position]!;
				const spec = specs.find((candidate) => candidate.short === letter);
				if (!spec) throw new UsageError(`${command}: invalid option -- '${letter}'`);
				if (!spec.value) {
					add(spec, '');
					continue;
				}

				const value = arg.slice(position + 1) || args[++index];
				if (value === undefined) throw new UsageError(`${command}: option requires an argument -- '${letter}'`);
				add(spec, value);
				break;
			}

			continue;
		}

		positionals.push(arg);
	}

	return {options, positionals};
}

function has(line: CommandLine, option: string): boolean {
	return line.options.has(option);
}

function lastValue(line: CommandLine, option: string): string | undefined {
	return line.options.get(option)?.at(-1);
}

// --- names and sizes -----------------------------------------------------------

/** The part of an argument after the device directory, as LVM's skip_dev_dir: root/dev/all/x -> all/x. */
function skipDevDir(root: string, argument: string): string {
	const devDir = `${simPaths(root).dev}/`;
	const collapsed = argument.replace(/^\/+/, '/');
	if (!collapsed.startsWith(devDir)) return argument;
	return collapsed.slice(devDir.length).replace(/^\/+/, '');
}

type LvReference = {vg: string; lv?: string};

/** `VG`, `VG/LV` or a device path under root/dev, as process_each_lv reads its arguments. */
function parseLvArgument(root: string, argument: string): LvReference {
	const name = skipDevDir(root, argument);
	if (name.startsWith('/')) throw new LvmError(`"${argument}": Invalid path for Logical Volume.`);
	const match = /^([^/]*)\/+([^/]*)$/.exec(name);
	if (name.includes('/') && !match) throw new LvmError(`"${argument}": Invalid path for Logical Volume.`);
	return match ? {vg: match[1]!, lv: match[2]!} : {vg: name};
}

/** An argument that must name one LV, with its VG (lvextend, lvcreate's origin, lvm-sim). */
function parseLvPath(root: string, argument: string): {vg: string; lv: string} {
	const name = skipDevDir(root, argument);
	if (!name.includes('/')) throw new LvmError(`Path required for Logical Volume "${argument}".`, 3);
	const match = /^([^/]+)\/+([^/]+)$/.exec(name);
	if (!match) throw new LvmError(`"${argument}": Invalid path for Logical Volume.`, 3);
	assertLvName(match[2]!);
	return {vg: match[1]!, lv: match[2]!};
}

function assertNotReserved(name: string): void {
	for (const prefix of ['pvmove', 'snapshot']) {
		if (name.startsWith(prefix)) {
			throw new LvmError(`Names starting "${prefix}" are reserved. Please choose a different LV name.`, 3);
		}
	}

	const reserved = ['_cdata', '_cmeta', '_corig', '_cpool', '_cvol', '_imeta', '_iorig', '_mimage', '_mlog'];
	reserved.push('_pmspare', '_rimage', '_rmeta', '_tdata', '_tmeta', '_vdata', '_vorigin', '_wcorig');
	const found = reserved.find((part) => name.includes(part));
	if (found) throw new LvmError(`Names including "${found}" are reserved. Please choose a different LV name.`, 3);
}

type SizeArgument = {sign: '' | '+' | '-'; bytes: number};

const sizeUnits = 'kmgtpebs';

/**
 * An input size (`--size`): optional sign, a number, an optional unit that is
 * a power of 1024 whatever its case (plus b for bytes, s for sectors);
 * without a unit, MiB.
 */
function parseSizeArgument(option: string, text: string): SizeArgument {
	const invalid = (reason: string) =>
		new LvmError(`${reason}\n${messagePrefix}Invalid argument for --${option}: ${text}`, 3);
	const sign = text.startsWith('+') || text.startsWith('-') ? (text[0] as '+' | '-') : '';
	const rest = sign ? text.slice(1) : text;
	if (rest.startsWith('+') || rest.startsWith('-')) throw invalid('Multiple sign symbols detected.');
	const match = /^(\d*\.?\d*)(.*)$/.exec(rest);
	const number = match?.[1] ?? '';
	if (!/\d/.test(number)) throw invalid('Size requires number argument.');
	const value = Number(number);
	const unit = (match?.[2] ?? '').charAt(0).toLowerCase();
	let sectors: number;
	if (!unit) sectors = value * 2048;
	else if (!sizeUnits.includes(unit)) throw invalid("Can't parse size argument.");
	else if (unit === 's') sectors = value;
	else if (unit === 'b') {
		const bytes = Math.trunc(value);
		if (bytes % 512) {
			const up = bytes + 512 - (bytes % 512);
			throw invalid(`Size is not a multiple of 512. Try using ${up - 512} or ${up}.`);
		}

		sectors = bytes / 512;
	} else sectors = value * 1024 ** sizeUnits.indexOf(unit) * 2;
	return {sign, bytes: Math.trunc(sectors) * 512};
}

/** The largest useful copy-on-write area for an origin of `originBytes`: 4 KiB chunks, header, exception tables. */
function cowMaxExtents(originBytes: number, extentSize: number): number {
	const chunk = 4096;
	const originChunks = Math.ceil(originBytes / chunk);
	const exceptionsPerChunk = chunk / 16;
	const metadataChunks = Math.floor((originChunks + exceptionsPerChunk) / exceptionsPerChunk);
	return Math.ceil(((1 + originChunks + metadataChunks) * chunk) / extentSize);
}

function requireVg(state: SimLvmState, name: string): SimVg {
	const vg = findVg(state, name);
	if (!vg) throw new LvmError(`Volume group "${name}" not found\n${messagePrefix}Cannot process volume group ${name}`);
	return vg;
}

function requireLv(state: SimLvmState, vg: string, name: string): SimLv {
	const lv = findLv(state, vg, name);
	if (!lv) throw new LvmError(`Failed to find logical volume "${vg}/${name}"`);
	return lv;
}

function sizeText(context: Context, bytes: number): string {
	return displaySize(bytes, context.units, 'short');
}

/** lvcreate's conversion: round a size up to whole extents, saying so. */
function extentsFromSize(context: Context, bytes: number, extentSize: number): number {
	const extents = Math.ceil(bytes / extentSize);
	if (bytes % extentSize) {
		print(context, `Rounding up size to full physical extent ${sizeText(context, extents * extentSize)}`);
	}

	return extents;
}

// --- reports -----------------------------------------------------------------

type Row = {root: string; state: SimLvmState; vg: SimVg; lv?: SimLv; open: Set<string>; devDir: string};
type FieldValue = string | number;
type FieldDef = ReportField & {scope: 'lv' | 'vg'; value: (row: Row) => FieldValue};

function lvOf(row: Row): SimLv {
	if (!row.lv) throw new Error('LV field on a VG row');
	return row.lv;
}

function isOrigin(row: Row): boolean {
	return snapshotsOf(row.state, row.vg.name, lvOf(row).name).length > 0;
}

function lvAttr(row: Row): string {
	const lv = lvOf(row);
	const snapshot = lv.origin !== undefined;
	const origin = isOrigin(row);
	const type = snapshot ? 's' : origin ? 'o' : '-';
	const state = lv.invalid ? 'I' : 'a';
	const open = row.open.has(path.join(row.devDir, lv.vg, lv.name)) ? 'o' : '-';
	return `${type}wi-${state}${open}${snapshot || origin ? 's' : '-'}---`;
}

function snapshotPercent(row: Row): FieldValue {
	const lv = lvOf(row);
	if (lv.origin === undefined) return '';
	return lv.invalid ? 100 : (lv.snapPercent ?? 0);
}

const none = (): FieldValue => '';

function field(
	scope: FieldDef['scope'],
	id: string,
	heading: string,
	kind: FieldDef['kind'],
	width: number,
	value: FieldDef['value'],
): FieldDef {
	return {scope, id, heading, kind, width, value};
}

/**
 * The fields of lvs(8)/vgs(8) that farmclone, the default reports and the stand-in's tests ask for, with their
 * headings and minimum widths; any other is an unrecognised field, as LVM answers one.
 */
const fields: FieldDef[] = [
	field('lv', 'lv_uuid', 'LV UUID', 'string', 38, (row) => lvOf(row).uuid),
	field('lv', 'lv_name', 'LV', 'string', 4, (row) => lvOf(row).name),
	field('lv', 'lv_path', 'Path', 'string', 0, (row) => lvDevicePath(row.root, row.vg.name, lvOf(row).name)),
	field('lv', 'lv_size', 'LSize', 'size', 0, (row) => lvOf(row).size),
	field('lv', 'origin', 'Origin', 'string', 0, (row) => lvOf(row).origin ?? ''),
	field('lv', 'move_pv', 'Move', 'string', 0, none),
	field('lv', 'convert_lv', 'Convert', 'string', 0, none),
	field('lv', 'mirror_log', 'Log', 'string', 0, none),
	field('lv', 'pool_lv', 'Pool', 'string', 0, none),
	field('lv', 'lv_tags', 'LV Tags', 'list', 0, (row) => lvOf(row).tags.join(',')),
	field('lv', 'data_percent', 'Data%', 'percent', 6, snapshotPercent),
	field('lv', 'snap_percent', 'Snap%', 'percent', 6, snapshotPercent),
	field('lv', 'metadata_percent', 'Meta%', 'percent', 6, none),
	field('lv', 'copy_percent', 'Cpy%Sync', 'percent', 0, none),
	field('lv', 'lv_attr', 'Attr', 'string', 0, lvAttr),
	field('vg', 'vg_name', 'VG', 'string', 0, (row) => row.vg.name),
	field('vg', 'vg_attr', 'Attr', 'string', 5, () => 'wz--n-'),
	field('vg', 'vg_size', 'VSize', 'size', 0, (row) => row.vg.size),
	field('vg', 'vg_free', 'VFree', 'size', 0, (row) => vgFreeExtents(row.state, row.vg) * row.vg.extentSize),
	field('vg', 'vg_extent_size', 'Ext', 'size', 0, (row) => row.vg.extentSize),
	field('vg', 'vg_extent_count', '#Ext', 'number', 0, (row) => Math.floor(row.vg.size / row.vg.extentSize)),
	field('vg', 'vg_free_count', 'Free', 'number', 0, (row) => vgFreeExtents(row.state, row.vg)),
	field('vg', 'pv_count', '#PV', 'number', 0, () => 1),
	field('vg', 'lv_count', '#LV', 'number', 0, (row) => row.state.lvs.filter((lv) => lv.vg === row.vg.name).length),
	field(
		'vg',
		'snap_count',
		'#SN',
		'number',
		0,
		(row) => row.state.lvs.filter((lv) => lv.vg === row.vg.name && lv.origin !== undefined).length,
	),
];

const reportDefaults = {
	lv: {
		options:
			'lv_name,vg_name,lv_attr,lv_size,pool_lv,origin,data_percent,metadata_percent,move_pv,mirror_log,copy_percent,convert_lv',
		sort: 'vg_name,lv_name',
	},
	vg: {options: 'vg_name,pv_count,lv_count,snap_count,vg_attr,vg_size,vg_free', sort: 'vg_name'},
};

function canonical(name: string): string {
	return name.toLowerCase().replaceAll('_', '');
}

/** A field by name as libdm matches it: case and underscores ignored, the report's prefix (lv_, vg_) optional. */
function resolveField(kind: 'lv' | 'vg', name: string): FieldDef | undefined {
	const wanted = canonical(name);
	const available = fields.filter((candidate) => kind === 'lv' || candidate.scope === 'vg');
	return available.find((candidate) => {
		const id = canonical(candidate.id);
		return id === wanted || (id.startsWith(kind) && id.slice(kind.length) === wanted);
	});
}

function requireField(kind: 'lv' | 'vg', name: string): FieldDef {
	const found = resolveField(kind, name);
	if (!found) throw new LvmError(`Unrecognised field: ${name}`);
	return found;
}

function displayValue(definition: FieldDef, value: FieldValue, units: Units): string {
	if (value === '') return '';
	if (definition.kind === 'size') return displaySize(Number(value), units);
	if (definition.kind === 'percent') return displayPercent(Number(value));
	return String(value);
}

function selectedFields(kind: 'lv' | 'vg', line: CommandLine): FieldDef[] {
	let names = reportDefaults[kind].options.split(',');
	for (const option of line.options.get('options') ?? []) {
		const listed = option.replace(/^\+/, '').split(',').filter(Boolean);
		names = option.startsWith('+') ? [...names, ...listed] : listed;
	}

	return names.map((name) => requireField(kind, name));
}

function compareValues(left: FieldValue, right: FieldValue): number {
	if (typeof left === 'number' && typeof right === 'number') return left - right;
	const a = String(left);
	const b = String(right);
	return a < b ? -1 : a > b ? 1 : 0;
}

function sortRows(kind: 'lv' | 'vg', rows: Row[], keys: string): Row[] {
	const order = keys
		.split(',')
		.filter(Boolean)
		.map((key) => ({descending: key.startsWith('-'), definition: requireField(kind, key.replace(/^[+-]/, ''))}));
	return [...rows].sort((a, b) => {
		for (const {descending, definition} of order) {
			const difference = compareValues(definition.value(a), definition.value(b));
			if (difference) return descending ? -difference : difference;
		}

		return 0;
	});
}

// --- lvs, vgs ------------------------------------------------------------------

function reportUnits(line: CommandLine): Units {
	const suffix = !has(line, 'nosuffix');
	const spec = lastValue(line, 'units');
	if (spec === undefined) return {...defaultUnits, suffix};
	const units = parseUnits(spec, suffix);
	if (!units) throw new LvmError('Invalid units specification', 3);
	return units;
}

async function rowsFor(root: string, state: SimLvmState): Promise<(vg: SimVg, lv?: SimLv) => Row> {
	const open = await openFiles();
	let devDir = simPaths(root).dev;
	try {
		devDir = await fs.realpath(devDir);
	} catch {}

	return (vg, lv) => ({root, state, vg, ...(lv ? {lv} : {}), open, devDir});
}

async function report(context: Context, kind: 'lv' | 'vg', line: CommandLine): Promise<number> {
	const format = lastValue(line, 'reportformat') ?? 'basic';
	if (format !== 'basic' && format !== 'json') throw new LvmError(`Unknown report format ${format}.`, 3);
	const definitions = selectedFields(kind, line);
	const state = await readLvmState(context.root);
	const makeRow = await rowsFor(context.root, state);
	let exitCode = 0;
	const fail = (message: string, code = 5) => {
		printError(context, message);
		exitCode = Math.max(exitCode, code);
	};

	const rows: Row[] = [];
	const add = (row: Row) => {
		if (!rows.some((existing) => existing.vg === row.vg && existing.lv === row.lv)) rows.push(row);
	};

	const missingVgs = new Set<string>();
	const missingVg = (name: string) => {
		if (missingVgs.has(name)) return;
		missingVgs.add(name);
		fail(`Volume group "${name}" not found`);
		fail(`Cannot process volume group ${name}`);
	};

	if (line.positionals.length === 0) {
		for (const vg of state.vgs) {
			if (kind === 'vg') add(makeRow(vg));
			else for (const lv of state.lvs.filter((volume) => volume.vg === vg.name)) add(makeRow(vg, lv));
		}
	}

	for (const argument of line.positionals) {
		if (kind === 'vg') {
			const name = skipDevDir(context.root, argument);
			if (name.includes('/')) {
				fail(`Invalid volume group name ${name}.`, 3);
				continue;
			}

			const vg = findVg(state, name);
			if (vg) add(makeRow(vg));
			else missingVg(name);
			continue;
		}

		let reference: LvReference;
		try {
			reference = parseLvArgument(context.root, argument);
		} catch (error) {
			if (!(error instanceof LvmError)) throw error;
			fail(error.message);
			continue;
		}

		const vg = findVg(state, reference.vg);
		if (!vg) {
			missingVg(reference.vg);
			continue;
		}

		const lvs = state.lvs.filter((volume) => volume.vg === vg.name);
		if (reference.lv === undefined) for (const lv of lvs) add(makeRow(vg, lv));
		else {
			const lv = lvs.find((volume) => volume.name === reference.lv);
			if (lv) add(makeRow(vg, lv));
			else fail(`Failed to find logical volume "${vg.name}/${reference.lv}"`);
		}
	}

	// LVM's default order; farmclone never asks for another (-O) nor for a selection (-S), so neither is here.
	const shown = sortRows(kind, rows, reportDefaults[kind].sort);
	const table = shown.map((row) =>
		definitions.map((definition) => displayValue(definition, definition.value(row), context.units)),
	);
	context.io.out(
		renderReport(kind, definitions, table, {
			json: format === 'json',
			headings: !has(line, 'noheadings'),
		}),
	);
	return exitCode;
}

// --- lvcreate ------------------------------------------------------------------

function nextFreeName(state: SimLvmState, vg: string): string {
	for (let index = 0; ; index++) {
		if (!findLv(state, vg, `lvol${index}`)) return `lvol${index}`;
	}
}

async function lvcreate(context: Context, line: CommandLine): Promise<number> {
	const {root} = context;
	const snapshot = has(line, 'snapshot');
	const sizeOption = lastValue(line, 'size');
	if (sizeOption === undefined) {
		throw new LvmError(
			snapshot ? 'Please specify either size or extents with snapshots.' : 'Please specify either size or extents.',
			3,
		);
	}

	const size = parseSizeArgument('size', sizeOption);
	if (size.sign)
		throw new LvmError(
			`Size may not be relative/signed.\n${messagePrefix}Invalid argument for --size: ${sizeOption}`,
			3,
		);

	let vgName: string | undefined;
	let name = lastValue(line, 'name');
	if (name !== undefined) {
		if (name.includes('/')) {
			const parsed = parseLvPath(root, name);
			vgName = parsed.vg;
			name = parsed.lv;
		}

		assertLvName(name);
		assertNotReserved(name);
	}

	const [target, ...physicalVolumes] = line.positionals;
	let originName: string | undefined;
	if (snapshot) {
		if (target === undefined) throw new LvmError('Please specify a logical volume to act as the snapshot origin.', 3);
		const origin = parseLvPath(root, target);
		if (vgName !== undefined && vgName !== origin.vg) {
			throw new LvmError(`Please use a single volume group name ("${origin.vg}" or "${vgName}").`, 3);
		}

		vgName = origin.vg;
		originName = origin.lv;
	} else {
		if (target === undefined && vgName === undefined) throw new LvmError('Please provide a volume group name', 3);
		if (target !== undefined) {
			const given = skipDevDir(root, target);
			if (given.includes('/')) throw new LvmError('Volume group name expected (no slash)', 3);
			if (vgName !== undefined && vgName !== given) {
				throw new LvmError(`Inconsistent volume group names given: "${vgName}" and "${given}"`, 3);
			}

			vgName = given;
		}
	}

	const vgWanted = vgName!;
	return withLvmState(root, async (state) => {
		const vg = requireVg(state, vgWanted);
		const origin = originName === undefined ? undefined : findLv(state, vg.name, originName);
		if (originName !== undefined && !origin) {
			throw new LvmError(`Snapshot origin LV ${originName} not found in Volume group ${vg.name}.`);
		}

		const free = vgFreeExtents(state, vg);
		let count = extentsFromSize(context, size.bytes, vg.extentSize);

		if (origin) {
			const maximum = cowMaxExtents(origin.size, vg.extentSize);
			if (count > maximum) {
				print(
					context,
					`Reducing COW size ${sizeText(context, count * vg.extentSize)} down to maximum usable size ${sizeText(context, maximum * vg.extentSize)}.`,
				);
				count = maximum;
			}
		}

		if (count === 0) throw new LvmError('Unable to create new logical volume with no extents.');
		const lvName = name ?? nextFreeName(state, vg.name);
		if (findLv(state, vg.name, lvName)) {
			throw new LvmError(`Logical Volume "${lvName}" already exists in volume group "${vg.name}"`);
		}

		if (origin?.origin !== undefined) throw new LvmError('Snapshots of snapshots are not supported.');
		if (physicalVolumes.length > 0) {
			throw new LvmError(`Physical Volume "${physicalVolumes[0]}" not found in Volume Group "${vg.name}".`);
		}

		if (free < count) {
			throw new LvmError(`Volume group "${vg.name}" has insufficient free space (${free} extents): ${count} required.`);
		}

		const device = lvDevicePath(root, vg.name, lvName);
		await fs.mkdir(path.dirname(device), {recursive: true});
		if (origin) {
			// A snapshot reads as the origin did at this instant. (execa loads slowly: only when needed.)
			const {execa} = await import('execa');
			const copy = await execa(
				'cp',
				['--reflink=auto', '--sparse=always', lvDevicePath(root, vg.name, origin.name), device],
				{
					reject: false,
				},
			);
			if (copy.exitCode !== 0) {
				await fs.rm(device, {force: true});
				throw new LvmError(`Failed to copy origin ${vg.name}/${origin.name}: ${copy.stderr.trim()}`);
			}
		} else {
			const handle = await fs.open(device, 'wx');
			await handle.truncate(count * vg.extentSize);
			await handle.close();
		}

		const created: SimLv = {name: lvName, vg: vg.name, uuid: newLvmUuid(), size: count * vg.extentSize, tags: []};
		if (origin) Object.assign(created, {origin: origin.name, snapPercent: 0});
		state.lvs.push(created);
		print(context, `Logical volume "${lvName}" created.`);
		return 0;
	});
}

// --- lvremove ------------------------------------------------------------------

/** lv_check_not_in_use: LVM retries a while before calling an open LV in use; shorter here. */
async function inUse(root: string, lv: SimLv): Promise<boolean> {
	const device = await canonicalDevicePath(root, lv.vg, lv.name);
	for (let attempt = 0; ; attempt++) {
		if (!(await openFiles()).has(device)) return false;
		if (attempt >= 3) return true;
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}

async function lvremove(context: Context, line: CommandLine): Promise<number> {
	const {root} = context;
	if (line.positionals.length === 0) {
		throw new LvmError('Please enter one or more logical volume paths or use --select for selection.', 3);
	}

	const force = has(line, 'force') || has(line, 'yes');
	return withLvmState(root, async (state) => {
		let exitCode = 0;
		const fail = (message: string) => {
			printError(context, message);
			exitCode = 5;
			return false;
		};

		const removeOne = async (lv: SimLv, prompt: boolean): Promise<boolean> => {
			const display = `${lv.vg}/${lv.name}`;
			if (await inUse(root, lv)) return fail(`Logical volume ${display} in use.`);
			if (!force && prompt) {
				const answer = await context.io.ask(`Do you really want to remove active logical volume ${display}? [y/n]: `);
				if (answer === 'n') return fail(`Logical volume ${display} not removed.`);
			}

			await removeLvDevice(root, lv.vg, lv.name);
			state.lvs = state.lvs.filter((volume) => volume !== lv);
			print(context, `Logical volume "${lv.name}" successfully removed.`);
			return true;
		};

		const removeWithSnapshots = async (lv: SimLv): Promise<boolean> => {
			const snapshots = snapshotsOf(state, lv.vg, lv.name);
			if (snapshots.length === 0) return removeOne(lv, true);
			const display = `${lv.vg}/${lv.name}`;
			if (await inUse(root, lv)) return fail(`Logical volume ${display} in use.`);
			if (!force) {
				const answer = await context.io.ask(
					`Do you really want to remove active origin logical volume ${display} with ${snapshots.length} snapshots(s)? [y/n]: `,
				);
				if (answer === 'n') return fail(`Logical volume ${display} not removed.`);
			}

			for (const snapshot of snapshots) if (!(await removeOne(snapshot, true))) return false;
			// The origin was deactivated with its snapshots: no second question.
			return removeOne(lv, false);
		};

		for (const argument of line.positionals) {
			let reference: LvReference;
			try {
				reference = parseLvArgument(root, argument);
			} catch (error) {
				if (!(error instanceof LvmError)) throw error;
				fail(error.message);
				continue;
			}

			if (!findVg(state, reference.vg)) {
				fail(`Volume group "${reference.vg}" not found`);
				fail(`Cannot process volume group ${reference.vg}`);
				continue;
			}

			const names =
				reference.lv === undefined
					? state.lvs.filter((volume) => volume.vg === reference.vg).map((volume) => volume.name)
					: [reference.lv];
			for (const name of names) {
				const lv = state.lvs.find((volume) => volume.name === name && volume.vg === reference.vg);
				if (!lv) {
					// Removed already as the snapshot of an origin named before it.
					if (reference.lv !== undefined) fail(`Failed to find logical volume "${reference.vg}/${name}"`);
					continue;
				}

				await removeWithSnapshots(lv);
			}
		}

		return exitCode;
	});
}

// --- lvextend ------------------------------------------------------------------

async function lvextend(context: Context, line: CommandLine): Promise<number> {
	const {root} = context;
	const sizeOption = lastValue(line, 'size');
	if (sizeOption === undefined) throw new LvmError('Please specify either size or extents.', 3);
	const size = parseSizeArgument('size', sizeOption);
	if (size.sign === '-') throw new LvmError('Negative argument not permitted - use lvreduce.', 3);
	const [target, ...physicalVolumes] = line.positionals;
	if (target === undefined) throw new LvmError('Please provide the logical volume name.', 3);
	const wanted = parseLvPath(root, target);

	return withLvmState(root, async (state) => {
		const vg = requireVg(state, wanted.vg);
		const lv = requireLv(state, vg.name, wanted.lv);
		if (physicalVolumes.length > 0) {
			throw new LvmError(`Physical Volume "${physicalVolumes[0]}" not found in Volume Group "${vg.name}".`);
		}

		const display = `${vg.name}/${lv.name}`;
		const existing = lv.size / vg.extentSize;
		const free = vgFreeExtents(state, vg);
		const origin = lv.origin === undefined ? undefined : findLv(state, vg.name, lv.origin);
		const requested = Math.ceil(size.bytes / vg.extentSize);
		if (size.bytes % vg.extentSize) {
			print(
				context,
				`Rounding size to boundary between physical extents: ${sizeText(context, requested * vg.extentSize)}.`,
			);
		}

		let count = size.sign === '+' ? existing + requested : requested;
		if (snapshotsOf(state, vg.name, lv.name).length > 0) {
			throw new LvmError('Snapshot origin volumes can be resized only while inactive: try lvchange -an.');
		}

		if (origin) {
			const maximum = cowMaxExtents(origin.size, vg.extentSize);
			if (count > maximum) {
				print(context, `Reached maximum COW size ${sizeText(context, maximum * vg.extentSize)} (${maximum} extents).`);
				count = maximum;
				if (count === existing) {
					print(
						context,
						`Size of logical volume ${display} unchanged from ${sizeText(context, lv.size)} (${existing} extents).`,
					);
					print(context, `Logical volume ${display} successfully resized.`);
					return 0;
				}
			}
		}

		if (count === 0) throw new LvmError('New size of 0 not permitted.');
		if (count === existing) {
			throw new LvmError(`New size (${count} extents) matches existing size (${existing} extents).`);
		}

		if (count < existing) {
			throw new LvmError(`New size given (${count} extents) not larger than existing size (${existing} extents)`);
		}

		if (count - existing > free) {
			throw new LvmError(`Insufficient free space: ${count - existing} extents needed, but only ${free} available`);
		}

		const oldSize = lv.size;
		lv.size = count * vg.extentSize;
		if (origin) {
			// The same used chunks in a larger area: the fill level drops.
			if (!lv.invalid) lv.snapPercent = ((lv.snapPercent ?? 0) * oldSize) / lv.size;
		} else {
			await fs.truncate(lvDevicePath(root, vg.name, lv.name), lv.size);
		}

		print(
			context,
			`Size of logical volume ${display} changed from ${sizeText(context, oldSize)} (${existing} extents) to ${sizeText(context, lv.size)} (${count} extents).`,
		);
		print(context, `Logical volume ${display} successfully resized.`);
		return 0;
	});
}

// --- dispatch ------------------------------------------------------------------

const commands: Record<string, (context: Context, line: CommandLine) => Promise<number>> = {
	lvs: (context, line) => report(context, 'lv', line),
	vgs: (context, line) => report(context, 'vg', line),
	lvcreate,
	lvremove,
	lvextend,
};

/** The test hook: `lvm-sim set-snap-percent VG/LV N`. */
async function simulatorHook(root: string, args: string[]): Promise<number> {
	const [action, target, value] = args;
	if (action !== 'set-snap-percent' || target === undefined || value === undefined || args.length !== 3) {
		throw new LvmError('usage: lvm-sim set-snap-percent VG/LV PERCENT', 3);
	}

	const {vg, lv} = parseLvPath(root, target);
	await setSnapPercent(root, vg, lv, Number(value));
	return 0;
}

/**
 * Runs one LVM command (`command` is the name it was called by: lvs, lvcreate,
 * ..., lvm-sim) against the simulated farm at `root`; returns the exit code.
 */
export async function runLvm(root: string, command: string, args: string[], io: LvmIo): Promise<number> {
	const context: Context = {root, io, units: defaultUnits};
	try {
		if (command === 'lvm-sim') return await simulatorHook(root, args);

		const run = commands[command];
		const specs = commandOptions[command];
		if (!run || !specs) throw new LvmError(`No such command '${command}'.  Try 'help'.`, 3);
		const line = parseCommandLine(command, args, specs);
		if (command === 'lvs' || command === 'vgs') context.units = reportUnits(line);
		return await run(context, line);
	} catch (error) {
		if (error instanceof UsageError) {
			io.err(`${error.message}\n`);
			printError(context, 'Error during parsing of command line.');
			return 3;
		}

		if (error instanceof LvmError) {
			for (const message of error.message.split('\n')) {
				io.err(message.startsWith(messagePrefix) ? `${message}\n` : `${messagePrefix}${message}\n`);
			}

			return error.exitCode;
		}

		throw error;
	}
}

/** yes_no_prompt: the question on stderr, answers from stdin; invalid input asks again, end of input is "n". */
function processIo(): LvmIo & {close: () => void} {
	let lines: AsyncIterator<string> | undefined;
	let reader: ReturnType<typeof createInterface> | undefined;
	return {
		out: (text) => process.stdout.write(text),
		err: (text) => process.stderr.write(text),
		async ask(prompt) {
			reader ??= createInterface({input: process.stdin, terminal: false});
			lines ??= reader[Symbol.asyncIterator]();
			for (;;) {
				process.stderr.write(prompt);
				const next = await lines.next();
				if (next.done) {
					process.stderr.write('[n]\n');
					return 'n';
				}

				const answer = String(next.value).trim().toLowerCase();
				if (answer && 'yes'.startsWith(answer)) return 'y';
				if (answer && 'no'.startsWith(answer)) return 'n';
				process.stderr.write(`${messagePrefix}WARNING: Invalid input '${String(next.value).trim()}'.\n`);
			}
		},
		close() {
			reader?.close();
			if (reader) process.stdin.destroy();
		},
	};
}

async function main(): Promise<void> {
	const root = process.env['FARMCLONE_SIM_ROOT'];
	const [command = 'lvm', ...args] = process.argv.slice(2);
	if (!root) {
		process.stderr.write(
			`${messagePrefix}FARMCLONE_SIM_ROOT is not set: run ${command} through the simulated farm's bin/.\n`,
		);
		process.exitCode = 5;
		return;
	}

	const io = processIo();
	try {
		process.exitCode = await runLvm(root, command, args, io);
	} finally {
		io.close();
	}
}

function isEntryPoint(): boolean {
	const entry = process.argv[1];
	if (!entry) return false;
	try {
		return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
	} catch {
		return false;
	}
}

if (isEntryPoint()) {
	main().catch((error: unknown) => {
		process.stderr.write(`${messagePrefix}Internal error: ${error instanceof Error ? error.stack : String(error)}\n`);
		process.exitCode = 5;
	});
}
