import {appendFileSync, mkdirSync} from 'node:fs';
import path from 'node:path';
import {Host, lookingHost, readOnlyHost, type CommandRecord, type ReadOnlyHost} from '../host/host.js';
import {formatArgv, formatClock, formatWhen} from '../ui/format.js';
import type {FarmSettings} from '../settings/schema.js';
import {
	StageError,
	StalePlanError,
	type CheckResult,
	type Plan,
	type Prompt,
	type Stage,
	type LookContext,
	type StageContext,
} from '../stages/types.js';
import type {Ask, RunRequest} from './api.js';
import type {EngineEvent, StageState} from './events.js';
import {isUnfinished, JournalWriter, newJournal, readJournal, type Journal} from './journal.js';
import {assertPreflight} from './preflight.js';
import {whatWasMade} from './made.js';
import {farmcloneCommand} from '../host/self.js';

export type Outcome = 'done' | 'failed' | 'stopped';

export class AbortedError extends Error {
	constructor() {
		super('stopped by the admin; the run can be resumed');
		this.name = 'AbortedError';
	}
}

type Session = {
	journal: JournalWriter;
	host: Host;
	currentStage: {id: string};
	emit: (event: EngineEvent) => void;
};

async function openSession(request: {
	settings: FarmSettings;
	stateDir: string;
	onEvent: (event: EngineEvent) => void;
}): Promise<Session & {resumed: boolean}> {
	const existing = await readJournal(request.stateDir);
	const journal = new JournalWriter(request.stateDir, existing ?? newJournal(request.settings.name));
	const currentStage = {id: ''};
	const host = new Host({
		commandPath: request.settings.commandPath,
		backupDir: path.join(request.stateDir, 'backups'),
		onCommand(command) {
			const log = keepCommand(request.stateDir, command);
			request.onEvent({type: 'command', stage: currentStage.id, command: log ? {...command, log} : command});
		},
	});
	return {journal, host, currentStage, emit: request.onEvent, resumed: isUnfinished(existing)};
}

/**
 * Appends the command's whole output to the run's command log: the screen
 * and the headless lines show a tail and say where the rest is. Returns the
 * log's path, or undefined when it cannot be written (the run goes on).
 */
function keepCommand(stateDir: string, command: CommandRecord): string | undefined {
	const log = path.join(stateDir, 'commands.log');
	const section = (name: string, text: string) =>
		text ? `--- ${name}\n${text.endsWith('\n') ? text : `${text}\n`}` : '';
	const entry = `=== ${formatClock(Date.now())} $ ${formatArgv(command.argv)} -> exit ${command.exitCode} (${command.durationMs} ms)\n${section('stdout', command.stdout)}${section('stderr', command.stderr)}`;
	try {
		mkdirSync(stateDir, {recursive: true});
		appendFileSync(log, entry);
		return log;
	} catch {
		return undefined;
	}
}

export function stageContext(
	session: Session,
	settings: FarmSettings,
	stage: Stage,
	prompt: Prompt,
	signal: AbortSignal,
	stateDir: string,
	saveSettings?: RunRequest['saveSettings'],
): StageContext {
	return {
		settings,
		async updateSettings(patch) {
			Object.assign(settings, patch);
			await saveSettings?.(settings);
		},
		host: session.host,
		states: session.journal.journal.states,
		async saveState(owner, patch) {
			// A stage's state is its own: what another stage needs of it goes through the owner's readers.
			if (owner !== stage.id) throw new Error(`stage ${stage.id} cannot write the state of ${owner}`);
			await session.journal.saveState(owner, patch);
		},
		stateDir,
		log: (text) => session.emit({type: 'log', stage: stage.id, text}),
		progress: (progress) => session.emit({type: 'progress', stage: stage.id, progress}),
		prompt,
		signal,
	};
}

/**
 * What `promise` gives, unless `signal` aborts first: then AbortedError. A
 * question nobody can answer any more (the terminal is gone with the SSH
 * session) must not hold the engine away from its next safe point.
 */
export async function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
	if (signal.aborted) throw new AbortedError();
	let onAbort: () => void = () => undefined;
	const aborted = new Promise<never>((_resolve, reject) => {
		onAbort = () => reject(new AbortedError());
		signal.addEventListener('abort', onAbort, {once: true});
	});
	try {
		return await Promise.race([promise, aborted]);
	} finally {
		signal.removeEventListener('abort', onAbort);
	}
}

/** `ask`, given up when the run's signal aborts. */
function abortable(ask: Ask, signal: AbortSignal): Ask {
	return async (question) => unlessAborted(ask(question), signal);
}

/** What stages ask, as questions of the one interface; a typed answer counts only when it is what was expected. */
export function promptFrom(ask: Ask): Prompt {
	return {
		confirm: async (message, options) => ask({kind: 'confirm', message, timeoutSeconds: options?.timeoutSeconds}),
		async choose(message, choices) {
			const value = await ask({kind: 'choose', message, choices});
			const chosen = choices.find((choice) => choice.value === value);
			if (!chosen) throw new Error(`"${value}" is not one of the choices`);
			return chosen.value;
		},
		typed: async (message, expected) => (await ask({kind: 'typed', message, expected})) === expected,
		firewallWait: async (request) => ask({kind: 'firewall', request}),
	};
}

/**
 * The engine's own rule for a dangerous stage: it runs only once the farm's
 * name is typed, asked right after its gate said run. Undefined when it was;
 * else why the run stops before the stage.
 */
async function typedRefusal(ask: Ask, stage: Stage, farm: string): Promise<string | undefined> {
	if (stage.danger !== 'typed') return undefined;
	const typed = await ask({
		kind: 'typed',
		stage,
		message: `Type the farm's name to run ${stage.title}`,
		expected: farm,
	});
	if (typed === farm) return undefined;
	const given = typed ? ` ("${typed}" is not ${farm})` : '';
	return `${stage.title} runs only once the farm's name is typed${given}: not run; the run stays resumable`;
}

/**
 * Before the first question of a resumed run: what the journal says of each
 * stage it recorded, and what the host shows now (the host wins).
 */
async function announceResume(
	session: Session,
	stages: Stage[],
	context: (stage: Stage) => StageContext,
	farm: string,
	look: ReadOnlyHost,
): Promise<void> {
	const {journal, emit} = session;
	const recorded = stages.filter((stage) => (journal.journal.stages[stage.id]?.state ?? 'pending') !== 'pending');
	if (recorded.length === 0) return;
	emit({
		type: 'log',
		stage: 'resume',
		text: `resuming the run of ${farm} started ${formatWhen(journal.journal.startedAt)}; checking the host for the ${recorded.length} stages the journal recorded`,
	});
	for (const stage of recorded) {
		const state = journal.journal.stages[stage.id]!.state;
		session.currentStage.id = stage.id;
		let found: string;
		if (state === 'skipped') {
			found = 'skipped in an earlier session';
		} else {
			try {
				const check = await stage.check(lookContext(context(stage), look));
				found = `${check.status === 'done' ? 'found done' : check.status === 'pending' ? 'not finished' : 'conflict'}: ${check.detail}`;
			} catch (error) {
				found = `cannot check yet: ${describe(error).error}`;
			}
		}

		emit({type: 'log', stage: stage.id, text: `resume: ${stage.title}: ${found} (journal: ${state})`});
	}
}

/**
 * After a stage failed while changing the host: the stages done before it
 * are checked again, and those it undid (a firewall rollback puts the rule
 * files back) are marked to do again, so that the screen, the journal and
 * `farmclone status` tell the host as it is.
 */
async function reopenUndone(session: Session, done: Stage[], context: (stage: Stage) => StageContext): Promise<void> {
	const {journal, emit} = session;
	for (const stage of done) {
		if (journal.journal.stages[stage.id]?.state !== 'done') continue;
		session.currentStage.id = stage.id;
		const check = await stage.check(lookContext(context(stage))).catch(() => undefined);
		if (!check || check.status === 'done') continue;
		await journal.setStage(stage.id, {state: 'pending', detail: check.detail, endedAt: undefined});
		emit({type: 'stage-reopened', stage: stage.id, title: stage.title, detail: check.detail});
	}
}

/**
 * The stage's context for looking (check, plan): the same, with a host whose file writes throw; `look`
 * (a lookingHost) when the check and plan share their reads with others of the same look.
 */
export function lookContext(context: StageContext, look?: ReadOnlyHost): LookContext {
	const {saveState: _save, updateSettings: _update, prompt: _prompt, progress: _progress, ...rest} = context;
	return {...rest, host: look ?? readOnlyHost(context.host)};
}

/** How many times in a row a stage's plan may go stale before the run stops. */
const maxStalePlans = 5;

function describe(error: unknown): {error: string; hint?: string} {
	if (error instanceof StageError)
		return error.hint ? {error: error.message, hint: error.hint} : {error: error.message};
	return {error: error instanceof Error ? error.message : String(error)};
}

/**
 * Runs the stages in order. Before each: check the real host (resume trusts
 * the host first, the journal second), show the plan, ask. Every state change
 * is in the journal before the engine moves on.
 */
export async function runEngine(request: RunRequest): Promise<Outcome> {
	const {settings, stages, signal, stateDir} = request;
	const session = await openSession(request);
	const {journal, emit} = session;
	if (journal.journal.mode === 'undo') {
		throw new StageError(
			`the last operation on ${settings.name} was an undo that did not finish`,
			`run: ${farmcloneCommand(['undo', settings.name])}`,
		);
	}

	// One look from the preflight to the first gate: the first stage's check and plan reuse the preflight's listings.
	let look = lookingHost(session.host);
	let checking: string[] = [];
	const preflightRun = assertPreflight(
		look,
		settings,
		journal.journal.states,
		stages,
		request.otherFarms,
		(progress) => {
			checking = progress.running;
			emit({type: 'preflight', ...progress});
		},
	);
	/*
	 * The preflight must pass before the run changes anything, its own journal included: every write waits
	 * for it, and a refusal leaves the journal as it was (each write then throws the refusal). A person reads
	 * the first gate meanwhile, while the slowest checks (shorewall check) finish; without a terminal
	 * nothing is shown early, so the run waits for the preflight first.
	 */
	journal.holdWritesUntil(preflightRun);
	// Its first write, once the preflight passed; any later write waits behind it and throws as it does.
	journal
		.update((state) => {
			state.outcome = undefined;
		})
		.catch(() => undefined);
	if (request.unattended) await preflightRun;
	/** The gate's answer, unless the preflight refuses first: its refusal then replaces the gate. */
	const unlessRefused = async <T>(answer: Promise<T>): Promise<T> =>
		Promise.race([answer, preflightRun.then(async () => answer)]);
	emit({type: 'run-start', farm: settings.name, resumed: session.resumed, at: new Date().toISOString()});
	const ask = abortable(request.ask, signal);
	const prompt = promptFrom(ask);
	const contextFor = (stage: Stage) =>
		stageContext(session, settings, stage, prompt, signal, stateDir, request.saveSettings);
	if (session.resumed) await announceResume(session, stages, contextFor, settings.name, look);

	const finish = async (outcome: Outcome, message?: string): Promise<Outcome> => {
		await journal.update((state) => {
			state.outcome = outcome;
		});
		const made = outcome === 'done' ? whatWasMade(settings, (await readJournal(stateDir))?.states ?? {}) : undefined;
		emit({type: 'run-end', farm: settings.name, outcome, message, ...(made ? {made} : {})});
		return outcome;
	};

	stages: for (const [index, stage] of stages.entries()) {
		if (signal.aborted) return finish('stopped');
		session.currentStage.id = stage.id;
		const context = contextFor(stage);
		const recorded = journal.journal.stages[stage.id]?.state ?? 'pending';
		if (recorded === 'skipped') {
			emit({type: 'stage-skipped', stage: stage.id, title: stage.title, reason: 'skipped in an earlier session'});
			continue;
		}

		let stale = 0;
		let started = 0;
		for (;;) {
			let check: CheckResult;
			try {
				check = await stage.check(lookContext(context, look));
			} catch (error) {
				const failure = describe(error);
				await journal.setStage(stage.id, {state: 'failed', error: failure.error, endedAt: new Date().toISOString()});
				emit({type: 'stage-failed', stage: stage.id, title: stage.title, ...failure});
				return finish('failed', failure.error);
			}

			emit({type: 'check', stage: stage.id, result: check});
			if (check.status === 'done') {
				if (recorded !== 'done') await journal.setStage(stage.id, {state: 'done', detail: check.detail});
				emit({type: 'stage-done', stage: stage.id, title: stage.title, seconds: 0});
				continue stages;
			}

			if (check.status === 'conflict') {
				await journal.setStage(stage.id, {state: 'failed', error: check.detail, detail: check.detail});
				emit({type: 'stage-failed', stage: stage.id, title: stage.title, error: check.detail});
				return finish('failed', check.detail);
			}

			let plan: Plan;
			try {
				plan = await stage.plan(lookContext(context, look));
			} catch (error) {
				const failure = describe(error);
				await journal.setStage(stage.id, {state: 'failed', error: failure.error});
				emit({type: 'stage-failed', stage: stage.id, title: stage.title, ...failure});
				return finish('failed', failure.error);
			}

			emit({type: 'plan', stage: stage.id, plan});
			// Work approved in an earlier session and still under way is followed, not asked about again.
			const following = check.status === 'pending' && check.underway === true && recorded === 'running';
			if (following) emit({type: 'log', stage: stage.id, text: `following without asking: ${check.detail}`});
			const {unattended} = request;
			if (!following && unattended && stage.attended && !unattended.acceptAttended) {
				emit({
					type: 'log',
					stage: stage.id,
					text: `stopping before ${stage.id}: without a terminal it runs only ${unattended.how} (${stage.attended}); the run stays resumable`,
				});
				return finish('stopped');
			}

			const stopped = (error: unknown) => {
				if (error instanceof AbortedError) return 'quit' as const;
				throw error;
			};
			const answer = following
				? 'run'
				: await unlessRefused(ask({kind: 'gate', stage, index, plan, check})).catch(stopped);
			// An answer before the preflight passed: the stage's first write waits for it (holdWritesUntil).
			if (checking.length > 0)
				emit({
					type: 'log',
					stage: stage.id,
					text: `starts once the preflight passes (checking ${checking.join(', ')})`,
				});
			// Time passed at the gate, and what follows may change the host: the next look reads afresh.
			look = lookingHost(session.host);
			if (answer === 'quit' || signal.aborted) return finish('stopped');
			const refusal =
				following || answer !== 'run' ? undefined : await typedRefusal(ask, stage, settings.name).catch(stopped);
			if (refusal === 'quit' || signal.aborted) return finish('stopped');
			if (refusal) {
				emit({type: 'log', stage: stage.id, text: refusal});
				return finish('stopped');
			}

			if (answer === 'skip' && stage.skippable) {
				await journal.setStage(stage.id, {state: 'skipped', endedAt: new Date().toISOString()});
				emit({type: 'stage-skipped', stage: stage.id, title: stage.title, reason: 'skipped by the admin'});
				continue stages;
			}

			started = Date.now();
			await journal.setStage(stage.id, {state: 'running', startedAt: new Date().toISOString(), error: undefined});
			emit({type: 'stage-start', stage: stage.id, title: stage.title});
			try {
				await stage.apply(context, plan);
				if (signal.aborted) throw new AbortedError();
				await stage.verify(context);
			} catch (error) {
				if (error instanceof StalePlanError && stale < maxStalePlans) {
					// Nothing was changed: back to the gate with the plan of the host as it is now.
					stale++;
					await journal.setStage(stage.id, {state: recorded, startedAt: undefined});
					emit({type: 'log', stage: stage.id, text: `${error.message}; the new plan needs your approval`});
					continue;
				}

				if (signal.aborted || error instanceof AbortedError) {
					// Left 'running': the next session's check says how far it got.
					return finish('stopped');
				}

				const failure = describe(error);
				await journal.setStage(stage.id, {state: 'failed', error: failure.error, endedAt: new Date().toISOString()});
				emit({type: 'stage-failed', stage: stage.id, title: stage.title, ...failure});
				await reopenUndone(session, stages.slice(0, index), contextFor);
				return finish('failed', failure.error);
			}

			break;
		}

		await journal.setStage(stage.id, {state: 'done', endedAt: new Date().toISOString()});
		emit({type: 'stage-done', stage: stage.id, title: stage.title, seconds: (Date.now() - started) / 1000});
	}

	return finish('done');
}

/** An undo asks what a run asks, and once, after every undo's plan is shown, the farm's name typed. */
export type UndoRequest = Omit<RunRequest, 'unattended'>;

const undoable: ReadonlySet<StageState> = new Set(['done', 'running', 'failed', 'undone']);

/** Reverses the stages this farm's run touched, last first. Resumable: an undone stage stays undone. */
export async function runUndo(request: UndoRequest): Promise<Outcome> {
	const {settings, stages, signal, stateDir} = request;
	const session = await openSession(request);
	const {journal, emit} = session;
	const touched = stages.filter((stage) => undoable.has(journal.journal.stages[stage.id]?.state ?? 'pending'));
	const todo = touched.filter((stage) => journal.journal.stages[stage.id]?.state !== 'undone').reverse();
	emit({
		type: 'run-start',
		farm: settings.name,
		resumed: journal.journal.mode === 'undo',
		at: new Date().toISOString(),
	});
	const ask = abortable(request.ask, signal);
	const prompt = promptFrom(ask);
	const contextFor = (stage: Stage) =>
		stageContext(session, settings, stage, prompt, signal, stateDir, request.saveSettings);
	const end = async (outcome: 'undone' | 'failed' | 'stopped', message?: string): Promise<Outcome> => {
		if (outcome === 'undone') {
			// A clean slate: the next run starts from the first stage, as if there had been none.
			await journal.update((state) => {
				state.outcome = 'undone';
				state.stages = {};
				state.states = {};
				state.mode = 'run';
			});
		} else if (journal.journal.mode === 'undo') {
			await journal.update((state) => {
				state.outcome = outcome;
			});
		}

		emit({type: 'run-end', farm: settings.name, outcome, message});
		return outcome === 'undone' ? 'done' : outcome;
	};

	if (todo.length === 0) {
		// Every stage undone but the clean slate not written yet (killed just before): write it now.
		return journal.journal.mode === 'undo' ? end('undone') : end('undone', 'nothing to undo');
	}

	const plans: Array<{stage: Stage; plan: Plan}> = [];
	for (const stage of todo) {
		session.currentStage.id = stage.id;
		const context = contextFor(stage);
		let plan: Plan;
		try {
			plan = stage.undoPlan ? await stage.undoPlan(context) : {commands: [], diffs: [], notes: [stage.summary]};
		} catch (error) {
			plan = {commands: [], diffs: [], notes: [`cannot plan the undo yet: ${describe(error).error}`]};
		}

		plans.push({stage, plan});
		emit({type: 'plan', stage: stage.id, plan});
	}

	const typed = await ask({
		kind: 'typed',
		undo: plans.length,
		message: `Undo ${plans.length} stages of ${settings.name}, last first. This deletes the clone's disk and instance. Type ${settings.name} to go on:`,
		expected: settings.name,
	}).catch((error: unknown) => {
		if (error instanceof AbortedError) return undefined;
		throw error;
	});
	if (typed !== settings.name) return end('stopped', signal.aborted ? 'stopped' : 'undo not confirmed');

	await journal.update((state) => {
		state.mode = 'undo';
		state.outcome = undefined;
	});
	for (const stage of todo) {
		if (signal.aborted) return end('stopped', 'stopped; run farmclone undo again to finish');
		session.currentStage.id = stage.id;
		emit({type: 'stage-start', stage: stage.id, title: `undo ${stage.title}`});
		try {
			await stage.undo(contextFor(stage));
		} catch (error) {
			if (signal.aborted || error instanceof AbortedError) {
				return end('stopped', 'stopped; run farmclone undo again to finish');
			}

			const failure = describe(error);
			emit({type: 'stage-failed', stage: stage.id, title: `undo ${stage.title}`, ...failure});
			return end('failed', failure.error);
		}

		await journal.setStage(stage.id, {state: 'undone', endedAt: new Date().toISOString()});
		emit({type: 'stage-undone', stage: stage.id, title: stage.title});
	}

	return end('undone');
}

export type {Journal};
