import type {Ask, StageInfo, StartRun} from '../engine/api.js';
import type {EngineEvent, StageState} from '../engine/events.js';
import {initialRunState, runReducer, type RunOutcome, type RunState, type UiAction} from './run-state.js';
import {createTuiPrompt, type TuiPrompt} from './tui-prompt.js';

export type RunStoreOptions = {
	farm: string;
	stages: readonly StageInfo[];
	initialStates?: Readonly<Record<string, StageState>>;
	resumedNote?: string;
	/** How often copy progress may reach the state (and so the screen). */
	progressIntervalMs?: number;
	/**
	 * The screen's repaint pace: the engine's news (a command run, a check done) reaches the screen at most once
	 * in this many ms, each time with all of it; keys, questions and the run's end at once. Every re-render is
	 * work on the one thread that also starts the preflight's checkers. Default 0: every event at once.
	 */
	frameMs?: number;
};

/**
 * The run screen's state, kept outside React (the shape of Gatsby's
 * reporter): the engine's events and the admin's keys go in through
 * `onEvent` and `dispatch`, the screen reads `getState` and re-renders on
 * `subscribe`. The engine's questions are shown one at a time and answered
 * through `answer`.
 */
export type RunStore = {
	getState(): RunState;
	subscribe(listener: () => void): () => void;
	dispatch(action: UiAction): void;
	/** The engine's events; copy progress coalesced to one update per interval, always the latest, order kept. */
	onEvent(event: EngineEvent): void;
	ask: Ask;
	answer: TuiPrompt['answer'];
	/** Aborted when the admin quits (or the screen goes): the engine stops at its next safe point. */
	signal: AbortSignal;
	/** The admin quit: the engine is stopped and every question left answers quit. */
	quit(): void;
	/** Starts the engine on this store, outside React; the state tells how it ended. */
	start(start: StartRun): Promise<RunOutcome>;
};

export function createRunStore(options: RunStoreOptions): RunStore {
	let state = initialRunState(options);
	const listeners = new Set<() => void>();
	const controller = new AbortController();
	const frameMs = options.frameMs ?? 0;
	let frame: NodeJS.Timeout | undefined;
	let lastShown = 0;
	const show = () => {
		clearTimeout(frame);
		frame = undefined;
		lastShown = Date.now();
		for (const listener of listeners) listener();
	};

	const set = (action: EngineEvent | UiAction, atOnce = true) => {
		state = runReducer(state, action);
		const wait = lastShown + frameMs - Date.now();
		if (atOnce || wait <= 0) show();
		else frame ??= setTimeout(show, wait);
	};

	const tui = createTuiPrompt((request) => {
		set({type: 'ui:request', request});
	});

	const interval = options.progressIntervalMs ?? 250;
	let pending: EngineEvent | undefined;
	let timer: NodeJS.Timeout | undefined;
	let lastFlush = 0;
	const flush = () => {
		clearTimeout(timer);
		timer = undefined;
		const event = pending;
		pending = undefined;
		if (!event) return;
		lastFlush = Date.now();
		set(event, false);
	};

	const quit = () => {
		controller.abort();
		tui.stop();
	};

	const onEvent = (event: EngineEvent) => {
		if (event.type !== 'progress') {
			flush();
			set(event, false);
			return;
		}

		pending = event;
		if (!timer) timer = setTimeout(flush, Math.max(0, lastFlush + interval - Date.now()));
	};

	return {
		getState: () => state,
		subscribe(listener) {
			listeners.add(listener);
			return () => listeners.delete(listener);
		},
		dispatch: set,
		onEvent,
		ask: tui.ask,
		answer: tui.answer,
		signal: controller.signal,
		quit,
		async start(start) {
			let outcome: RunOutcome;
			try {
				outcome = await start({ask: tui.ask, onEvent, signal: controller.signal});
				if (controller.signal.aborted) outcome = 'stopped';
			} catch (error) {
				set({type: 'ui:start-failed', error: error instanceof Error ? error.message : String(error)});
				outcome = 'failed';
			}

			flush();
			set({type: 'ui:finished', outcome});
			return outcome;
		},
	};
}
