import {stripVTControlCharacters} from 'node:util';
import {clockTime} from '../host/dhcpd-process.js';
import {formatBytes as formatSize} from '../host/lvm.js';
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

/**
 * A wall-clock time on this host, `09:50:25 UTC`: always 24-hour and zero
 * padded, whatever locale data this Node was built with (`toLocaleTimeString`
 * falls back to `9:50:25` where en-GB is missing).
 */
export function formatClock(at: string | number): string {
	const date = new Date(at);
	const zone = new Intl.DateTimeFormat('en-US', {timeZoneName: 'short'})
		.formatToParts(date)
		.find((part) => part.type === 'timeZoneName')?.value;
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

const plainArgument = /^[\w@%+=:,./-]+$/;

/** An argv as an admin would type it, so a logged command can be pasted into a shell. */
export function formatArgv(argv: readonly string[]): string {
	return argv
		.map((argument) => (plainArgument.test(argument) ? argument : `'${argument.replaceAll("'", `'\\''`)}'`))
		.join(' ');
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
export type PlanLine = {text: string; tone: PlanLineTone};

function diffTone(line: string): PlanLineTone {
	if (line.startsWith('+++') || line.startsWith('---')) return 'file';
	if (line.startsWith('@@')) return 'hunk';
	if (line.startsWith('+')) return 'add';
	if (line.startsWith('-')) return 'remove';
	return 'context';
}

/** A plan as screen lines of at most `width` characters: notes, then commands, then each file's diff. */
export function planLines(plan: Plan, width: number): PlanLine[] {
	const lines: PlanLine[] = [];
	const add = (text: string, tone: PlanLineTone, indent: string) => {
		for (const piece of wrapText(text, width, indent)) lines.push({text: piece, tone});
	};

	for (const note of plan.notes) add(`• ${note}`, 'note', '  ');
	for (const argv of plan.commands) add(`$ ${formatArgv(argv)}`, 'command', '    ');
	for (const file of plan.diffs) {
		add(`~ ${file.path}`, 'file', '  ');
		const diff = file.diff.endsWith('\n') ? file.diff.slice(0, -1) : file.diff;
		for (const line of diff.split('\n')) add(line, diffTone(line), ' ');
	}

	return lines;
}

/**
 * Keeps what fits in `budget` lines. When something is cut, the last line
 * kept gives way to the count of hidden lines, so the result is never longer
 * than the budget.
 */
export function fitLines<T>(lines: readonly T[], budget: number): {shown: T[]; hidden: number} {
	if (lines.length <= budget) return {shown: [...lines], hidden: 0};
	const kept = Math.max(0, budget - 1);
	return {shown: lines.slice(0, kept), hidden: lines.length - kept};
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
