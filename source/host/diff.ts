/** A file's change, as a unified diff. */
export type FileDiff = {path: string; diff: string};

/**
 * Unified diffs for plans: what an edit does to a file, in the format admins
 * read every day (`diff -u`, git). Lines compare with their `\r`, so a change
 * of line endings shows; the `\r` is not printed, to keep terminals sane.
 */

type Line = {text: string; newline: boolean};
type Edit = {kind: ' ' | '-' | '+'; line: Line; oldIndex: number; newIndex: number};

function toLines(text: string | undefined): Line[] {
	if (!text) return [];
	const lines = text.split('\n').map((line) => ({text: line, newline: true}));
	const last = lines.at(-1)!;
	if (last.text === '') lines.pop();
	else last.newline = false;
	return lines;
}

function sameLine(a: Line, b: Line): boolean {
	return a.text === b.text && a.newline === b.newline;
}

/** Longest common subsequence on the part that differs; edits touch few lines, so the middle stays small. */
function diffLines(before: Line[], after: Line[]): Edit[] {
	let prefix = 0;
	while (prefix < before.length && prefix < after.length && sameLine(before[prefix]!, after[prefix]!)) prefix++;
	let suffix = 0;
	while (
		suffix < before.length - prefix &&
		suffix < after.length - prefix &&
		sameLine(before[before.length - 1 - suffix]!, after[after.length - 1 - suffix]!)
	) {
		suffix++;
	}

	const oldMiddle = before.slice(prefix, before.length - suffix);
	const newMiddle = after.slice(prefix, after.length - suffix);
	const rows = oldMiddle.length + 1;
	const columns = newMiddle.length + 1;
	const lengths = new Uint32Array(rows * columns);
	for (let i = oldMiddle.length - 1; i >= 0; i--) {
		for (let j = newMiddle.length - 1; j >= 0; j--) {
			lengths[i * columns + j] = sameLine(oldMiddle[i]!, newMiddle[j]!)
				? lengths[(i + 1) * columns + j + 1]! + 1
				: Math.max(lengths[(i + 1) * columns + j]!, lengths[i * columns + j + 1]!);
		}
	}

	const edits: Edit[] = [];
	for (let k = 0; k < prefix; k++) edits.push({kind: ' ', line: before[k]!, oldIndex: k, newIndex: k});
	let i = 0;
	let j = 0;
	while (i < oldMiddle.length || j < newMiddle.length) {
		const oldIndex = prefix + i;
		const newIndex = prefix + j;
		if (i < oldMiddle.length && j < newMiddle.length && sameLine(oldMiddle[i]!, newMiddle[j]!)) {
			edits.push({kind: ' ', line: oldMiddle[i]!, oldIndex, newIndex});
			i++;
			j++;
		} else if (
			j < newMiddle.length &&
			(i === oldMiddle.length || lengths[i * columns + j + 1]! >= lengths[(i + 1) * columns + j]!)
		) {
			edits.push({kind: '+', line: newMiddle[j]!, oldIndex, newIndex});
			j++;
		} else {
			edits.push({kind: '-', line: oldMiddle[i]!, oldIndex, newIndex});
			i++;
		}
	}

	for (let k = 0; k < suffix; k++) {
		const oldIndex = before.length - suffix + k;
		edits.push({kind: ' ', line: before[oldIndex]!, oldIndex, newIndex: after.length - suffix + k});
	}

	// Show removals before additions inside a run of changes, as diff -u does.
	for (let start = 0; start < edits.length;) {
		let end = start;
		while (end < edits.length && edits[end]!.kind !== ' ') end++;
		if (end > start) {
			const run = edits.slice(start, end);
			const {oldIndex, newIndex} = run[0]!;
			const removed = run.filter((edit) => edit.kind === '-');
			const added = run.filter((edit) => edit.kind === '+');
			edits.splice(
				start,
				end - start,
				...removed.map((edit, k) => ({...edit, oldIndex: oldIndex + k, newIndex})),
				...added.map((edit, k) => ({...edit, oldIndex: oldIndex + removed.length, newIndex: newIndex + k})),
			);
		}

		start = end + 1;
	}

	return edits;
}

function range(start: number, count: number): string {
	// diff -u numbers an empty range by the line before it.
	const first = count === 0 ? start : start + 1;
	return count === 1 ? `${first}` : `${first},${count}`;
}

function render(edit: Edit): string {
	const text = `${edit.kind}${edit.line.text.replace(/\r$/, '')}\n`;
	return edit.line.newline ? text : `${text}\\ No newline at end of file\n`;
}

/**
 * `--- a/<path>` / `+++ b/<path>` and `@@` hunks with `context` lines around
 * each change; an empty string when nothing changes. `undefined` text is a
 * file that does not exist (`/dev/null`).
 */
export function unifiedDiff(
	oldText: string | undefined,
	newText: string | undefined,
	file: string,
	context = 3,
): string {
	const edits = diffLines(toLines(oldText), toLines(newText));
	const changed = edits.flatMap((edit, index) => (edit.kind === ' ' ? [] : [index]));
	if (changed.length === 0) return '';

	const hunks: Array<[number, number]> = [];
	for (const index of changed) {
		const start = Math.max(0, index - context);
		const end = Math.min(edits.length - 1, index + context);
		const last = hunks.at(-1);
		if (last && start <= last[1] + 1) last[1] = Math.max(last[1], end);
		else hunks.push([start, end]);
	}

	const name = file.replace(/^\/+/, '');
	let output = `${oldText === undefined ? '--- /dev/null' : `--- a/${name}`}\n`;
	output += `${newText === undefined ? '+++ /dev/null' : `+++ b/${name}`}\n`;
	for (const [start, end] of hunks) {
		const slice = edits.slice(start, end + 1);
		const oldCount = slice.filter((edit) => edit.kind !== '+').length;
		const newCount = slice.filter((edit) => edit.kind !== '-').length;
		const first = slice[0]!;
		output += `@@ -${range(first.oldIndex, oldCount)} +${range(first.newIndex, newCount)} @@\n`;
		output += slice.map((edit) => render(edit)).join('');
	}

	return output;
}
