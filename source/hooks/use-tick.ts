import {useEffect, useState} from 'react';

/** A counter that moves every `intervalMs` while `active`: spinners. Slow on purpose, to spare slow links. */
export function useTick(active: boolean, intervalMs = 250): number {
	const [tick, setTick] = useState(0);
	useEffect(() => {
		if (!active) return;
		const timer = setInterval(() => {
			setTick((count) => count + 1);
		}, intervalMs);
		return () => {
			clearInterval(timer);
		};
	}, [active, intervalMs]);
	return tick;
}
