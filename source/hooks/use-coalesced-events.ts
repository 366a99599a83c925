import {useCallback, useEffect, useRef} from 'react';
import type {EngineEvent} from '../engine/events.js';

/**
 * The engine's events, handed to `dispatch` with copy progress coalesced: at
 * most one progress update per `intervalMs`, always the latest. Any other
 * event first flushes the progress it follows, so the order is kept.
 */
export function useCoalescedEvents(
	dispatch: (event: EngineEvent) => void,
	intervalMs = 250,
): (event: EngineEvent) => void {
	const pending = useRef<EngineEvent | undefined>(undefined);
	const timer = useRef<NodeJS.Timeout | undefined>(undefined);
	const lastFlush = useRef(0);
	const mounted = useRef(true);

	const flush = useCallback(() => {
		timer.current = undefined;
		const event = pending.current;
		pending.current = undefined;
		if (event && mounted.current) {
			lastFlush.current = Date.now();
			dispatch(event);
		}
	}, [dispatch]);

	useEffect(() => {
		mounted.current = true;
		return () => {
			mounted.current = false;
			clearTimeout(timer.current);
		};
	}, []);

	return useCallback(
		(event: EngineEvent) => {
			if (!mounted.current) return;
			if (event.type !== 'progress') {
				clearTimeout(timer.current);
				flush();
				dispatch(event);
				return;
			}

			pending.current = event;
			if (timer.current) return;
			const wait = Math.max(0, lastFlush.current + intervalMs - Date.now());
			timer.current = setTimeout(flush, wait);
		},
		[dispatch, flush, intervalMs],
	);
}
