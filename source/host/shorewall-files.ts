import path from 'node:path';
import type {FarmSettings} from '../settings/schema.js';
import type {Host} from './host.js';
import {followIncludes, whereIn, type Includes} from './include-files.js';
import {alignLike, insertLines, isMarkedLine, markLine, removeMarkedLines, splitLines} from './markers.js';

/**
 * Shorewall `params` (shell assignments) and `rules` (columns, `?SECTION`,
 * `?COMMENT`, `?IF`, continuation lines, embedded scripts, the old
 * `#LAST LINE` trailer).
 */

export type ShorewallParam = {name: string; value: string; line: number};

export function parseParams(text: string): ShorewallParam[] {
	const params: ShorewallParam[] = [];
	for (const [line, content] of splitLines(text).entries()) {
		const match = /^\s*(?:export\s+)?([A-Za-z_]\w*)=(.*)$/.exec(content);
		if (!match) continue;
		const raw = match[2]!;
		const quoted = /^(["'])(.*?)\1/.exec(raw);
		params.push({name: match[1]!, value: quoted ? quoted[2]! : (/^[^\s#;]*/.exec(raw)?.[0] ?? ''), line});
	}

	return params;
}

export type ShorewallRule = {
	columns: string[];
	/** 0-based first and last physical lines (continuations). */
	line: number;
	lastLine: number;
	section?: string;
	/** `?COMMENT` text in force for the rule. */
	comment: string;
};

type Boundary = {index: number; section?: string; comment: string; free: boolean};

export type ParsedRules = {
	rules: ShorewallRule[];
	sections: Array<{name: string; line: number}>;
	/** Where a line could be inserted (before line `index`), with the state a line there would get. */
	boundaries: Boundary[];
	includes: Array<{file: string; line: number}>;
	/** Line of `#LAST LINE -- ADD YOUR ENTRIES BEFORE THIS ONE`, when the file has it. */
	lastLine?: number;
};

const lastLinePattern = /^#\s*LAST LINE/i;

export function parseRules(text: string): ParsedRules {
	const lines = splitLines(text);
	const parsed: ParsedRules = {rules: [], sections: [], boundaries: [], includes: []};
	let section: string | undefined;
	let comment = '';
	let ifDepth = 0;
	let embedded = false;
	let pending: {text: string; line: number} | undefined;
	for (const [index, raw] of lines.entries()) {
		const free = ifDepth === 0 && !embedded && !pending;
		parsed.boundaries.push({index, section, comment, free});
		if (lastLinePattern.test(raw) && parsed.lastLine === undefined) parsed.lastLine = index;
		if (embedded) {
			if (/^\s*\??END\s+(PERL|SHELL)\b/i.test(raw)) embedded = false;
			continue;
		}

		if (/^\s*\??BEGIN\s+(PERL|SHELL)\b/i.test(raw)) {
			embedded = true;
			continue;
		}

		const directive = /^\s*\?(IF|ELSIF|ELSE|ENDIF|COMMENT)\b\s*(.*)$/i.exec(raw) ?? /^\s*(COMMENT)\b\s*(.*)$/.exec(raw);
		if (directive && !pending) {
			const keyword = directive[1]!.toUpperCase();
			if (keyword === 'IF') ifDepth++;
			if (keyword === 'ENDIF') ifDepth = Math.max(0, ifDepth - 1);
			// Shorewall takes the whole rest of the line, a `#` included, as the comment.
			if (keyword === 'COMMENT') comment = directive[2]!.trimEnd();
			continue;
		}

		const stripped = raw.replace(/\s*#.*$/, '');
		const sectionMatch = /^\s*\??SECTION\s+(\S+)/i.exec(stripped);
		if (sectionMatch && !pending) {
			section = sectionMatch[1]!.toUpperCase();
			parsed.sections.push({name: section, line: index});
			continue;
		}

		if (stripped.endsWith('\\')) {
			pending = {text: (pending?.text ?? '') + stripped.slice(0, -1) + ' ', line: pending?.line ?? index};
			continue;
		}

		const logical = (pending?.text ?? '') + stripped;
		const first = pending?.line ?? index;
		pending = undefined;
		const columns = logical.replace(/;.*$/, '').trim().split(/\s+/).filter(Boolean);
		if (/^\??INCLUDE$/i.test(columns[0] ?? '')) parsed.includes.push({file: columns[1] ?? '', line: first});
		if (columns.length === 0 || /^(\??INCLUDE|\?)/i.test(columns[0]!)) continue;
		parsed.rules.push({columns, line: first, lastLine: index, section, comment});
	}

	parsed.boundaries.push({index: lines.length, section, comment, free: ifDepth === 0 && !embedded && !pending});
	return parsed;
}

export type ShorewallRequest = {
	param: string;
	ip: string;
	sourceZone: string;
	destZone: string;
	sshPort: number;
	originalDest: string;
	farm: string;
	/** Port of the clone's sshd. */
	vmPort?: number;
};

export function isValidParamName(name: string): boolean {
	return /^[A-Za-z_]\w*$/.test(name);
}

/** The DNAT rule's columns. */
export function ruleColumns(request: ShorewallRequest): string[] {
	return [
		'DNAT',
		request.sourceZone,
		`${request.destZone}:$${request.param}:${request.vmPort ?? 22}`,
		'tcp',
		String(request.sshPort),
		'-',
		request.originalDest,
	];
}

function expand(value: string, params: Map<string, string>): string {
	return value.replaceAll(/\$\{?([A-Za-z_]\w*)\}?/g, (match, name: string) => params.get(name) ?? match);
}

/** `22,80`, `22000:22010` (or `-`), `!22`: does the list hold `port`? */
export function portListHas(list: string, port: number): boolean {
	const negated = list.startsWith('!');
	const hit = list
		.replace(/^!/, '')
		.split(',')
		.some((item) => {
			const [low, high] = item.split(/[:-]/).map(Number);
			return low !== undefined && (high === undefined ? low === port : low <= port && port <= high);
		});
	return negated ? !hit : hit;
}

/** `DNAT`, `DNAT-`, `DNAT:info`, `SSH(DNAT)`, `SSH/DNAT` -> `DNAT`. */
function baseAction(action: string): string {
	const inner = /^\w+[(/](\w+)\)?/.exec(action)?.[1] ?? action;
	return inner
		.replace(/[:].*$/, '')
		.replace(/[-+!]$/, '')
		.toUpperCase();
}

export type ShorewallState = {
	param: 'absent' | 'ours' | 'manual';
	rule: 'absent' | 'ours' | 'manual';
	conflicts: string[];
	/** The same conflicts, each with the setting it concerns (the preflight names it). */
	concerns: Array<{setting: 'sshPort' | 'shorewallParam' | 'shorewallDir'; text: string}>;
	notes: string[];
};

/** Without `included`, INCLUDEs in rules are only noted. */
export function inspectShorewall(
	paramsText: string,
	rulesText: string,
	request: ShorewallRequest,
	included?: Includes,
): ShorewallState {
	const state: ShorewallState = {param: 'absent', rule: 'absent', conflicts: [], concerns: [], notes: []};
	const conflict = (setting: ShorewallState['concerns'][number]['setting'], text: string) => {
		state.concerns.push({setting, text});
		state.conflicts.push(text);
	};
	if (!isValidParamName(request.param)) {
		conflict('shorewallDir', `"${request.param}" is not a valid shell variable name for params`);
		return state;
	}

	const params = parseParams(paramsText);
	const paramLines = splitLines(paramsText);
	const values = new Map(params.map((param) => [param.name, param.value]));
	for (const param of params) {
		const where = `params line ${param.line + 1}`;
		if (param.name === request.param && param.value === request.ip) {
			if (state.param !== 'ours') state.param = isMarkedLine(paramLines[param.line]!, request.farm) ? 'ours' : 'manual';
		} else if (param.name === request.param) {
			conflict('shorewallParam', `${where}: ${param.name} is already set to ${param.value}`);
		} else if (param.value === request.ip) {
			state.notes.push(`${where}: ${param.name} also holds ${request.ip}`);
		}
	}

	for (const name of request.originalDest.matchAll(/\$\{?([A-Za-z_]\w*)\}?/g)) {
		if (!values.has(name[1]!)) state.notes.push(`ORIGINAL DEST uses $${name[1]}, which params does not set`);
	}

	values.set(request.param, request.ip);
	const ours = ruleColumns(request).map((column) => expand(column, values));
	if (!included) {
		for (const include of parseRules(rulesText).includes) {
			state.notes.push(
				`rules line ${include.line + 1}: INCLUDE ${include.file} is not read by farmclone; its rules are not checked`,
			);
		}
	}

	for (const source of [{file: undefined, text: rulesText}, ...(included?.files ?? [])]) {
		const rulesLines = splitLines(source.text);
		for (const rule of parseRules(source.text).rules) {
			const [action = '', ruleSource = '', dest = '', proto = '-', ports = '-', , originalDest = '-'] = rule.columns;
			if (!['DNAT', 'REDIRECT'].includes(baseAction(action))) continue;
			const tcp =
				['-', 'all'].includes(proto) || proto.split(',').some((item) => ['tcp', '6'].includes(item.toLowerCase()));
			const port = ports === '-' || portListHas(ports, request.sshPort);
			const theirDestinations = expand(originalDest, values).split(',');
			const sameDestination =
				originalDest === '-' ||
				ours[6] === '-' ||
				theirDestinations.includes(ours[6]!) ||
				originalDest === request.originalDest;
			if (!tcp || !port || !sameDestination) continue;
			const identical =
				baseAction(action) === 'DNAT' &&
				ruleSource === ours[1] &&
				expand(dest, values) === ours[2] &&
				proto.toLowerCase() === 'tcp' &&
				ports === ours[4] &&
				expand(originalDest, values) === ours[6];
			// farmclone writes only in rules itself: a rule in an included file is never its own.
			const marked = source.file === undefined && isMarkedLine(rulesLines[rule.line]!, request.farm);
			if (identical) {
				if (state.rule !== 'ours') state.rule = marked ? 'ours' : 'manual';
			} else {
				const where = source.file === undefined ? `rules line ${rule.line + 1}` : whereIn(source.file, rule.line);
				conflict('sshPort', `${where}: port ${request.sshPort} is already forwarded (${rule.columns.join(' ')})`);
			}
		}
	}

	state.notes.push(...(included?.notes ?? []));
	return state;
}

export class ShorewallConflictError extends Error {
	constructor(readonly conflicts: string[]) {
		super(conflicts.join('\n'));
		this.name = 'ShorewallConflictError';
	}
}

function beforeLastLine(text: string): number {
	const lines = splitLines(text);
	const index = lines.findIndex((line) => lastLinePattern.test(line));
	return index < 0 ? lines.length : index;
}

/**
 * Where the rule goes: in `?SECTION NEW` when the file has sections, after
 * its last rule, at a point where no `?COMMENT` is in force (so the rule
 * neither takes someone else's comment nor ends it) and outside `?IF` blocks.
 */
function ruleInsertion(rulesText: string): {index: number; addSection: boolean; notes: string[]} {
	const parsed = parseRules(rulesText);
	const end = parsed.lastLine ?? splitLines(rulesText).length;
	const hasSections = parsed.sections.length > 0;
	const sectionStart = parsed.sections.find((section) => section.name === 'NEW')?.line;
	if (hasSections && sectionStart === undefined) return {index: end, addSection: true, notes: []};
	const regionStart = sectionStart === undefined ? 0 : sectionStart + 1;
	const regionEnd = Math.min(end, parsed.sections.find((section) => section.line >= regionStart)?.line ?? end);
	const lastRule = parsed.rules.filter((rule) => rule.line >= regionStart && rule.lastLine < regionEnd).at(-1);
	const preferred = lastRule ? lastRule.lastLine + 1 : regionEnd;
	const candidates = parsed.boundaries.filter(
		(boundary) => boundary.index >= regionStart && boundary.index <= regionEnd && boundary.free,
	);
	const uncommented = candidates.filter((boundary) => boundary.comment === '');
	// After the section's last rule if a point there is free of ?COMMENT, else the latest such point before it.
	const choice =
		uncommented.find((boundary) => boundary.index >= preferred) ??
		uncommented.filter((boundary) => boundary.index < preferred).at(-1) ??
		candidates.find((boundary) => boundary.index >= preferred) ??
		candidates.at(-1);
	if (!choice) throw new ShorewallConflictError(['no place in rules outside ?IF blocks and continuation lines']);
	const notes =
		choice.comment === ''
			? []
			: [`the rule takes the ?COMMENT "${choice.comment}" that is in force all over the section`];
	return {index: choice.index, addSection: false, notes};
}

export type ShorewallEdit = {params: string; rules: string; added: string[]; notes: string[]};

/** Add the param and the DNAT rule, each marked; unchanged parts stay as they are; throws on conflicts. */
export function addShorewallEntries(
	paramsText: string,
	rulesText: string,
	request: ShorewallRequest,
	included?: Includes,
): ShorewallEdit {
	const state = inspectShorewall(paramsText, rulesText, request, included);
	if (state.conflicts.length > 0) throw new ShorewallConflictError(state.conflicts);
	const edit: ShorewallEdit = {params: paramsText, rules: rulesText, added: [], notes: [...state.notes]};
	if (state.param === 'absent') {
		const line = markLine(`${request.param}=${request.ip}`, request.farm);
		edit.params = insertLines(paramsText, beforeLastLine(paramsText), [line]);
		edit.added.push(line);
	}

	if (state.rule === 'absent') {
		const {index, addSection, notes} = ruleInsertion(rulesText);
		const parsed = parseRules(rulesText);
		const lines = splitLines(rulesText);
		const sample = parsed.rules.filter((rule) => rule.line < index).at(-1) ?? parsed.rules[0];
		const rule = markLine(alignLike(sample && lines[sample.line], ruleColumns(request)), request.farm);
		const added = addSection ? [markLine('?SECTION NEW', request.farm), rule] : [rule];
		edit.rules = insertLines(rulesText, index, added);
		edit.added.push(...added);
		edit.notes.push(...notes);
	}

	return edit;
}

export function removeShorewallEntries(
	paramsText: string,
	rulesText: string,
	farm: string,
): {params: string; rules: string; removed: string[]} {
	const params = removeMarkedLines(paramsText, farm);
	const rules = removeMarkedLines(rulesText, farm);
	return {params: params.text, rules: rules.text, removed: [...params.removed, ...rules.removed]};
}

/**
 * The files rules INCLUDEs (`INCLUDE` or `?INCLUDE`), nested ones too, read
 * only. Shorewall looks a relative name up in its configuration directory.
 */
export async function readShorewallIncludes(
	host: Pick<Host, 'readFileIfExists'>,
	shorewallDir: string,
	rulesText: string,
): Promise<Includes> {
	return followIncludes(host, {file: path.join(shorewallDir, 'rules'), text: rulesText}, (file) =>
		parseRules(file.text).includes.map((include) => ({
			path: path.resolve(shorewallDir, include.file),
			line: include.line,
			label: `INCLUDE ${include.file}`,
		})),
	);
}

/** The DNAT rule and param this farm asks for, from its settings. */
export function ruleRequest(settings: FarmSettings): ShorewallRequest {
	return {
		param: settings.shorewallParam,
		ip: settings.ip,
		sourceZone: settings.sourceZone,
		destZone: settings.destZone,
		sshPort: settings.sshPort,
		originalDest: settings.originalDest,
		farm: settings.name,
	};
}

/** The compiler's ERROR lines; its last lines when it names none. */
export function shorewallErrors(output: string): string {
	const lines = output.split('\n').filter((line) => line.trim() !== '');
	const problems = lines.filter((line) => /\b(ERROR|FATAL)\b/.test(line));
	return (problems.length > 0 ? problems : lines.slice(-8)).join('\n').trim();
}
