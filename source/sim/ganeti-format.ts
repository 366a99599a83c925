/**
 * Ganeti's client-side output formats: tables (`gnt-* list`), the YAML-like
 * info blocks (`PrintGenericInfo`), job feedback lines and error messages.
 */

/** Ganeti's error classes as the CLI prints them (`cli.FormatError`). */
export class GanetiError extends Error {
	constructor(
		message: string,
		readonly kind: 'prereq' | 'exec' | 'resolver' = 'prereq',
		/** errors.ECODE_*: wrong_input, already_exists, unknown_entity, resolver_error, wrong_state, ... */
		readonly code?: string,
	) {
		super(message);
		this.name = 'GanetiError';
	}

	format(): string {
		if (this.kind === 'exec') return `Failure: command execution error:\n${this.message}`;
		if (this.code) {
			return `Failure: prerequisites not met for this operation:\nerror type: ${this.code}, error details:\n${this.message}`;
		}

		return `Failure: prerequisites not met for this operation:\n${this.message}`;
	}
}

/** optparse's refusals: usage, then the error, exit code 2. */
export class UsageError extends Error {
	constructor(
		message: string,
		readonly usage: string,
	) {
		super(message);
		this.name = 'UsageError';
	}
}

export type OptionSpec = {
	names: string[];
	key: string;
	/** Takes a value (`--opt=V`, `--opt V`, `-oV`, `-o V`). */
	value?: boolean;
	/** May be given several times: the values are collected. */
	multiple?: boolean;
};

export type ParsedOptions = {options: Map<string, string | boolean | string[]>; args: string[]};

/** optparse with interspersed arguments disabled, as Ganeti's CLI uses it: options end at the first argument. */
export function parseOptions(argv: string[], specs: OptionSpec[], usage: string): ParsedOptions {
	const options = new Map<string, string | boolean | string[]>();
	const args: string[] = [];
	const byName = new Map(specs.flatMap((spec) => spec.names.map((name) => [name, spec] as const)));
	const set = (spec: OptionSpec, value: string | boolean) => {
		if (spec.multiple)
			options.set(spec.key, [...((options.get(spec.key) as string[] | undefined) ?? []), String(value)]);
		else options.set(spec.key, value);
	};

	for (let index = 0; index < argv.length; index++) {
		const argument = argv[index]!;
		if (argument === '--') {
			args.push(...argv.slice(index + 1));
			break;
		}

		if (!argument.startsWith('-') || argument === '-') {
			args.push(...argv.slice(index));
			break;
		}

		let name = argument;
		let inline: string | undefined;
		if (argument.startsWith('--')) {
			const equals = argument.indexOf('=');
			if (equals !== -1) {
				name = argument.slice(0, equals);
				inline = argument.slice(equals + 1);
			}
		} else if (argument.length > 2) {
			name = argument.slice(0, 2);
			inline = argument.slice(2);
		}

		const spec = byName.get(name);
		if (!spec) throw new UsageError(`no such option: ${name}`, usage);
		if (!spec.value) {
			if (inline !== undefined && argument.startsWith('--')) {
				throw new UsageError(`${name} option does not take a value`, usage);
			}

			set(spec, true);
			continue;
		}

		const value = inline ?? argv[++index];
		if (value === undefined) throw new UsageError(`${name} option requires 1 argument`, usage);
		set(spec, value);
	}

	return {options, args};
}

/** `key=value,key=value` as Ganeti's `ht` option types read them; a bare `key` is true, `no_key` false. */
export function parseKeyValues(text: string): Map<string, string> {
	const result = new Map<string, string>();
	for (const item of text.split(',')) {
		if (!item) continue;
		const equals = item.indexOf('=');
		if (equals === -1) {
			if (item.startsWith('no_')) result.set(item.slice(3), 'False');
			else result.set(item, 'True');
		} else {
			result.set(item.slice(0, equals), item.slice(equals + 1));
		}
	}

	return result;
}

/** `0:mac=..,ip=..` (--net, --disk): the index and its parameters. */
export function parseIdentKeyValues(text: string, option: string): {ident: string; params: Map<string, string>} {
	const colon = text.indexOf(':');
	const ident = colon === -1 ? text : text.slice(0, colon);
	if (!ident) throw new GanetiError(`Invalid ${option} specification: ${text}`, 'prereq', 'wrong_input');
	return {ident, params: parseKeyValues(colon === -1 ? '' : text.slice(colon + 1))};
}

/** Python's `str()` of a value as Ganeti's CLI prints QFT_OTHER fields. */
export function pythonRepr(value: unknown): string {
	if (value === null || value === undefined) return 'None';
	if (typeof value === 'boolean') return value ? 'True' : 'False';
	if (typeof value === 'string') return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
	if (Array.isArray(value)) return `[${value.map((item) => pythonRepr(item)).join(', ')}]`;
	return String(value);
}

export function pythonStr(value: unknown): string {
	if (value === null || value === undefined) return 'None';
	if (typeof value === 'boolean') return value ? 'True' : 'False';
	if (typeof value === 'string') return value;
	return pythonRepr(value);
}

export type Column = {title: string; alignRight: boolean};

/** `cli.FormatTable`: padded columns (the last one unpadded unless right-aligned), or joined by the separator. */
export function formatTable(rows: string[][], columns: Column[], header: boolean, separator?: string): string[] {
	const data = header ? [columns.map((column) => column.title), ...rows] : rows;
	if (separator !== undefined) return data.map((row) => row.join(separator));
	const widths = columns.map((_, index) => Math.max(0, ...data.map((row) => row[index]!.length)));
	if (columns.length > 0 && !columns.at(-1)!.alignRight) widths[widths.length - 1] = 0;
	return data.map((row) =>
		row
			.map((cell, index) => (columns[index]!.alignRight ? cell.padStart(widths[index]!) : cell.padEnd(widths[index]!)))
			.join(' '),
	);
}

/** An ordered mapping, as Ganeti writes it with a list of (key, value) tuples. */
export type InfoPairs = {pairs: Array<[string, InfoValue]>};
/** A dict: printed with sorted keys. */
export type InfoDict = {dict: Record<string, InfoValue>};
export type InfoValue = string | InfoPairs | InfoDict | InfoValue[];

function isPairs(value: InfoValue): value is InfoPairs {
	return typeof value === 'object' && !Array.isArray(value) && 'pairs' in value;
}

function isDict(value: InfoValue): value is InfoDict {
	return typeof value === 'object' && !Array.isArray(value) && 'dict' in value;
}

/** `cli.PrintGenericInfo`'s serializer. */
export function formatGenericInfo(data: InfoValue): string {
	const indent = '  ';
	let out = '';
	const serialize = (value: InfoValue, level: number, afterKey: boolean) => {
		const entries = isPairs(value)
			? value.pairs
			: isDict(value)
				? Object.keys(value.dict)
						.sort()
						.map((key) => [key, value.dict[key]!] as [string, InfoValue])
				: undefined;
		if (entries) {
			if (entries.length === 0) {
				out += '\n';
				return;
			}

			let doIndent = afterKey;
			if (afterKey) out += '\n';
			for (const [key, item] of entries) {
				if (doIndent) out += indent.repeat(level);
				doIndent = true;
				out += `${key}: `;
				serialize(item, level + 1, true);
			}
		} else if (Array.isArray(value)) {
			if (value.length === 0) {
				out += '\n';
				return;
			}

			let doIndent = afterKey;
			if (afterKey) out += '\n';
			for (const item of value) {
				if (doIndent) out += indent.repeat(level);
				doIndent = true;
				out += '- ';
				serialize(item, level + 1, false);
			}
		} else {
			out += `${value}\n`;
		}
	};

	serialize(data, 0, false);
	return `${out.replace(/\n+$/, '')}\n`;
}

const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (value: number) => String(value).padStart(2, '0');

/** Python's `time.ctime()`, which stamps job feedback lines. */
export function ctime(date = new Date()): string {
	return `${days[date.getDay()]} ${months[date.getMonth()]} ${String(date.getDate()).padStart(2, ' ')} ${two(
		date.getHours(),
	)}:${two(date.getMinutes())}:${two(date.getSeconds())} ${date.getFullYear()}`;
}

/** `utils.FormatTime`: local time, `%F %T`. */
export function formatTime(seconds: number): string {
	const date = new Date(seconds * 1000);
	return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(
		date.getMinutes(),
	)}:${two(date.getSeconds())}`;
}

/** A job's feedback line, as `gnt-*` prints them while it waits for the job. */
export function feedback(message: string): string {
	return `${ctime()} ${message}\n`;
}
