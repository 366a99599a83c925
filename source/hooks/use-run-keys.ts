import {useInput, type Key} from 'ink';
import {useCallback, useLayoutEffect, useRef} from 'react';
import {nudgeCopyRate} from '../host/copy-rate.js';
import type {RunState} from '../ui/run-state.js';
import type {GateAnswer} from '../ui/tui-prompt.js';

export type RunKeyIntent =
	| {type: 'gate'; answer: GateAnswer}
	| {type: 'start-typing'}
	| {type: 'plan-view'; move: PlanMove}
	| {type: 'confirm'; yes: boolean}
	| {type: 'ask-quit'}
	| {type: 'cancel-quit'}
	| {type: 'quit'}
	| {type: 'exit'};

/** How a key moves the view of the plan at a gate: `d` opens or closes the whole plan, the others scroll it. */
export type PlanMove = 'toggle' | 'close' | 'page-up' | 'page-down' | 'up' | 'down';

type KeyFacts = Pick<Key, 'ctrl' | 'return' | 'escape'> &
	Partial<Pick<Key, 'pageUp' | 'pageDown' | 'upArrow' | 'downArrow'>>;

/**
 * What a key means on the run screen, given what it shows. Text fields and
 * the choice list read their own keys; this only handles the rest. Raw mode
 * turns Ctrl+C into a key, and it always asks before quitting.
 */
export function runKeyIntent(state: RunState, input: string, key: KeyFacts): RunKeyIntent | undefined {
	const lower = input.toLowerCase();
	if (key.ctrl && lower === 'c') {
		if (state.finished !== undefined) return {type: 'exit'};
		if (state.quit === 'asked') return {type: 'quit'};
		return state.quit === 'no' ? {type: 'ask-quit'} : undefined;
	}

	if (state.quit === 'asked') {
		if (lower === 'y') return {type: 'quit'};
		if (lower === 'n' || key.escape) return {type: 'cancel-quit'};
		return undefined;
	}

	if (state.quit === 'quitting') return undefined;
	if (state.finished !== undefined) return {type: 'exit'};
	const {request} = state;
	if (!request) return lower === 'q' ? {type: 'ask-quit'} : undefined;
	if (request.kind === 'confirm') {
		if (lower === 'y') return {type: 'confirm', yes: true};
		if (lower === 'n' || key.escape) return {type: 'confirm', yes: false};
		return undefined;
	}

	if (request.kind !== 'gate' || state.typing) return undefined;
	const stage = state.stages.find((row) => row.id === request.stage);
	if (key.return) return stage?.danger === 'typed' ? {type: 'start-typing'} : {type: 'gate', answer: 'run'};
	if (lower === 's' && stage?.skippable) return {type: 'gate', answer: 'skip'};
	if (lower === 'q') return {type: 'gate', answer: 'quit'};
	if (lower === 'd') return {type: 'plan-view', move: 'toggle'};
	if (key.pageDown) return {type: 'plan-view', move: 'page-down'};
	if (key.pageUp) return {type: 'plan-view', move: 'page-up'};
	if (key.downArrow) return {type: 'plan-view', move: 'down'};
	if (key.upArrow) return {type: 'plan-view', move: 'up'};
	if (key.escape && state.planScroll !== undefined) return {type: 'plan-view', move: 'close'};
	return undefined;
}

/**
 * Reads keys for the run screen. The handler always sees the state of the
 * last commit: a key typed right after a repaint must not be judged by the
 * screen before it.
 */
export function useRunKeys(state: RunState, onIntent: (intent: RunKeyIntent) => void): void {
	const latest = useRef({state, onIntent});
	useLayoutEffect(() => {
		latest.current = {state, onIntent};
	});
	const handle = useCallback((input: string, key: Key) => {
		// Several keys in one read (a slow link): the first decides, the rest would be judged against a stale screen.
		const [first = ''] = Array.from(input);
		// `+`/`-` while a copy runs: its rate keeper changes the limit at once, the screen shows it on the next report.
		if ((first === '+' || first === '-') && latest.current.state.progress) {
			nudgeCopyRate(first === '+' ? 1 : -1);
			return;
		}

		const single = input.length > 1 && !key.ctrl && !key.meta ? {...key, return: first === '\r'} : key;
		const intent = runKeyIntent(latest.current.state, input.length > 1 ? first : input, single);
		if (intent) latest.current.onIntent(intent);
	}, []);
	useInput(handle);
}
