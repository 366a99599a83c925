/**
 * The one marker convention for every file farmclone edits: each line it adds
 * ends with a comment `<comment-char> farmclone:<farm>` (`;` in zone files,
 * `#` elsewhere). Undo removes exactly the lines carrying this farm's marker;
 * everything else, line endings included, stays byte-identical.
 */

export type CommentChar = '#' | ';';

const farmNamePattern = /^[A-Za-z\d][\w.-]*$/;

export function assertFarmName(farm: string): void {
	if (!farmNamePattern.test(farm)) {
		throw new Error(`farm name "${farm}" cannot be used in a marker (letters, digits, '.', '_', '-')`);
	}
}

export function markerTag(farm: string): string {
	assertFarmName(farm);
	return `farmclone:${farm}`;
}

export function markerComment(farm: string, comment: CommentChar = '#'): string {
	return `${comment} ${markerTag(farm)}`;
}

/** `line` with this farm's marker appended after a space. */
export function markLine(line: string, farm: string, comment: CommentChar = '#'): string {
	return `${line}${line ? ' ' : ''}${markerComment(farm, comment)}`;
}

function escapeRegExp(text: string): string {
	return text.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function markerPattern(farm: string, comment: CommentChar): RegExp {
	// The farm name must end there: `gallifrey-dev` must not match `gallifrey-dev2`.
	return new RegExp(`(?:^|\\s)${escapeRegExp(comment)}\\s*${escapeRegExp(markerTag(farm))}\\s*$`);
}

export function isMarkedLine(line: string, farm: string, comment: CommentChar = '#'): boolean {
	return markerPattern(farm, comment).test(stripEol(line));
}

/** The text of a line without its marker (and the spaces before it). */
export function unmarkLine(line: string, farm: string, comment: CommentChar = '#'): string {
	return stripEol(line).replace(markerPattern(farm, comment), '');
}

export function stripEol(line: string): string {
	return line.replace(/\r?\n$/, '');
}

/** The file's line ending, from its first line; LF for a file without any. */
export function detectEol(text: string): '\n' | '\r\n' {
	const newline = text.indexOf('\n');
	return newline > 0 && text[newline - 1] === '\r' ? '\r\n' : '\n';
}

/** Lines with their terminators, so that `segments.join('')` is the text again. */
export function splitSegments(text: string): string[] {
	return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** Lines without terminators (a trailing `\r` removed too). */
export function splitLines(text: string): string[] {
	return splitSegments(text).map((segment) => stripEol(segment));
}

/**
 * Insert `lines` before line `index` (0-based; the line count appends),
 * with the file's line ending. Appending to a file whose last line has no
 * newline leaves the new last line without one too, so that removing the
 * lines again restores the original bytes.
 */
export function insertLines(text: string, index: number, lines: string[]): string {
	if (lines.length === 0) return text;
	const eol = detectEol(text);
	const segments = splitSegments(text);
	if (index < 0 || index > segments.length) throw new Error(`line ${index} is outside the file`);
	const added = lines.map((line) => line + eol);
	const last = segments.at(-1);
	if (index === segments.length && last !== undefined && !last.endsWith('\n')) {
		segments[segments.length - 1] = last + eol;
		added[added.length - 1] = lines.at(-1)!;
	}

	segments.splice(index, 0, ...added);
	return segments.join('');
}

/** Remove every line carrying this farm's marker; the inverse of `insertLines` with marked lines. */
export function removeMarkedLines(
	text: string,
	farm: string,
	comment: CommentChar = '#',
): {text: string; removed: string[]} {
	const segments = splitSegments(text);
	const kept: string[] = [];
	const removed: string[] = [];
	for (const segment of segments) {
		if (isMarkedLine(segment, farm, comment)) removed.push(stripEol(segment));
		else kept.push(segment);
	}

	const last = segments.at(-1);
	const lastKept = kept.at(-1);
	if (last !== undefined && !last.endsWith('\n') && isMarkedLine(last, farm, comment) && lastKept !== undefined) {
		kept[kept.length - 1] = stripEol(lastKept);
	}

	return {text: kept.join(''), removed};
}

/** Marked lines of this farm, without terminators. */
export function markedLines(text: string, farm: string, comment: CommentChar = '#'): string[] {
	return splitLines(text).filter((line) => isMarkedLine(line, farm, comment));
}

/** Display width of `text` starting at `column`, tabs to the next multiple of 8. */
function advance(column: number, text: string): number {
	for (const char of text) column = char === '\t' ? (Math.floor(column / 8) + 1) * 8 : column + 1;
	return column;
}

/**
 * Join `fields` so that they line up with the columns of `sample`, an
 * existing line of the same file: tabs where the sample separates with tabs,
 * spaces where it uses spaces, always at least one separator.
 */
export function alignLike(sample: string | undefined, fields: string[]): string {
	const separators = sample ? [...stripEol(sample).matchAll(/(\S+)(\s+)/g)] : [];
	const useTabs = separators.length === 0 || separators.some((match) => match[2]!.includes('\t'));
	const targetColumns: number[] = [];
	let column = 0;
	for (const match of separators) {
		column = advance(column, match[1]! + match[2]!);
		targetColumns.push(column);
	}

	let line = '';
	for (const [index, field] of fields.entries()) {
		line += field;
		if (index === fields.length - 1) break;
		const width = advance(0, line);
		const target = targetColumns[index] ?? 0;
		if (useTabs) {
			let padded = line + '\t';
			while (advance(0, padded) < target) padded += '\t';
			line = padded;
		} else {
			line += ' '.repeat(Math.max(1, target - width));
		}
	}

	return line;
}
