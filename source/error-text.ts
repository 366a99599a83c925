/**
 * What the admin reads of an error that reached the top: its message, never
 * a stack nor a JavaScript class name. A programming error (TypeError and the
 * like) says it is one of farmclone's own. FARMCLONE_DEBUG=1 adds the stack.
 */
const internal = new Set(['TypeError', 'ReferenceError', 'RangeError', 'SyntaxError', 'EvalError', 'AssertionError']);

export function errorText(error: unknown, debug = process.env['FARMCLONE_DEBUG'] === '1'): string {
	const message = (error instanceof Error ? error.message : String(error)).trim() || 'unknown error';
	const inside = error instanceof Error && (internal.has(error.name) || internal.has(error.constructor.name));
	const text = inside ? `internal error: ${message} (a bug in farmclone; FARMCLONE_DEBUG=1 shows where)` : message;
	const stack = debug && error instanceof Error && error.stack ? `\n${error.stack}` : '';
	return `farmclone: ${text}${stack}\n`;
}
