/**
 * Output formats of LVM2 2.03 (Debian 12's lvm2 2.03.16), for the stand-in:
 * sizes as `lvs` and the messages print them, and the report layouts
 * (aligned columns, JSON).
 */

/** Console messages, report lines and JSON lines all start with the log prefix (log/prefix, default two spaces). */
export const messagePrefix = '  ';

export type Units = {
	/** r/R/h/H: human readable (r and R mark rounded values with `<`); b, s, k..e (1024), K..E (1000), U custom. */
	type: string;
	/** Bytes per unit; 0 for human-readable units. */
	factor: number;
	suffix: boolean;
};

export const defaultUnits: Units = {type: 'r', factor: 0, suffix: true};

const prefixes = ['e', 'p', 't', 'g', 'm', 'k'];
const binaryShort = [' EiB', ' PiB', ' TiB', ' GiB', ' MiB', ' KiB'];
const decimalShort = [' EB', ' PB', ' TB', ' GB', ' MB', ' kB'];

/** `--units` argument: one unit letter, optionally after a number (`4k` is a custom unit of 4 KiB). */
export function parseUnits(spec: string, suffix: boolean): Units | undefined {
	const match = /^(\d+(?:\.\d+)?)?([hHrRbBsSkmgtpeKMGTPE])$/.exec(spec);
	if (!match) return undefined;
	const letter = match[2]!;
	if ('hHrR'.includes(letter)) return {type: letter, factor: 0, suffix};
	const count = match[1] === undefined ? 1 : Number(match[1]);
	const lower = letter.toLowerCase();
	let factor: number;
	if (lower === 'b') factor = 1;
	else if (lower === 's') factor = 512;
	else factor = (letter === lower ? 1024 : 1000) ** (6 - prefixes.indexOf(lower));
	return {type: count === 1 ? letter : 'U', factor: Math.round(count * factor), suffix};
}

/** C's nearbyint in the default rounding mode: halves go to the even neighbour. */
function roundHalfEven(value: number): number {
	const whole = Math.floor(value);
	const fraction = value - whole;
	return fraction > 0.5 || (fraction === 0.5 && whole % 2 === 1) ? whole + 1 : whole;
}

/** printf's `%.Nf`. */
function fixed(value: number, precision: number): string {
	const whole = roundHalfEven(value * 10 ** precision);
	if (precision === 0) return String(whole);
	const digits = String(whole).padStart(precision + 1, '0');
	return `${digits.slice(0, -precision)}.${digits.slice(-precision)}`;
}

type SizeStyle = 'unit' | 'short';

type UnitName = {unit: string; short: string};

function unitName(units: Units): UnitName {
	const {type} = units;
	if ('EPTGMK'.includes(type)) return {unit: type, short: decimalShort[prefixes.indexOf(type.toLowerCase())]!};
	if ('eptgmk'.includes(type)) return {unit: type, short: binaryShort[prefixes.indexOf(type)]!};
	if (type === 'b' || type === 'B') return {unit: 'B', short: ' B '};
	if (type === 's' || type === 'S') return {unit: 'S', short: ' Se'};
	return {unit: 'U', short: ' Un'};
}

/**
 * A size as LVM displays it: in reports (`unit`: `30.00g`, `<29.52g`,
 * `268435456B`) and in messages (`short`: `1.00 GiB`). Mirrors libdm's
 * dm_size_to_string: two decimals except for bytes and sectors, `<` when
 * rounding to two decimals went up (units r/R), and a zero that is `0` plus
 * the padding of an unknown unit.
 */
export function displaySize(bytes: number, units: Units, style: SizeStyle = 'unit'): string {
	const human = 'hHrR'.includes(units.type);
	if (bytes === 0) {
		if (!units.suffix) return '0';
		if (human) return style === 'unit' ? '0 ' : '0   ';
		const name = unitName(units);
		return `0${style === 'unit' ? name.unit : name.short}`;
	}

	if (!human) {
		const name = unitName(units);
		const precision = name.unit === 'B' || name.unit === 'S' ? 0 : 2;
		const text = fixed(bytes / units.factor, precision);
		return units.suffix ? `${text}${style === 'unit' ? name.unit : name.short}` : text;
	}

	const base = units.type === 'H' || units.type === 'R' ? 1000 : 1024;
	let divisor = base ** 6;
	let index = 0;
	while (index < prefixes.length && bytes < divisor) {
		divisor /= base;
		index++;
	}

	let prefix = '';
	if (index < prefixes.length && (units.type === 'r' || units.type === 'R')) {
		const hundredths = (100 * bytes) / divisor;
		if (Math.floor(hundredths) !== roundHalfEven(hundredths)) prefix = '<';
	}

	if (index === prefixes.length) {
		const unit = base === 1000 ? 'B' : 'b';
		return `${fixed(bytes, 0)}${style === 'unit' ? unit : ' B'}`;
	}

	const letter = base === 1000 ? prefixes[index]!.toUpperCase() : prefixes[index]!;
	const short = base === 1000 ? decimalShort[index]! : binaryShort[index]!;
	// Human-readable sizes always carry their unit, --nosuffix or not.
	return `${prefix}${fixed(bytes / divisor, 2)}${style === 'unit' ? letter : short}`;
}

/** A percentage as reports show it: two decimals, never rounded to 0.00 or 100.00 unless exact. */
export function displayPercent(percent: number): string {
	let rounded = Math.round(percent * 100) / 100;
	if (percent > 0 && rounded === 0) rounded = 0.01;
	if (percent < 100 && rounded === 100) rounded = 99.99;
	return fixed(rounded, 2);
}

export type FieldKind = 'string' | 'number' | 'size' | 'percent' | 'list';

export type ReportField = {
	id: string;
	heading: string;
	kind: FieldKind;
	/** Minimum column width. */
	width: number;
};

export type ReportLayout = {
	json: boolean;
	headings: boolean;
};

function alignRight(kind: FieldKind): boolean {
	return kind === 'number' || kind === 'size';
}

/**
 * The lines of one report (`lv` or `vg` rows), each with the log prefix,
 * joined with newlines and ending with one.
 */
export function renderReport(name: string, fields: ReportField[], rows: string[][], layout: ReportLayout): string {
	const lines: string[] = [];
	if (layout.json) {
		lines.push('{', `    "report": [`, '        {', `            "${name}": [`);
		rows.forEach((row, index) => {
			const pairs = fields.map((field, column) => `"${field.id}":"${(row[column] ?? '').replaceAll('"', '\\"')}"`);
			lines.push(`                {${pairs.join(', ')}}${index < rows.length - 1 ? ',' : ''}`);
		});
		lines.push('            ]', '        }', '    ]', '}');
		return lines.map((line) => `${messagePrefix}${line}\n`).join('');
	}

	if (rows.length === 0) return '';
	const widths = fields.map((field, column) =>
		Math.max(field.width, field.heading.length, ...rows.map((row) => (row[column] ?? '').length)),
	);
	if (layout.headings) {
		lines.push(fields.map((field, column) => field.heading.padEnd(widths[column]!)).join(' '));
	}

	for (const row of rows) {
		const cells = fields.map((field, column) => {
			const value = row[column] ?? '';
			return alignRight(field.kind) ? value.padStart(widths[column]!) : value.padEnd(widths[column]!);
		});
		lines.push(cells.join(' '));
	}

	return lines.map((line) => `${messagePrefix}${line}\n`).join('');
}
