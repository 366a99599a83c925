/**
 * The farm's name on the terminal at once, while the screen's modules (Ink,
 * React, the stages: most of the start-up) load: a line without its newline,
 * cleared just before the screen's first frame or an error takes its place.
 */
let shown = false;

export function showEarlyLine(text: string): void {
	if (!process.stdout.isTTY) return;
	process.stdout.write(text.slice(0, Math.max(0, (process.stdout.columns || 80) - 1)));
	shown = true;
}

export function clearEarlyLine(): void {
	if (!shown) return;
	shown = false;
	process.stdout.write('\r\u001B[2K');
}
