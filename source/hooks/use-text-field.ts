import {useInput, type Key} from 'ink';
import {useCallback, useLayoutEffect, useRef, useState} from 'react';

/**
 * Keys of a one-line text field: printable keys (and pastes) append,
 * Backspace deletes, Enter submits and empties the field, Esc cancels.
 * Text after a line end in the same read is dropped, never typed into what
 * comes next.
 */
export function useTextField(options: {
	isActive: boolean;
	onSubmit: (value: string) => void;
	onCancel?: () => void;
}): string {
	const [value, setValue] = useState('');
	// Keys can arrive faster than renders; the ref always holds what was typed so far.
	const current = useRef('');
	const update = (next: string) => {
		current.current = next;
		setValue(next);
	};

	const handlers = useRef(options);
	useLayoutEffect(() => {
		handlers.current = options;
	});
	const handle = useCallback((input: string, key: Key) => {
		if (key.return) {
			const typed = current.current;
			update('');
			handlers.current.onSubmit(typed);
		} else if (key.escape) {
			update('');
			handlers.current.onCancel?.();
		} else if (key.backspace || key.delete) {
			update(Array.from(current.current).slice(0, -1).join(''));
		} else if (!key.ctrl && !key.meta && !key.tab && !key.upArrow && !key.downArrow) {
			// Over a slow link several keys arrive in one read, Enter included: "gallifrey-dev\r".
			const [text = '', ...afterLineEnd] = input.split(/\r|\n/);
			const printable = Array.from(text)
				.filter((character) => character >= ' ' && character !== '\u007F')
				.join('');
			if (afterLineEnd.length === 0) {
				if (printable) update(current.current + printable);
				return;
			}

			const typed = current.current + printable;
			update('');
			handlers.current.onSubmit(typed);
		}
	}, []);
	useInput(handle, {isActive: options.isActive});
	return value;
}
