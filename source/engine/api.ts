import type {FarmSettings} from '../settings/schema.js';
import type {CheckResult, FirewallWaitAnswer, FirewallWaitRequest, Plan, Stage} from '../stages/types.js';
import type {EngineEvent, StageState} from './events.js';

/**
 * Everything the engine asks whoever shows the run (the TUI, headless mode),
 * through one `ask`. The engine decides what an answer allows: a dangerous
 * stage runs only when the typed answer is the farm's name, whatever the
 * front end.
 */
export type Question =
	/** Before a stage: its plan and what its check found. */
	| {kind: 'gate'; stage: StageInfo; index: number; plan: Plan; check: CheckResult}
	/** Yes or no; with a timeout, no answer in time is a no. */
	| {kind: 'confirm'; message: string; timeoutSeconds?: number}
	| {kind: 'choose'; message: string; choices: ReadonlyArray<{label: string; value: string}>}
	/**
	 * The admin types `expected` to go on. The answer is the text typed
	 * (undefined: declined), which the engine compares. `stage`: the typed
	 * confirmation of that dangerous stage, asked right after its gate said
	 * run; `undo`: the confirmation of an undo of the `undo` stages.
	 */
	| {kind: 'typed'; message: string; expected: string; stage?: StageInfo; undo?: number}
	/** After a Shorewall restart: wait for the proof from a new connection, or the admin's choice. */
	| {kind: 'firewall'; request: FirewallWaitRequest};

export type Answers = {
	gate: 'run' | 'skip' | 'quit';
	confirm: boolean;
	choose: string;
	typed: string | undefined;
	firewall: FirewallWaitAnswer;
};

export type AnswerTo<Q extends Question> = Answers[Q['kind']];

/** The one question interface; a question nobody can answer any more is abandoned when the run's signal aborts. */
export type Ask = <Q extends Question>(question: Q) => Promise<AnswerTo<Q>>;

/** What the engine needs from whoever drives it: the TUI or headless mode. */
export type RunRequest = {
	settings: FarmSettings;
	stages: Stage[];
	ask: Ask;
	onEvent: (event: EngineEvent) => void;
	signal: AbortSignal;
	/** Run state of this farm: journal, lock, progress files, backups. */
	stateDir: string;
	/** The other saved farms: the preflight refuses what their settings take too, as `plan` does. */
	otherFarms?: FarmSettings[];
	/** Persists settings a stage changed (the MAC); absent in tests that don't care. */
	saveSettings?: (settings: FarmSettings) => Promise<void> | void;
	/**
	 * Set when no person watches the run (headless): a stage that needs one
	 * (`attended`) stops the run before it unless `acceptAttended`; `how`
	 * says how to accept it (a flag).
	 */
	unattended?: {acceptAttended: boolean; how: string};
};

export type StageSnapshot = {id: string; title: string; state: StageState; danger: Stage['danger']; error?: string};

/** What a screen shows of a stage: the parts of `Stage` that are not behaviour. */
export type StageInfo = Pick<Stage, 'id' | 'title' | 'summary' | 'danger' | 'skippable'>;

export function stageInfo({id, title, summary, danger, skippable}: StageInfo): StageInfo {
	return {id, title, summary, danger, skippable};
}

/** Starts the engine with the drivers of whoever shows the run (the TUI or headless mode). */
export type StartRun = (drivers: {
	ask: Ask;
	onEvent: (event: EngineEvent) => void;
	signal: AbortSignal;
}) => Promise<'done' | 'failed' | 'stopped'>;
