import type {Host, ReadOnlyHost} from '../host/host.js';
import type {FarmSettings} from '../settings/schema.js';
import type {StageStates, StateValue} from './state.js';

export type {StageStates};

/**
 * What a stage's check found on the real host. `awaits` names the earlier
 * stage that makes what is missing (the volume to adopt, the instance to
 * start): in a run that stage has run, so it is the status as it is; for
 * `farmclone plan`, while that stage is not done, it is "not yet".
 */
export type CheckResult =
	| {status: 'done'; detail: string}
	/**
	 * `underway`: work an earlier session approved is still going on without
	 * farmclone (a detached dd, a firewall watchdog) or ended while it was
	 * away; the run follows it without asking again.
	 */
	| {status: 'pending'; detail: string; awaits?: string; underway?: true}
	| {status: 'conflict'; detail: string; awaits?: string};

import type {FileDiff} from '../host/diff.js';

export type {FileDiff};

/**
 * One file a plan writes: its whole new content (undefined: removed), the
 * content it was computed from, and that content's hash, which apply
 * compares with the file right before writing.
 */
export type FileEdit = {path: string; before: string | undefined; beforeHash: string; after: string | undefined};

/**
 * Exactly what a stage would do, shown before it runs. It is also what apply
 * carries out: the commands, the files' new content, and the values it chose
 * (the SOA serials, the MAC); apply computes nothing the admin did not see.
 */
export type Plan = {
	commands: string[][];
	diffs: FileDiff[];
	notes: string[];
	/** The files written, in order. */
	edits?: FileEdit[];
	/** Hashes of the other files the plan was computed from (includes), by path. */
	basis?: Record<string, string>;
	/** Values computed once, in the plan, and used as they are by apply. */
	values?: Record<string, string>;
	/** Why apply must refuse this plan (a conflict found while planning). */
	refusal?: string;
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
	/** Other processes' requests per second on those disks: what makes `auto` hold back. */
	otherRequestsPerSecond?: number;
};

export type FirewallWaitAnswer = 'confirmed' | 'keep-without-proof' | 'roll-back' | 'expired' | 'headless';

/** After a Shorewall restart: wait for `command` from a new SSH connection, or for the admin's choice. */
export type FirewallWaitRequest = {
	farm: string;
	command: string;
	/** Epoch ms: the previous firewall comes back then. */
	deadline: number;
	/** Resolves when a new connection confirmed: who, from where, when. */
	confirmed: Promise<{proof: string; at: string; detail: string; client?: string}>;
};

export type Prompt = {
	/** Yes or no; with a timeout, no answer in time is a no (the TUI shows the countdown). */
	confirm(message: string, options?: {timeoutSeconds?: number}): Promise<boolean>;
	/** Pick one of the values. */
	choose<T extends string>(message: string, choices: ReadonlyArray<{label: string; value: T}>): Promise<T>;
	/** The admin types `expected` to go on (dangerous stages). */
	typed(message: string, expected: string): Promise<boolean>;
	/** The firewall's waiting screen; without it, a timed confirm stands in (yes waits for the proof, no rolls back). */
	firewallWait?(request: FirewallWaitRequest): Promise<FirewallWaitAnswer>;
};

export type StageContext = {
	settings: FarmSettings;
	host: Host;
	/** Every stage's state of this run so far (read through the owners' readers, stages/state.ts). */
	states: Readonly<StageStates>;
	/** Saves into a stage's slot in the journal; the engine accepts the running stage's own slot only. */
	saveState(stage: string, patch: Record<string, StateValue>): Promise<void>;
	/** Saves a change to the farm's settings (the generated MAC), so every later run reuses it. */
	updateSettings(patch: Partial<FarmSettings>): Promise<void>;
	/** Run state directory of this farm (progress files, detached processes' pids). */
	stateDir: string;
	log(text: string): void;
	progress(progress: CopyProgress): void;
	prompt: Prompt;
	signal: AbortSignal;
};

/**
 * What check and plan get: the run's context without anything that changes
 * the host, the journal or the settings. The host's write methods are not
 * there (and throw at run time, in the engine's view), there is no saveState,
 * no updateSettings, no prompt: looking never touches.
 */
export type LookContext = Omit<StageContext, 'host' | 'saveState' | 'updateSettings' | 'prompt' | 'progress'> & {
	host: ReadOnlyHost;
};

/**
 * One look of the preflight, before the run's first stage changes anything:
 * it adds a finding for each problem, naming the setting concerned. Several
 * stages may list the same check; it runs once.
 */
export type PreflightCheck = ((context: PreflightContext) => Promise<void>) & {
	/** Started before the others, as the preflight waits for it longest (shorewall check compiles the whole firewall). */
	slow?: boolean;
};

export type PreflightContext = {
	host: ReadOnlyHost;
	settings: FarmSettings;
	/** What this farm's run already made (its stages' state) is not in the way. */
	states: Readonly<StageStates>;
	add(field: keyof FarmSettings, reason: string): void;
};

export type Stage = {
	id: string;
	title: string;
	/** The seed's step, for the plan view. */
	summary: string;
	danger: Danger;
	/** Whether skipping leaves later stages able to run. */
	skippable: boolean;
	/**
	 * What a person must watch for while the stage runs (the firewall's proof
	 * of new SSH connections): without one (headless) the engine stops before
	 * the stage unless the run accepts it unattended.
	 */
	attended?: string;
	/** What the preflight looks at for this stage (checkers, conflicts, room, ownership). */
	preflight?: readonly PreflightCheck[];
	/** Looks only: a read-only host, nothing to record (the engine's host view throws on a write). */
	check(context: LookContext): Promise<CheckResult>;
	/** Looks only: a read-only host, nothing to record (the engine's host view throws on a write). */
	plan(context: LookContext): Promise<Plan>;
	/**
	 * Carries out `plan`, the one the admin approved, and nothing else; throws
	 * StalePlanError, before changing anything, when what the plan was computed
	 * from has changed. Without a plan (headless callers, tests) it plans first.
	 */
	apply(context: StageContext, plan?: Plan): Promise<void>;
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

/**
 * The host is no longer what the approved plan was computed from: nothing was
 * changed, and the engine shows the new plan for a fresh approval.
 */
export class StalePlanError extends StageError {
	constructor(readonly what: string) {
		super(`the host changed since you approved this plan: ${what}`, 'read the new plan and approve it again');
		this.name = 'StalePlanError';
	}
}

export function emptyPlan(): Plan {
	return {commands: [], diffs: [], notes: []};
}
