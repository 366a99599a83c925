import path from 'node:path';
import type {Host} from './host.js';
import {followIncludes, whereIn, type Includes} from './include-files.js';
import {alignLike, insertLines, isMarkedLine, markLine, removeMarkedLines, splitSegments, stripEol} from './markers.js';

/**
 * BIND master files as admins write them: `$ORIGIN`, `$TTL`, `$INCLUDE`,
 * `$GENERATE`, `@`, relative and absolute names, blank owners, records
 * spread over lines in parentheses, comments, quoted strings.
 */

export type ZoneToken = {text: string; line: number; start: number; end: number; quoted: boolean};

type ZoneEntry = {tokens: ZoneToken[]; firstLine: number; lastLine: number; blankOwner: boolean};

export type ZoneRecord = {
	/** Absolute owner name, with the trailing dot. */
	owner: string;
	type: string;
	rdata: string[];
	/** 0-based lines the record spans. */
	firstLine: number;
	lastLine: number;
	/** Whether a `$GENERATE` line produced it. */
	generated: boolean;
	tokens: ZoneToken[];
};

/** `origin`: what names in the file are relative to: the one given, else the one in force at the `$INCLUDE`. */
export type ZoneInclude = {file: string; origin: string; line: number};

export type ParsedZone = {
	records: ZoneRecord[];
	includes: ZoneInclude[];
	/** `$ORIGIN` in effect at the end of the file. */
	finalOrigin: string;
	soa?: {record: ZoneRecord; serial: ZoneToken};
};

export class ZoneParseError extends Error {
	constructor(message: string, line?: number) {
		super(line === undefined ? message : `line ${line + 1}: ${message}`);
		this.name = 'ZoneParseError';
	}
}

function tokenize(text: string): ZoneEntry[] {
	const entries: ZoneEntry[] = [];
	let current: ZoneEntry | undefined;
	let depth = 0;
	for (const [lineIndex, segment] of splitSegments(text).entries()) {
		const line = stripEol(segment);
		let token: ZoneToken | undefined;
		let inQuote = false;
		const finish = (end: number) => {
			if (!token) return;
			token.end = end;
			if (!current) {
				current = {tokens: [], firstLine: lineIndex, lastLine: lineIndex, blankOwner: token.start > 0};
			}

			current.tokens.push(token);
			current.lastLine = lineIndex;
			token = undefined;
		};

		for (let index = 0; index < line.length; index++) {
			const char = line[index]!;
			if (inQuote) {
				if (char === '\\') token!.text += line[++index] ?? '';
				else if (char === '"') inQuote = false;
				else token!.text += char;
				continue;
			}

			if (char === ';') break;
			if (char === ' ' || char === '\t' || char === '(' || char === ')') {
				finish(index);
				if (char === '(') depth++;
				if (char === ')') {
					if (depth === 0) throw new ZoneParseError('")" without "("', lineIndex);
					depth--;
				}

				continue;
			}

			token ??= {text: '', line: lineIndex, start: index, end: index, quoted: false};
			if (char === '"') {
				inQuote = true;
				token.quoted = true;
			} else if (char === '\\') {
				token.text += char + (line[++index] ?? '');
			} else {
				token.text += char;
			}
		}

		if (inQuote) throw new ZoneParseError('unterminated quoted string', lineIndex);
		finish(line.length);
		if (depth === 0 && current) {
			entries.push(current);
			current = undefined;
		}
	}

	if (depth > 0 || current) throw new ZoneParseError('"(" never closed', current?.firstLine);
	return entries;
}

export function absoluteName(name: string, origin: string): string {
	if (name === '@') return origin;
	if (name.endsWith('.') && !name.endsWith('\\.')) return name;
	return origin === '.' ? `${name}.` : `${name}.${origin}`;
}

function sameName(a: string, b: string): boolean {
	return a.toLowerCase() === b.toLowerCase();
}

const classes = new Set(['IN', 'CH', 'HS', 'CS', 'NONE', 'ANY']);
const ttlPattern = /^(\d+[smhdw]?)+$/i;

/** Splits `[ttl] [class] type rdata...` (TTL and class in either order). */
function splitRecord(tokens: ZoneToken[], line: number): {type: string; rdata: ZoneToken[]} {
	let index = 0;
	for (let seen = 0; seen < 2 && index < tokens.length; seen++) {
		const text = tokens[index]!.text;
		if (ttlPattern.test(text) || classes.has(text.toUpperCase())) index++;
	}

	const type = tokens[index];
	if (!type) throw new ZoneParseError('record without a type', line);
	return {type: type.text.toUpperCase(), rdata: tokens.slice(index + 1)};
}

/** `$GENERATE` substitution: `$`, `${offset,width,base}`, `\$` for a dollar. */
function generateText(template: string, value: number): string {
	return template.replaceAll(/\\\$|\$\{(-?\d+)(?:,(\d+))?(?:,([doxX]))?\}|\$/g, (match, offset, width, base) => {
		if (match === '\\$') return '$';
		const number = value + Number(offset ?? 0);
		const radix = base === 'o' ? 8 : base === 'x' || base === 'X' ? 16 : 10;
		const digits = number.toString(radix);
		return (base === 'X' ? digits.toUpperCase() : digits).padStart(Number(width ?? 0), '0');
	});
}

function expandGenerate(entry: ZoneEntry, origin: string): ZoneRecord[] {
	const [range, lhs, ...rest] = entry.tokens.slice(1);
	const bounds = range && /^(\d+)-(\d+)(?:\/(\d+))?$/.exec(range.text);
	if (!bounds || !lhs) throw new ZoneParseError('unreadable $GENERATE', entry.firstLine);
	const {type, rdata} = splitRecord(rest, entry.firstLine);
	const [start, stop, step] = [Number(bounds[1]), Number(bounds[2]), Number(bounds[3] ?? 1)];
	const records: ZoneRecord[] = [];
	for (let value = start; value <= stop && step > 0; value += step) {
		records.push({
			owner: absoluteName(generateText(lhs.text, value), origin),
			type,
			rdata: rdata.map((token) => generateText(token.text, value)),
			firstLine: entry.firstLine,
			lastLine: entry.lastLine,
			generated: true,
			tokens: entry.tokens,
		});
	}

	return records;
}

export function parseZone(text: string, zone: string): ParsedZone {
	let origin = absoluteName(zone, '.');
	let lastOwner: string | undefined;
	const parsed: ParsedZone = {records: [], includes: [], finalOrigin: origin};
	for (const entry of tokenize(text)) {
		const [first, ...rest] = entry.tokens;
		if (!first) continue;
		const directive = entry.blankOwner ? undefined : first.text.toUpperCase();
		if (directive === '$ORIGIN') {
			if (!rest[0]) throw new ZoneParseError('$ORIGIN without a name', entry.firstLine);
			origin = absoluteName(rest[0].text, origin);
		} else if (directive === '$INCLUDE') {
			if (!rest[0]) throw new ZoneParseError('$INCLUDE without a file', entry.firstLine);
			const includeOrigin = rest[1] ? absoluteName(rest[1].text, origin) : origin;
			parsed.includes.push({file: rest[0].text, origin: includeOrigin, line: entry.firstLine});
		} else if (directive === '$GENERATE') {
			parsed.records.push(...expandGenerate(entry, origin));
		} else if (directive?.startsWith('$')) {
			// $TTL and friends do not change names.
		} else {
			const owner = entry.blankOwner ? lastOwner : absoluteName(first.text, origin);
			if (!owner) throw new ZoneParseError('record without an owner name', entry.firstLine);
			lastOwner = owner;
			const {type, rdata} = splitRecord(entry.blankOwner ? entry.tokens : rest, entry.firstLine);
			const record: ZoneRecord = {
				owner,
				type,
				rdata: rdata.map((token) => token.text),
				firstLine: entry.firstLine,
				lastLine: entry.lastLine,
				generated: false,
				tokens: entry.tokens,
			};
			parsed.records.push(record);
			if (type === 'SOA' && !parsed.soa) {
				const serial = rdata[2];
				if (!serial || !/^\d+$/.test(serial.text)) throw new ZoneParseError('SOA without a serial', entry.firstLine);
				parsed.soa = {record, serial};
			}
		}
	}

	parsed.finalOrigin = origin;
	return parsed;
}

function isDateSerial(serial: string): boolean {
	const match = /^(\d{4})(\d{2})(\d{2})\d{2}$/.exec(serial);
	if (!match) return false;
	const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
	return year >= 1970 && year < 2200 && month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

/** YYYYMMDDnn serials move to today's 00 (or +1 when already there or later); counters +1. */
export function bumpSerial(serial: string, today: Date = new Date()): string {
	const current = Number(serial);
	let next = current + 1;
	if (isDateSerial(serial)) {
		const date = `${today.getFullYear()}${String(today.getMonth() + 1).padStart(2, '0')}${String(today.getDate()).padStart(2, '0')}`;
		next = Math.max(next, Number(`${date}00`));
	}

	if (next > 0xff_ff_ff_ff) throw new Error(`serial ${serial} cannot grow past 4294967295`);
	return String(next);
}

function replaceToken(text: string, token: ZoneToken, replacement: string): string {
	const segments = splitSegments(text);
	const segment = segments[token.line]!;
	segments[token.line] = segment.slice(0, token.start) + replacement + segment.slice(token.end);
	return segments.join('');
}

function describe(record: ZoneRecord, lines: string[], file?: string): string {
	const line = whereIn(file, record.firstLine);
	const where = record.generated ? `${line} ($GENERATE)` : line;
	const shown = record.generated
		? `${record.owner} ${record.type} ${record.rdata.join(' ')}`
		: (lines[record.firstLine] ?? '').replace(/\s*;.*$/, '').trim();
	return `${where}: ${shown}`;
}

export type ZoneRecordRequest = {
	/** Zone origin, without the trailing dot: `farm`. */
	zone: string;
	/** Name relative to the zone (`gallifrey-dev.xivo.vm`), or absolute with a trailing dot. */
	record: string;
	ip: string;
	farm: string;
};

export type ZoneState = {
	/** `ours`: added by this farm; `manual`: the same A record, written by someone else. */
	status: 'absent' | 'ours' | 'manual';
	conflicts: string[];
	/** The same conflicts, each with the setting it concerns (the preflight names it). */
	concerns: Array<{setting: 'record' | 'ip' | 'zoneFile'; text: string}>;
	notes: string[];
	serial?: string;
};

/**
 * What the zone (and, when given, the files it includes) says about the
 * record: already there, in the way, or free. Without `included`,
 * `$INCLUDE`s are only noted.
 */
export function inspectZone(text: string, request: ZoneRecordRequest, included?: Includes): ZoneState {
	const parsed = parseZone(text, request.zone);
	const target = absoluteName(request.record, absoluteName(request.zone, '.'));
	const concerns: ZoneState['concerns'] = [];
	const conflict = (setting: ZoneState['concerns'][number]['setting'], text: string) => concerns.push({setting, text});
	let status: ZoneState['status'] = 'absent';
	const sources = [
		{file: undefined, text, records: parsed.records},
		...(included?.files ?? []).map((file) => ({
			...file,
			records: parseZone(file.text, file.origin ?? request.zone).records,
		})),
	];
	for (const source of sources) {
		const lines = splitSegments(source.text).map((segment) => stripEol(segment));
		for (const record of source.records) {
			const named = sameName(record.owner, target);
			const holdsIp = record.type === 'A' && record.rdata[0] === request.ip;
			if (named && holdsIp) {
				// farmclone writes only in the zone file itself: a record elsewhere is never its own.
				const ours =
					source.file === undefined &&
					!record.generated &&
					isMarkedLine(lines[record.firstLine] ?? '', request.farm, ';');
				if (ours || status === 'absent') status = ours ? 'ours' : 'manual';
			} else if (named) {
				conflict('record', `${describe(record, lines, source.file)} already uses the name ${target}`);
			} else if (holdsIp) {
				conflict('ip', `${describe(record, lines, source.file)} already holds ${request.ip}`);
			}
		}
	}

	const notes =
		included?.notes ??
		parsed.includes.map(
			(include) =>
				`line ${include.line + 1}: $INCLUDE ${include.file} is not read by farmclone; records there are not checked (named-checkzone reads it)`,
		);
	if (!parsed.soa) conflict('zoneFile', 'no SOA record in this file: its serial cannot be bumped');
	const conflicts = concerns.map((concern) => concern.text);
	return {status, conflicts, concerns, notes, serial: parsed.soa?.serial.text};
}

/**
 * The files the zone `$INCLUDE`s, nested ones too, read only, each with the
 * origin its names take. named opens a relative path from its `directory`
 * (named.conf options), which farmclone does not know: it tries the zone
 * file's directory, and only notes the `$INCLUDE` when nothing is there.
 */
export async function readZoneIncludes(
	host: Pick<Host, 'readFileIfExists'>,
	zoneFile: string,
	text: string,
	zone: string,
): Promise<Includes> {
	const root = {file: zoneFile, text, origin: absoluteName(zone, '.')};
	return followIncludes(host, root, (file) =>
		parseZone(file.text, file.origin ?? root.origin).includes.map((include) => ({
			path: path.resolve(path.dirname(zoneFile), include.file),
			line: include.line,
			label: `$INCLUDE ${include.file}`,
			origin: include.origin,
			missingNote: path.isAbsolute(include.file)
				? undefined
				: `${whereIn(file.file === zoneFile ? undefined : file.file, include.line)}: $INCLUDE ${include.file} is not read by farmclone (not found next to ${zoneFile}); records there are not checked (named-checkzone reads it)`,
		})),
	);
}

export class ZoneConflictError extends Error {
	constructor(readonly conflicts: string[]) {
		super(conflicts.join('\n'));
		this.name = 'ZoneConflictError';
	}
}

export type ZoneEdit = {text: string; serialBefore: string; serialAfter: string; line?: string};

/**
 * Append the A record, marked `; farmclone:<farm>`, and bump the serial.
 * Unchanged text when the record is already there; throws on conflicts.
 */
export function addZoneRecord(
	text: string,
	request: ZoneRecordRequest,
	today: Date = new Date(),
	included?: Includes,
): ZoneEdit {
	const state = inspectZone(text, request, included);
	if (state.conflicts.length > 0) throw new ZoneConflictError(state.conflicts);
	const parsed = parseZone(text, request.zone);
	const serialBefore = parsed.soa!.serial.text;
	if (state.status !== 'absent') return {text, serialBefore, serialAfter: serialBefore};

	const target = absoluteName(request.record, absoluteName(request.zone, '.'));
	// Names are written relative to the origin in force at the end of the file, as the admin's own lines are.
	const suffix = `.${parsed.finalOrigin}`;
	const name =
		target.toLowerCase().endsWith(suffix.toLowerCase()) && parsed.finalOrigin !== '.'
			? target.slice(0, -suffix.length)
			: target;
	const lines = splitSegments(text).map((segment) => stripEol(segment));
	const sample = parsed.records
		.filter((record) => record.type === 'A' && !record.generated && record.tokens[0]?.start === 0)
		.at(-1);
	const line = markLine(alignLike(sample && lines[sample.firstLine], [name, 'IN', 'A', request.ip]), request.farm, ';');
	const serialAfter = bumpSerial(serialBefore, today);
	const bumped = replaceToken(text, parsed.soa!.serial, serialAfter);
	return {text: insertLines(bumped, lines.length, [line]), serialBefore, serialAfter, line};
}

/**
 * Remove this farm's marked lines; the serial is bumped again, because
 * secondaries never take a lower one. `restoreSerial` puts an earlier serial
 * back instead: only for a serial no server ever served.
 */
export function removeZoneRecord(
	text: string,
	request: Pick<ZoneRecordRequest, 'zone' | 'farm'>,
	today: Date = new Date(),
	restoreSerial?: string,
): ZoneEdit & {removed: string[]} {
	const {text: without, removed} = removeMarkedLines(text, request.farm, ';');
	const parsed = parseZone(without, request.zone);
	if (!parsed.soa) throw new ZoneParseError('no SOA record in this file: its serial cannot be bumped');
	const serialBefore = parsed.soa.serial.text;
	if (removed.length === 0) return {text, serialBefore, serialAfter: serialBefore, removed};
	const serialAfter = restoreSerial ?? bumpSerial(serialBefore, today);
	return {text: replaceToken(without, parsed.soa.serial, serialAfter), serialBefore, serialAfter, removed};
}
