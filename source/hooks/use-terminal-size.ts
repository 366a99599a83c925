import {useStdout} from 'ink';
import {useEffect, useReducer} from 'react';

export type TerminalSize = {columns: number; rows: number};

/** The terminal's size, following resizes; `fixed` pins either side (tests, or a terminal that reports nothing). */
export function useTerminalSize(fixed: Partial<TerminalSize> = {}): TerminalSize {
	const {stdout} = useStdout();
	const [, redraw] = useReducer((count: number) => count + 1, 0);
	useEffect(() => {
		stdout.on('resize', redraw);
		return () => {
			stdout.off('resize', redraw);
		};
	}, [stdout]);
	return {
		columns: fixed.columns ?? (stdout.columns || 80),
		rows: fixed.rows ?? (stdout.rows || 24),
	};
}
