import type {Made} from './made.js';
import type {CommandRecord} from '../host/host.js';
import type {CheckResult, CopyProgress, Plan} from '../stages/types.js';

export type StageState = 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'undone';

export type EngineEvent =
	| {type: 'run-start'; farm: string; resumed: boolean; at: string}
	| {type: 'check'; stage: string; result: CheckResult}
	/** Before the first stage: the preflight's checks done so far, and those still running. */
	| {type: 'preflight'; done: number; total: number; running: string[]}
	| {type: 'plan'; stage: string; plan: Plan}
	| {type: 'stage-start'; stage: string; title: string}
	| {type: 'stage-done'; stage: string; title: string; seconds: number}
	| {type: 'stage-skipped'; stage: string; title: string; reason: string}
	| {type: 'stage-failed'; stage: string; title: string; error: string; hint?: string}
	| {type: 'stage-undone'; stage: string; title: string}
	/** A stage done earlier that the host no longer shows done (a rollback put its files back): to do again. */
	| {type: 'stage-reopened'; stage: string; title: string; detail: string}
	| {type: 'command'; stage: string; command: CommandRecord}
	| {type: 'log'; stage: string; text: string}
	| {type: 'progress'; stage: string; progress: CopyProgress}
	| {
			type: 'run-end';
			farm: string;
			outcome: 'done' | 'failed' | 'stopped' | 'undone';
			message?: string;
			/** On a done run: what it made. */
			made?: Made;
	  };

export type EventListener = (event: EngineEvent) => void;
