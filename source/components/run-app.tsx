import {useApp} from 'ink';
import React, {useCallback, useEffect, useReducer, useRef} from 'react';
import type {StageInfo, StartRun} from '../engine/api.js';
import type {StageState} from '../engine/events.js';
import type {FirewallWaitAnswer} from '../stages/types.js';
import {useCoalescedEvents} from '../hooks/use-coalesced-events.js';
import {useRunKeys, type RunKeyIntent} from '../hooks/use-run-keys.js';
import {useTerminalSize} from '../hooks/use-terminal-size.js';
import {useTick} from '../hooks/use-tick.js';
import {initialRunState, runReducer, type RunOutcome} from '../ui/run-state.js';
import {createTuiPrompt, type TuiPrompt} from '../ui/tui-prompt.js';
import {RunScreen} from './run-screen.js';
import {ColorProvider, colorWanted} from './theme.js';

export type RunAppProps = {
	farm: string;
	stages: StageInfo[];
	initialStates?: Record<string, StageState>;
	resumedNote?: string;
	start: StartRun;
	/** Called once, when the admin leaves the screen. */
	onExit: (outcome: RunOutcome) => void;
	/** Pin the screen size (tests); the terminal's otherwise. */
	columns?: number;
	rows?: number;
	/** Defaults to what NO_COLOR says. */
	color?: boolean;
	/** How often copy progress may reach the screen. */
	progressIntervalMs?: number;
};

/** The run screen with its wiring: starts the engine once, turns its events into state and keys into answers. */
export function RunApp(props: RunAppProps) {
	return (
		<ColorProvider enabled={props.color ?? colorWanted()}>
			<RunController {...props} />
		</ColorProvider>
	);
}

function RunController(props: RunAppProps) {
	const {exit} = useApp();
	const [state, dispatch] = useReducer(runReducer, props, initialRunState);
	const size = useTerminalSize({columns: props.columns, rows: props.rows});
	const tick = useTick(state.finished === undefined && state.stages.some((stage) => stage.state === 'running'));
	const onEvent = useCoalescedEvents(dispatch, props.progressIntervalMs);
	const abort = useRef(new AbortController());
	const tui = useRef<TuiPrompt | undefined>(undefined);
	tui.current ??= createTuiPrompt((request) => {
		dispatch({type: 'ui:request', request});
	});
	const leaving = useRef(false);
	const started = useRef(false);
	const {onExit} = props;

	const startRef = useRef(props.start);
	useEffect(() => {
		const controller = abort.current;
		const prompt = tui.current;
		if (started.current || !prompt) return;
		started.current = true;
		startRef
			.current({prompt: prompt.prompt, confirmStage: prompt.confirmStage, onEvent, signal: controller.signal})
			.then(
				(outcome) => {
					dispatch({type: 'ui:finished', outcome: controller.signal.aborted ? 'stopped' : outcome});
				},
				(error: unknown) => {
					dispatch({type: 'ui:start-failed', error: error instanceof Error ? error.message : String(error)});
					dispatch({type: 'ui:finished', outcome: 'failed'});
				},
			);
	}, [onEvent]);

	useEffect(() => {
		const controller = abort.current;
		const prompt = tui.current;
		return () => {
			// Unmounted from outside (a signal): let the engine stop where it can resume.
			controller.abort();
			prompt?.stop();
		};
	}, []);

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
		abort.current.abort();
		tui.current?.stop();
	};

	const handleIntent = (intent: RunKeyIntent) => {
		const {request} = state;
		switch (intent.type) {
			case 'gate':
				if (request?.kind !== 'gate') return;
				if (intent.answer === 'quit') dispatch({type: 'ui:quitting'});
				tui.current?.answer(request.id, 'gate', intent.answer);
				return;
			case 'start-typing':
				dispatch({type: 'ui:typing', on: true});
				return;
			case 'show-plan':
				dispatch({type: 'ui:show-plan'});
				return;
			case 'confirm':
				if (request?.kind === 'confirm') tui.current?.answer(request.id, 'confirm', intent.yes);
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
				leave(state.finished ?? 'stopped');
				return;
		}
	};

	useRunKeys(state, handleIntent);

	const onTypedSubmit = (value: string) => {
		const {request} = state;
		if (request?.kind === 'gate' && state.typing) {
			if (value === state.farm) tui.current?.answer(request.id, 'gate', 'run');
			else dispatch({type: 'ui:typed-mismatch', text: value});
		} else if (request?.kind === 'typed') {
			if (value === request.expected) tui.current?.answer(request.id, 'typed', true);
			else dispatch({type: 'ui:typed-mismatch', text: value});
		}
	};

	const onTypedCancel = () => {
		const {request} = state;
		if (request?.kind === 'gate') dispatch({type: 'ui:typing', on: false});
		else if (request?.kind === 'typed') tui.current?.answer(request.id, 'typed', false);
	};

	const onChoose = (value: string) => {
		const {request} = state;
		if (request?.kind === 'choose') tui.current?.answer(request.id, 'choose', value);
	};

	const onFirewall = (answer: FirewallWaitAnswer) => {
		const {request} = state;
		if (request?.kind === 'firewall') tui.current?.answer(request.id, 'firewall', answer);
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
