import type {FarmSettings} from '../settings/schema.js';
import type {Prompt, Stage} from '../stages/types.js';
import type {EngineEvent, StageState} from './events.js';

/** What the engine needs from whoever drives it: the TUI or headless mode. */
export type RunRequest = {
	settings: FarmSettings;
	stages: Stage[];
	prompt: Prompt;
	/** Asked before each stage; headless answers 'run' for every one. */
	confirmStage: StageGate;
	onEvent: (event: EngineEvent) => void;
	signal: AbortSignal;
	/** Run state of this farm: journal, lock, progress files, backups. */
	stateDir: string;
	/** The other saved farms: the preflight refuses what their settings take too, as `plan` does. */
	otherFarms?: FarmSettings[];
	/** Persists settings a stage changed (the MAC); absent in tests that don't care. */
	saveSettings?: (settings: FarmSettings) => Promise<void> | void;
};

export type StageGateRequest = {
	stage: Stage;
	index: number;
	plan: import('../stages/types.js').Plan;
	check: import('../stages/types.js').CheckResult;
};

/** 'run' the stage, 'skip' it (only where skipping is safe), or 'quit' leaving the run resumable. */
export type StageGate = (request: StageGateRequest) => Promise<'run' | 'skip' | 'quit'>;

export type StageSnapshot = {id: string; title: string; state: StageState; danger: Stage['danger']; error?: string};

/** What a screen shows of a stage: the parts of `Stage` that are not behaviour. */
export type StageInfo = Pick<Stage, 'id' | 'title' | 'summary' | 'danger' | 'skippable'>;

/** Starts the engine with the drivers of whoever shows the run (the TUI or headless mode). */
export type StartRun = (drivers: {
	prompt: Prompt;
	confirmStage: StageGate;
	onEvent: (event: EngineEvent) => void;
	signal: AbortSignal;
}) => Promise<'done' | 'failed' | 'stopped'>;
