import {madeLines, type Made} from '../engine/made.js';
import {farmcloneCommand} from '../host/self.js';
import type {StageInfo} from '../engine/api.js';
import type {EngineEvent, StageState} from '../engine/events.js';
import type {CommandRecord} from '../host/host.js';
import type {CheckResult, CopyProgress, Plan} from '../stages/types.js';
import {sameCommandLine} from './format.js';
import type {PromptRequest} from './tui-prompt.js';

export type RunOutcome = 'done' | 'failed' | 'stopped';

export type StageRow = StageInfo & {state: StageState; seconds?: number};

type Entry<T> = T & {id: number};

/** What the log above the live region holds: finished things only. */
export type LogEntry =
	| Entry<{kind: 'note'; text: string; tone?: 'warning' | 'error'}>
	| Entry<{
			kind: 'stage';
			state: 'done' | 'skipped' | 'failed' | 'undone';
			number: number;
			title: string;
			seconds?: number;
			detail?: string;
			hint?: string;
	  }>
	/** `repeats`: this line stands for that many identical commands in a row (lvs polls), the last one's output. */
	| Entry<{kind: 'command'; command: CommandRecord; repeats?: number}>
	| Entry<{kind: 'log'; text: string}>;

type NewLogEntry = LogEntry extends infer Item ? (Item extends LogEntry ? Omit<Item, 'id'> : never) : never;

export type UiAction =
	| {type: 'ui:request'; request: PromptRequest | undefined}
	/** Enter on a stage that needs the farm's name typed: show the field (or hide it again: Esc). */
	| {type: 'ui:typing'; on: boolean}
	| {type: 'ui:typed-mismatch'; text: string}
	| {type: 'ui:ask-quit'}
	| {type: 'ui:cancel-quit'}
	| {type: 'ui:quitting'}
	/**
	 * `d`, PgUp/PgDn, ↑↓ at a gate: the whole plan paged in place from line
	 * `scroll` (undefined: back to the plan cut to the changes).
	 */
	| {type: 'ui:plan-view'; scroll: number | undefined}
	| {type: 'ui:finished'; outcome: RunOutcome}
	| {type: 'ui:start-failed'; error: string};

export type RunState = {
	farm: string;
	stages: StageRow[];
	/** The stage the panel is about: at the gate, running, or just checked. */
	focus?: string;
	plans: Record<string, Plan>;
	checks: Record<string, CheckResult>;
	progress?: {stage: string; progress: CopyProgress};
	/** Before the first stage: the preflight's checks done, and those still running. */
	preflight?: {done: number; total: number; running: string[]};
	log: LogEntry[];
	nextLogId: number;
	request?: PromptRequest;
	typing: boolean;
	typedError?: string;
	/** At a gate: the first line of the whole plan in view; undefined while the plan cut to its changes is. */
	planScroll?: number;
	quit: 'no' | 'asked' | 'quitting';
	end?: {outcome: 'done' | 'failed' | 'stopped' | 'undone'; message?: string; made?: Made};
	/** Set once the engine's promise settled: the screen can be left. */
	finished?: RunOutcome;
	/**
	 * The last command, not in the log yet: identical ones that follow fold
	 * into its line, which goes to the log with the next other entry.
	 */
	heldCommand?: {command: CommandRecord; repeats: number};
};

export function initialRunState(options: {
	farm: string;
	stages: readonly StageInfo[];
	initialStates?: Readonly<Record<string, StageState>>;
	resumedNote?: string;
}): RunState {
	const state: RunState = {
		farm: options.farm,
		// A stage the journal left running runs in no session now: it is not shown spinning until it runs again.
		stages: options.stages.map((stage) => {
			const state = options.initialStates?.[stage.id] ?? 'pending';
			return {...stage, state: state === 'running' ? 'pending' : state};
		}),
		plans: {},
		checks: {},
		log: [],
		nextLogId: 1,
		typing: false,
		quit: 'no',
	};
	return options.resumedNote ? appendLog(state, {kind: 'note', text: options.resumedNote}) : state;
}

function shorten(text: string, length: number): string {
	const characters = Array.from(text);
	return characters.length <= length ? text : `${characters.slice(0, length - 1).join('')}…`;
}

function pushLog(state: RunState, entry: NewLogEntry): RunState {
	return {...state, log: [...state.log, {...entry, id: state.nextLogId} as LogEntry], nextLogId: state.nextLogId + 1};
}

/** The held command's line goes to the log (with its count), before anything else does. */
function releaseCommand(state: RunState): RunState {
	const held = state.heldCommand;
	if (!held) return state;
	const entry: NewLogEntry = {
		kind: 'command',
		command: held.command,
		...(held.repeats > 1 ? {repeats: held.repeats} : {}),
	};
	return pushLog({...state, heldCommand: undefined}, entry);
}

function appendLog(state: RunState, entry: NewLogEntry): RunState {
	return pushLog(releaseCommand(state), entry);
}

function holdCommand(state: RunState, command: CommandRecord): RunState {
	const held = state.heldCommand;
	if (held && sameCommandLine(held.command, command)) {
		return {...state, heldCommand: {command, repeats: held.repeats + 1}};
	}

	return {...releaseCommand(state), heldCommand: {command, repeats: 1}};
}

export function stageNumber(state: Pick<RunState, 'stages'>, id: string): number {
	return state.stages.findIndex((stage) => stage.id === id) + 1;
}

function setStage(state: RunState, id: string, patch: Partial<StageRow>): RunState {
	return {...state, stages: state.stages.map((stage) => (stage.id === id ? {...stage, ...patch} : stage))};
}

function withoutProgressOf(state: RunState, stage: string): RunState {
	return state.progress?.stage === stage ? {...state, progress: undefined} : state;
}

function applyEngineEvent(state: RunState, event: EngineEvent): RunState {
	switch (event.type) {
		case 'preflight':
			return {...state, preflight: {done: event.done, total: event.total, running: event.running}};
		case 'run-start': {
			const resumedNoteShown = state.log.some((entry) => entry.kind === 'note');
			return event.resumed && !resumedNoteShown
				? appendLog(state, {kind: 'note', text: `Resuming ${event.farm} where it stopped.`})
				: state;
		}

		case 'check':
			return {...state, focus: event.stage, checks: {...state.checks, [event.stage]: event.result}};
		case 'plan':
			return {...state, focus: event.stage, plans: {...state.plans, [event.stage]: event.plan}};
		case 'stage-start':
			return {...setStage(state, event.stage, {state: 'running'}), focus: event.stage};
		case 'stage-done': {
			const check = state.checks[event.stage];
			// A stage whose check found it done never ran: say so rather than "(0.0 s)".
			const alreadyThere = event.seconds === 0 && check?.status === 'done';
			const next = setStage(withoutProgressOf(state, event.stage), event.stage, {
				state: 'done',
				seconds: event.seconds,
			});
			return appendLog(next, {
				kind: 'stage',
				state: 'done',
				number: stageNumber(state, event.stage),
				title: event.title,
				...(alreadyThere ? {detail: `already done: ${check.detail}`} : {seconds: event.seconds}),
			});
		}

		case 'stage-skipped':
			return appendLog(setStage(state, event.stage, {state: 'skipped'}), {
				kind: 'stage',
				state: 'skipped',
				number: stageNumber(state, event.stage),
				title: event.title,
				detail: event.reason,
			});
		case 'stage-failed':
			return appendLog(setStage(withoutProgressOf(state, event.stage), event.stage, {state: 'failed'}), {
				kind: 'stage',
				state: 'failed',
				number: stageNumber(state, event.stage),
				title: event.title,
				detail: event.error,
				hint: event.hint,
			});
		case 'stage-undone':
			return appendLog(setStage(state, event.stage, {state: 'undone'}), {
				kind: 'stage',
				state: 'undone',
				number: stageNumber(state, event.stage),
				title: event.title,
			});
		case 'stage-reopened':
			return appendLog(setStage(state, event.stage, {state: 'pending', seconds: undefined}), {
				kind: 'note',
				text: `· ${stageNumber(state, event.stage)} ${event.title} is no longer done: ${event.detail}`,
				tone: 'warning',
			});
		case 'command':
			return holdCommand(state, event.command);
		case 'log':
			return appendLog(state, {kind: 'log', text: event.text});
		case 'progress':
			return {...state, progress: {stage: event.stage, progress: event.progress}};
		case 'run-end': {
			const ended = {
				...releaseCommand(state),
				end: {outcome: event.outcome, message: event.message, ...(event.made ? {made: event.made} : {})},
			};
			// What was made stays in the scrollback after the screen is gone.
			return event.made ? appendLog(ended, {kind: 'note', text: madeLines(event.made).join('\n')}) : ended;
		}
	}
}

function applyUiAction(state: RunState, action: UiAction): RunState {
	switch (action.type) {
		case 'ui:request': {
			const {request} = action;
			const focus = request?.kind === 'gate' ? request.stage : state.focus;
			// A question stops the run: the log above it is complete.
			return {...releaseCommand(state), request, focus, typing: false, typedError: undefined, planScroll: undefined};
		}

		case 'ui:typing':
			return {...state, typing: action.on && state.request?.kind === 'gate', typedError: undefined};
		case 'ui:typed-mismatch':
			return {
				...state,
				typedError: action.text === '' ? 'nothing typed' : `"${shorten(action.text, 24)}" does not match`,
			};
		case 'ui:ask-quit':
			return state.quit === 'no' && state.finished === undefined ? {...state, quit: 'asked'} : state;
		case 'ui:cancel-quit':
			return state.quit === 'asked' ? {...state, quit: 'no'} : state;
		case 'ui:quitting':
			return {...state, quit: 'quitting'};
		case 'ui:plan-view':
			return state.request?.kind === 'gate' ? {...state, planScroll: action.scroll} : state;
		case 'ui:finished':
			return {
				...releaseCommand(state),
				finished: action.outcome,
				request: undefined,
				typing: false,
				progress: undefined,
			};
		case 'ui:start-failed':
			return appendLog(state, {kind: 'note', text: action.error, tone: 'error'});
	}
}

/** The run screen's whole state, from the engine's events and the admin's keys. Pure. */
export function runReducer(state: RunState, action: EngineEvent | UiAction): RunState {
	return action.type.startsWith('ui:')
		? applyUiAction(state, action as UiAction)
		: applyEngineEvent(state, action as EngineEvent);
}

/** The stage the live region centres on: the one asked about or running, else the next to do. */
export function focusIndex(state: RunState): number {
	const focused = state.focus ? state.stages.findIndex((stage) => stage.id === state.focus) : -1;
	if (focused >= 0) return focused;
	const next = state.stages.findIndex((stage) => stage.state === 'pending' || stage.state === 'running');
	return next >= 0 ? next : Math.max(0, state.stages.length - 1);
}

/**
 * The end of the run: one line, and for a run that did not finish the
 * command that resumes it, as it works from this shell (the demo's
 * directories included).
 */
export function summaryLine(state: RunState): {tone: 'success' | 'warning' | 'error'; text: string; resume?: string} {
	const count = (wanted: StageState) => state.stages.filter((stage) => stage.state === wanted).length;
	const done = count('done');
	const skipped = count('skipped');
	const tally = `${done}/${state.stages.length} done${skipped > 0 ? `, ${skipped} skipped` : ''}`;
	const outcome = state.end?.outcome ?? state.finished;
	const message = state.end?.message ? `: ${state.end.message}` : '';
	if (outcome === 'done') return {tone: 'success', text: `${state.farm} is ready (${tally})`};
	if (outcome === 'undone') return {tone: 'success', text: `${state.farm} undone${message}`};
	const resume = farmcloneCommand(['run', state.farm]);
	if (outcome === 'failed') {
		const failed = state.stages.find((stage) => stage.state === 'failed');
		return {tone: 'error', text: `failed${failed ? ` at ${failed.title}` : ''}${message} (${tally})`, resume};
	}

	return {tone: 'warning', text: `stopped${message} (${tally})`, resume};
}

/** Before the first stage: what the preflight still waits for (its checks run side by side). */
export function preflightLine(preflight: RunState['preflight']): string {
	if (!preflight) return 'starting…';
	if (preflight.running.length === 0) return `preflight: ${preflight.total} checks done`;
	return `preflight ${preflight.done}/${preflight.total} done, checking ${preflight.running.join(', ')}…`;
}
