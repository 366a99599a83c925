import {useApp} from 'ink';
import React, {useCallback, useEffect, useRef, useSyncExternalStore} from 'react';
import type {FirewallWaitAnswer, Plan} from '../stages/types.js';
import {useRunKeys, type PlanMove, type RunKeyIntent} from '../hooks/use-run-keys.js';
import {useTerminalSize} from '../hooks/use-terminal-size.js';
import {useTick} from '../hooks/use-tick.js';
import {planLines} from '../ui/format.js';
import type {RunOutcome, RunState} from '../ui/run-state.js';
import type {RunStore} from '../ui/run-store.js';
import {liveRegionLayout, RunScreen} from './run-screen.js';
import {gatePlanBudget} from './stage-panel.js';
import {ColorProvider, colorWanted} from './theme.js';

export type RunAppProps = {
	/** The run's state outside React: the engine, started on it, feeds it; this screen shows it and answers. */
	store: RunStore;
	/** Called once, when the admin leaves the screen. */
	onExit: (outcome: RunOutcome) => void;
	/** Pin the screen size (tests); the terminal's otherwise. */
	columns?: number;
	rows?: number;
	/** Defaults to what NO_COLOR says. */
	color?: boolean;
};

/**
 * Whether anything on screen moves by itself: a spinner while a stage runs
 * and nobody is asked, a countdown while a question has a deadline.
 */
export function ticking(state: RunState): boolean {
	if (state.finished !== undefined) return false;
	const {request} = state;
	if (request) return request.kind === 'firewall' || (request.kind === 'confirm' && request.deadline !== undefined);
	// A copy's progress bar shows the work moving: a spinner beside it would only repaint the screen 4 times a second.
	if (state.progress && state.progress.stage === state.focus) return false;
	return state.stages.some((stage) => stage.state === 'running');
}

/** Where the whole plan's view goes on a key: its first line in view, or undefined for the plan cut to its changes. */
function movePlanView(
	state: RunState,
	plan: Plan,
	move: PlanMove,
	size: {columns: number; rows: number},
): number | undefined {
	if (move === 'close' || (move === 'toggle' && state.planScroll !== undefined)) return undefined;
	const page = gatePlanBudget(liveRegionLayout(size.rows, state.stages.length, true).panel, state);
	const total = planLines(plan, size.columns).length;
	const last = Math.max(0, total - page);
	const now = Math.min(state.planScroll ?? 0, last);
	const step = {toggle: 0, 'page-up': -page, 'page-down': page, up: -1, down: 1}[move];
	return Math.max(0, Math.min(last, now + step));
}

/** The run screen with its wiring: shows the store's state and turns keys into answers; the engine runs outside. */
export function RunApp(props: RunAppProps) {
	return (
		<ColorProvider enabled={props.color ?? colorWanted()}>
			<RunController {...props} />
		</ColorProvider>
	);
}

function RunController(props: RunAppProps) {
	const {exit} = useApp();
	const {store, onExit} = props;
	const state = useSyncExternalStore(store.subscribe, store.getState);
	const dispatch = store.dispatch;
	const size = useTerminalSize({columns: props.columns, rows: props.rows});
	const tick = useTick(ticking(state));
	const leaving = useRef(false);

	// Unmounted from outside (a signal, a lost terminal): the engine stops where it can resume.
	useEffect(() => () => store.quit(), [store]);

	const leave = useCallback(
		(outcome: RunOutcome) => {
			if (leaving.current) return;
			leaving.current = true;
			onExit(outcome);
			exit();
		},
		[exit, onExit],
	);

	// Whoever asked to quit has already answered; only a finished run waits for a key.
	useEffect(() => {
		if (state.finished !== undefined && state.quit === 'quitting') leave(state.finished);
	}, [state.finished, state.quit, leave]);

	const quit = () => {
		dispatch({type: 'ui:quitting'});
		store.quit();
	};

	const handleIntent = (intent: RunKeyIntent) => {
		const {request} = state;
		switch (intent.type) {
			case 'gate':
				if (request?.kind !== 'gate') return;
				if (intent.answer === 'quit') dispatch({type: 'ui:quitting'});
				store.answer(request.id, 'gate', intent.answer);
				return;
			case 'start-typing':
				dispatch({type: 'ui:typing', on: true});
				return;
			case 'plan-view':
				if (request?.kind !== 'gate') return;
				dispatch({type: 'ui:plan-view', scroll: movePlanView(state, request.plan, intent.move, size)});
				return;
			case 'confirm':
				if (request?.kind === 'confirm') store.answer(request.id, 'confirm', intent.yes);
				return;
			case 'ask-quit':
				dispatch({type: 'ui:ask-quit'});
				return;
			case 'cancel-quit':
				dispatch({type: 'ui:cancel-quit'});
				return;
			case 'quit':
				quit();
				return;
			case 'exit':
				// Left through the effect above, once the last frame no longer asks for a key.
				dispatch({type: 'ui:quitting'});
				return;
		}
	};

	useRunKeys(state, handleIntent);

	const onTypedSubmit = (value: string) => {
		const {request} = state;
		if (request?.kind === 'gate' && state.typing) {
			// The engine asks for the typed name right after; it gets what was typed here.
			if (value === state.farm) store.answer(request.id, 'gate', 'run', value);
			else dispatch({type: 'ui:typed-mismatch', text: value});
		} else if (request?.kind === 'typed') {
			if (value === request.expected) store.answer(request.id, 'typed', true);
			else dispatch({type: 'ui:typed-mismatch', text: value});
		}
	};

	const onTypedCancel = () => {
		const {request} = state;
		if (request?.kind === 'gate') dispatch({type: 'ui:typing', on: false});
		else if (request?.kind === 'typed') store.answer(request.id, 'typed', false);
	};

	const onChoose = (value: string) => {
		const {request} = state;
		if (request?.kind === 'choose') store.answer(request.id, 'choose', value);
	};

	const onFirewall = (answer: FirewallWaitAnswer) => {
		const {request} = state;
		if (request?.kind === 'firewall') store.answer(request.id, 'firewall', answer);
	};

	return (
		<RunScreen
			state={state}
			columns={size.columns}
			rows={size.rows}
			tick={tick}
			onTypedSubmit={onTypedSubmit}
			onTypedCancel={onTypedCancel}
			onChoose={onChoose}
			onFirewall={onFirewall}
		/>
	);
}
