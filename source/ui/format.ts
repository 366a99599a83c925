import {stripVTControlCharacters} from 'node:util';
import {clockTime} from '../host/clock.js';
import {formatBytes as formatSize} from '../host/lvm.js';
import {shellQuote} from '../host/self.js';
import type {CopyProgress, Plan} from '../stages/types.js';

/** Sizes in the copy's progress: `512 MiB`, `1.0 GiB`. */
export function formatBytes(bytes: number): string {
	return formatSize(bytes, 'progress');
}

export function formatRate(bytesPerSecond: number): string {
	return bytesPerSecond > 0 ? `${formatBytes(bytesPerSecond)}/s` : '–/s';
}

/** Compact time left: `3s`, `4m05s`, `1h02m`. */
export function formatEta(seconds: number | undefined): string {
	if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '–';
	const whole = Math.ceil(seconds);
	if (whole < 60) return `${whole}s`;
	const minutes = Math.floor(whole / 60);
	if (minutes < 60) return `${minutes}m${String(whole % 60).padStart(2, '0')}s`;
	return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

const twoDigits = (value: number) => String(value).padStart(2, '0');

/** Made once: each new Intl.DateTimeFormat costs milliseconds, and every command's log line asks for the zone. */
let zoneFormat: Intl.DateTimeFormat | undefined;

/**
 * A wall-clock time on this host, `09:50:25 UTC`: always 24-hour and zero
 * padded, whatever locale data this Node was built with (`toLocaleTimeString`
 * falls back to `9:50:25` where en-GB is missing).
 */
export function formatClock(at: string | number): string {
	const date = new Date(at);
	zoneFormat ??= new Intl.DateTimeFormat('en-US', {timeZoneName: 'short'});
	const zone = zoneFormat.formatToParts(date).find((part) => part.type === 'timeZoneName')?.value;
	const clock = clockTime(date.getTime());
	return zone ? `${clock} ${zone}` : clock;
}

/** A day and a time on this host, `2026-12-03 09:50:25 UTC`: the day, then the one clock format. */
export function formatWhen(at: string | number): string {
	const date = new Date(at);
	if (Number.isNaN(date.getTime())) return String(at);
	return `${date.getFullYear()}-${twoDigits(date.getMonth() + 1)}-${twoDigits(date.getDate())} ${formatClock(at)}`;
}

/** How long a stage took: `2.1 s`, `3 min 12 s`, `1 h 02 min`. */
export function formatDuration(seconds: number): string {
	if (seconds < 60) return `${seconds.toFixed(1)} s`;
	const whole = Math.round(seconds);
	const minutes = Math.floor(whole / 60);
	if (minutes < 60) return `${minutes} min ${whole % 60} s`;
	return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** Whole percent, rounded down so that 100% means every byte is there. */
export function progressPercent(progress: Pick<CopyProgress, 'bytes' | 'total'>): number {
	if (progress.total <= 0) return 0;
	return Math.min(100, Math.floor((progress.bytes * 100) / progress.total));
}

/** `512 MiB / 1.0 GiB 48% 180 MiB/s ETA 3s`, plus the snapshot fill when known. */
export function progressSummary(progress: CopyProgress, separator = ' '): string {
	const parts = [
		`${formatBytes(progress.bytes)} / ${formatBytes(progress.total)}`,
		`${progressPercent(progress)}%`,
		formatRate(progress.rate),
		`ETA ${formatEta(progress.etaSeconds)}`,
	];
	if (progress.snapshotPercent !== undefined) parts.push(`snapshot ${Math.round(progress.snapshotPercent)}%`);
	return parts.join(separator);
}

/** An argv as an admin would type it, so a logged command can be pasted into a shell. */
export function formatArgv(argv: readonly string[]): string {
	return argv.map(shellQuote).join(' ');
}

/**
 * One terminal line of text: tabs expanded to the next multiple of 8 and other
 * control characters (dd's carriage returns, escape sequences in command
 * output) removed, so that the width the screen reserves is the width shown.
 */
export function sanitizeLine(line: string): string {
	let result = '';
	for (const character of stripVTControlCharacters(line)) {
		if (character === '\t') result += ' '.repeat(8 - (result.length % 8));
		else if (character >= ' ' && character !== '\u007F') result += character;
	}

	return result;
}

/** The last `count` non-empty lines of a command's output; `\r` counts as a line end (dd's progress). */
export function outputTail(output: string, count: number): string[] {
	if (count <= 0) return [];
	return output
		.split(/\r\n|\r|\n/)
		.map(sanitizeLine)
		.filter((line) => line.trim() !== '')
		.slice(-count);
}

/**
 * The last `count` non-empty lines of a command's output, and how many were
 * cut before them; `\r` counts as a line end (dd's progress).
 */
export function cutOutput(output: string, count: number): {lines: string[]; hidden: number} {
	const all = outputTail(output, Number.MAX_SAFE_INTEGER);
	const lines = count > 0 ? all.slice(-count) : [];
	return {lines, hidden: all.length - lines.length};
}

/** What a cut says: how much was cut and where the whole output is. */
export function cutMarker(hidden: number, log: string | undefined): string {
	const lines = `${hidden} more line${hidden === 1 ? '' : 's'}`;
	return log ? `… ${lines}: full output in ${log}` : `… ${lines} not shown`;
}

/** A command's tail for the log: at most `count` lines, after a marker when lines were cut. */
export function commandOutputLines(output: string, count: number, log: string | undefined): string[] {
	const {lines, hidden} = cutOutput(output, count);
	return hidden > 0 ? [cutMarker(hidden, log), ...lines] : lines;
}

/**
 * Whether two command records print the same log line (same argv, same exit
 * code): polls such as lvs during the copy are then folded into one line.
 */
export function sameCommandLine(
	a: {argv: readonly string[]; exitCode: number},
	b: {argv: readonly string[]; exitCode: number},
): boolean {
	return (
		a.exitCode === b.exitCode && a.argv.length === b.argv.length && a.argv.every((arg, index) => arg === b.argv[index])
	);
}

/** ` (×3)` after a line that stands for 3 identical commands in a row; nothing for one. */
export function repeatSuffix(count: number | undefined): string {
	return count !== undefined && count > 1 ? ` (×${count})` : '';
}

/**
 * Cuts `text` into lines of at most `width` characters; lines after the first
 * start with `indent`. A line ends after a space when there is one in its
 * second half, so words and arguments stay whole; otherwise it is cut hard.
 */
export function wrapText(text: string, width: number, indent = '  '): string[] {
	const characters = Array.from(sanitizeLine(text));
	const lines: string[] = [];
	let start = 0;
	let prefix = '';
	while (characters.length - start > Math.max(1, width - prefix.length)) {
		const room = Math.max(1, width - prefix.length);
		let end = start + room;
		const space = characters.lastIndexOf(' ', end - 1);
		if (space >= start + Math.ceil(room / 2)) end = space + 1;
		lines.push(prefix + characters.slice(start, end).join(''));
		start = end;
		prefix = indent;
	}

	lines.push(prefix + characters.slice(start).join(''));
	return lines;
}

export type PlanLineTone = 'note' | 'command' | 'file' | 'hunk' | 'add' | 'remove' | 'context';
/**
 * One screen line of a plan. `item` groups the pieces of one wrapped line:
 * they are shown or hidden together. `rank` says what gives way first when
 * the plan does not fit (higher goes first).
 */
export type PlanLine = {text: string; tone: PlanLineTone; item: number; rank: number};

function diffTone(line: string): PlanLineTone {
	if (line.startsWith('+++') || line.startsWith('---')) return 'file';
	if (line.startsWith('@@')) return 'hunk';
	if (line.startsWith('+')) return 'add';
	if (line.startsWith('-')) return 'remove';
	return 'context';
}

/**
 * Ranks of plan lines, kept first to last on a screen too small: the files a
 * plan changes, its changed lines, commands, notes, changed comments, then
 * from `contextRank` on context and headers, which hide no change.
 */
const ranks = {file: 0, change: 1, command: 2, note: 3, comment: 4} as const;
const contextRank = 5;
const fileHeaderRank = 20;

/** A changed line that only comments or spaces: the first thing to go among changes. */
const commentOnly = /^[+-]\s*(#.*|;.*|\/\/.*)?$/;

/**
 * What gives way first on a screen too small for the plan: the `---`/`+++`
 * header (the `~ path` line names the file), then context by its distance
 * from the nearest change, hunk headers, changed comments (see `ranks`).
 */
function diffRanks(lines: readonly string[]): number[] {
	const changed = lines.map((line) => diffTone(line) === 'add' || diffTone(line) === 'remove');
	return lines.map((line, index) => {
		const tone = diffTone(line);
		if (tone === 'file') return fileHeaderRank;
		if (tone === 'hunk') return contextRank;
		if (tone === 'add' || tone === 'remove') return commentOnly.test(line) ? ranks.comment : ranks.change;
		let distance = 1;
		while (!changed[index - distance] && !changed[index + distance] && distance < lines.length) distance++;
		return contextRank + distance;
	});
}

/**
 * Tabs as spaces to the next stop of 4 after a diff's one-character marker:
 * a terminal would put them at stops of 8, wider than the line Ink measured.
 */
export function expandDiffTabs(line: string): string {
	if (!line.includes('\t')) return line;
	let text = line.slice(0, 1);
	for (const character of line.slice(1)) {
		text += character === '\t' ? ' '.repeat(4 - ((text.length - 1) % 4)) : character;
	}

	return text;
}

/** A plan as screen lines of at most `width` characters: notes, then commands, then each file's diff. */
export function planLines(plan: Plan, width: number): PlanLine[] {
	const lines: PlanLine[] = [];
	let item = 0;
	const add = (text: string, tone: PlanLineTone, indent: string, rank: number) => {
		for (const piece of wrapText(text, width, indent)) lines.push({text: piece, tone, item, rank});
		item++;
	};

	for (const note of plan.notes) add(`• ${note}`, 'note', '  ', ranks.note);
	for (const argv of plan.commands) add(`$ ${formatArgv(argv)}`, 'command', '    ', ranks.command);
	for (const file of plan.diffs) {
		add(`~ ${file.path}`, 'file', '  ', ranks.file);
		const diff = (file.diff.endsWith('\n') ? file.diff.slice(0, -1) : file.diff).split('\n');
		const lineRanks = diffRanks(diff);
		for (const [index, line] of diff.entries()) {
			// `---` and `+++` go together: half a file header says nothing.
			if (line.startsWith('+++') && diff[index - 1]?.startsWith('---')) item--;
			add(expandDiffTabs(line), diffTone(line), ' ', lineRanks[index]!);
		}
	}

	return lines;
}

/**
 * The plan in `budget` lines, changes first: whole items are dropped by rank
 * (context far from a change before context next to it, before notes and
 * commands), the rest stays in its order. When anything is dropped, one line
 * of the budget is kept for saying how many.
 */
/** Whether a plan line is one of its changes: a file it changes or a changed line other than a comment. */
export function isChange(line: PlanLine): boolean {
	return line.rank <= ranks.change;
}

export function compactPlanLines(
	lines: readonly PlanLine[],
	budget: number,
): {shown: PlanLine[]; hidden: number; onlyContext: boolean} {
	if (lines.length <= budget) return {shown: [...lines], hidden: 0, onlyContext: true};
	const room = Math.max(0, budget - 1);
	const items = new Map<number, PlanLine[]>();
	for (const line of lines) items.set(line.item, [...(items.get(line.item) ?? []), line]);
	const byRank = [...items.entries()].sort(([a, first], [b, second]) => first[0]!.rank - second[0]!.rank || a - b);
	const kept = new Set<number>();
	let used = 0;
	// Past the first item of a rank that does not fit, the rest of that rank gives way too: the commands
	// shown are the first ones, never a lone `umount` without its `mount`.
	const cutRanks = new Set<number>();
	for (const [item, pieces] of byRank) {
		if (cutRanks.has(pieces[0]!.rank)) continue;
		if (used + pieces.length > room) {
			cutRanks.add(pieces[0]!.rank);
			continue;
		}

		kept.add(item);
		used += pieces.length;
	}

	const shown = lines.filter((line) => kept.has(line.item));
	const onlyContext = lines.every((line) => kept.has(line.item) || line.rank >= contextRank);
	return {shown, hidden: lines.length - shown.length, onlyContext};
}

/** The lines of a `total`-line plan in view from `scroll` on a page of `budget` lines, kept inside the plan. */
export function planPage(total: number, budget: number, scroll: number): {first: number; end: number} {
	const first = Math.max(0, Math.min(scroll, total - budget));
	return {first, end: Math.min(total, first + budget)};
}

/**
 * Which stages a list of at most `maxLines` lines shows around `focus`; a
 * line is spent on "… n more" wherever stages are hidden. The focus sits about
 * a third of the way down, so what is done stays in view a little.
 */
export function stageWindow(
	count: number,
	focus: number,
	maxLines: number,
): {start: number; end: number; hiddenBefore: number; hiddenAfter: number} {
	if (count <= maxLines) return {start: 0, end: count, hiddenBefore: 0, hiddenAfter: 0};
	const lines = Math.max(3, maxLines);
	const center = Math.min(Math.max(0, focus), count - 1);
	let start = Math.max(0, center - Math.floor((lines - 3) / 3));
	let end: number;
	if (start === 0) {
		end = lines - 1;
	} else if (start + lines - 2 >= count) {
		start = count - (lines - 1);
		end = count;
	} else {
		end = start + lines - 2;
	}

	return {start, end, hiddenBefore: start, hiddenAfter: count - end};
}
