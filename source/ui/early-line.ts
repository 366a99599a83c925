/**
 * The farm's name on the terminal at once, while the screen's modules (Ink,
 * React, the stages: most of the start-up) load: a line without its newline,
 * cleared just before the screen's first frame or an error takes its place.
 */
let shown: string | undefined;

/** One line, short of the last column (no wrap); a line cut ends in `…`. */
function fitted(text: string): string {
	const room = Math.max(1, (process.stdout.columns || 80) - 1);
	return text.length <= room ? text : `${text.slice(0, room - 1)}…`;
}

export function showEarlyLine(text: string): void {
	if (!process.stdout.isTTY) return;
	shown = fitted(text);
	process.stdout.write(shown);
}

/** The early line, if it is still there, says `text` instead (the preflight's progress while the screen loads). */
export function updateEarlyLine(text: string): void {
	if (shown === undefined || fitted(text) === shown) return;
	shown = fitted(text);
	process.stdout.write(`\r\u001B[2K${shown}`);
}

export function clearEarlyLine(): void {
	if (shown === undefined) return;
	shown = undefined;
	process.stdout.write('\r\u001B[2K');
}
