import type {Host} from '../host/host.js';
import type {FarmSettings} from '../settings/schema.js';

/** What a stage's check found on the real host. */
export type CheckResult =
	{status: 'done'; detail: string} | {status: 'pending'; detail: string} | {status: 'conflict'; detail: string};

export type FileDiff = {path: string; diff: string};

/** Exactly what a stage would do, shown before it runs. */
export type Plan = {
	commands: string[][];
	diffs: FileDiff[];
	notes: string[];
};

export type Danger = 'none' | 'confirm' | 'typed';

export type CopyProgress = {
	bytes: number;
	total: number;
	/** Bytes per second, smoothed. */
	rate: number;
	etaSeconds: number | undefined;
	/** Snapshot fill, 0-100, when known. */
	snapshotPercent?: number;
	/** The copy's rate mode and limit (bytes per second, none: full speed). */
	rateMode?: string;
	rateLimit?: number;
	/** Mean milliseconds per request of the shared disks now, and before the copy began. */
	diskLatencyMs?: number;
	idleLatencyMs?: number;
};

/**
 * Facts a stage produced, kept in the journal so that a resumed run or an
 * undo uses the same values: the MAC, the backups written, the LV Ganeti
 * renamed the target to, bytes copied...
 */
export type Facts = Record<string, string | number | boolean | string[] | undefined>;

export type Prompt = {
	/** Yes or no; with a timeout, no answer in time is a no (the TUI shows the countdown). */
	confirm(message: string, options?: {timeoutSeconds?: number}): Promise<boolean>;
	/** Pick one of the values. */
	choose<T extends string>(message: string, choices: ReadonlyArray<{label: string; value: T}>): Promise<T>;
	/** The admin types `expected` to go on (dangerous stages). */
	typed(message: string, expected: string): Promise<boolean>;
};

export type StageContext = {
	settings: FarmSettings;
	host: Host;
	/** Facts of this run so far; stages add theirs with `record`. */
	facts: Facts;
	record(facts: Facts): Promise<void>;
	/** Saves a change to the farm's settings (the generated MAC), so every later run reuses it. */
	updateSettings(patch: Partial<FarmSettings>): Promise<void>;
	/** Run state directory of this farm (progress files, detached processes' pids). */
	stateDir: string;
	log(text: string): void;
	progress(progress: CopyProgress): void;
	prompt: Prompt;
	signal: AbortSignal;
};

export type Stage = {
	id: string;
	title: string;
	/** The seed's step, for the plan view. */
	summary: string;
	danger: Danger;
	/** Whether skipping leaves later stages able to run. */
	skippable: boolean;
	check(context: StageContext): Promise<CheckResult>;
	plan(context: StageContext): Promise<Plan>;
	apply(context: StageContext): Promise<void>;
	/** Throws when the stage's effect is not there. */
	verify(context: StageContext): Promise<void>;
	/** Removes exactly what this farm's run added. */
	undo(context: StageContext): Promise<void>;
	/** Plan of the undo, shown before `farmclone undo`. */
	undoPlan?(context: StageContext): Promise<Plan>;
};

export class StageError extends Error {
	constructor(
		message: string,
		readonly hint?: string,
	) {
		super(message);
		this.name = 'StageError';
	}
}

export function emptyPlan(): Plan {
	return {commands: [], diffs: [], notes: []};
}
