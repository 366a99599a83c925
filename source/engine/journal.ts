import fs from 'node:fs/promises';
import path from 'node:path';
import {writeFileAtomic} from '../host/atomic.js';
import type {StageStates, StateValue} from '../stages/state.js';
import type {StageState} from './events.js';

export type StageRecord = {
	state: StageState;
	startedAt?: string;
	endedAt?: string;
	error?: string;
	/** What the last check found, in words, for `status` and the resume screen. */
	detail?: string;
};

/**
 * Version 2 keeps each stage's state in its own slot (`states`). Version 1
 * kept one flat map of facts named `stage.key` (`copy.pid`); it is read and
 * turned into slots (`states.copy.pid`), and written back as version 2.
 */
export const journalVersion = 2;

export type Journal = {
	version: typeof journalVersion;
	farm: string;
	startedAt: string;
	updatedAt: string;
	mode: 'run' | 'undo';
	outcome?: 'done' | 'failed' | 'stopped' | 'undone';
	stages: Record<string, StageRecord>;
	states: StageStates;
};

type JournalV1 = Omit<Journal, 'version' | 'states'> & {version: 1; facts: Record<string, StateValue>};

/** `copy.pid` -> states.copy.pid; `firewall-rule.undo.watchdogPid` -> states['firewall-rule'].undo.watchdogPid. */
export function statesFromFacts(facts: Record<string, StateValue>): StageStates {
	const states: StageStates = {};
	for (const [key, value] of Object.entries(facts)) {
		const [stage = '', ...path] = key.split('.');
		const last = path.pop();
		if (!stage || last === undefined) continue;
		let slot: Record<string, StateValue> = (states[stage] ??= {});
		for (const part of path) {
			const inner = slot[part];
			slot = (slot[part] = typeof inner === 'object' && !Array.isArray(inner) ? inner : {}) as Record<
				string,
				StateValue
			>;
		}

		slot[last] = value;
	}

	return states;
}

export function farmStateDir(stateRoot: string, farm: string): string {
	return path.join(stateRoot, farm);
}

export function journalPath(farmDir: string): string {
	return path.join(farmDir, 'journal.json');
}

export async function readJournal(farmDir: string): Promise<Journal | undefined> {
	let text: string;
	try {
		text = await fs.readFile(journalPath(farmDir), 'utf8');
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
		throw error;
	}

	const parsed = JSON.parse(text) as Journal | JournalV1 | {version?: unknown; stages?: unknown};
	if (typeof parsed.stages !== 'object' || parsed.stages === null || typeof parsed.version !== 'number') {
		throw new Error(`${journalPath(farmDir)} is not a farmclone journal`);
	}

	if (parsed.version === 1) {
		const {facts, ...rest} = parsed as JournalV1;
		return {...rest, version: journalVersion, states: statesFromFacts(facts ?? {})};
	}

	if (parsed.version !== journalVersion) {
		throw new Error(
			`${journalPath(farmDir)} was written by another farmclone (journal version ${parsed.version}); this one reads versions 1 and ${journalVersion}: finish or undo that run with the farmclone that started it`,
		);
	}

	const journal = parsed as Journal;
	journal.states ??= {};
	return journal;
}

export function newJournal(farm: string): Journal {
	const now = new Date().toISOString();
	return {version: journalVersion, farm, startedAt: now, updatedAt: now, mode: 'run', stages: {}, states: {}};
}

/** Whether the journal holds work a later run can finish or undo. */
export function isUnfinished(journal: Journal | undefined): boolean {
	if (!journal) return false;
	if (journal.mode === 'undo') return journal.outcome !== 'undone';
	return journal.outcome !== 'done' && Object.values(journal.stages).some((stage) => stage.state !== 'pending');
}

/**
 * Durable journal: every change is written atomically before the engine goes
 * on, so that a kill -9 at any moment leaves the last state that was true.
 * Writes are serialised; callers await them.
 */
export class JournalWriter {
	private chain: Promise<void> = Promise.resolve();
	/** Set once the gate of holdWritesUntil rejected: no write reaches the file after it. */
	private refusal: {error: unknown} | undefined;

	constructor(
		readonly farmDir: string,
		readonly journal: Journal,
	) {}

	async update(change: (journal: Journal) => void): Promise<void> {
		change(this.journal);
		this.journal.updatedAt = new Date().toISOString();
		const text = `${JSON.stringify(this.journal, null, '\t')}\n`;
		const write = this.chain.then(async () => {
			if (this.refusal) throw this.refusal.error;
			await fs.mkdir(this.farmDir, {recursive: true, mode: 0o700});
			await writeFileAtomic(journalPath(this.farmDir), text, {mode: 0o600});
		});
		this.chain = write.catch(() => undefined);
		await write;
	}

	/**
	 * Writes from now on reach the file only once `gate` has resolved. If it rejects, they and every
	 * later write reject with its error, and the file stays as it was: the run's preflight, which must
	 * pass before the run records anything, while its first gate is already shown.
	 */
	holdWritesUntil(gate: Promise<unknown>): void {
		this.chain = this.chain
			.then(async () => {
				await gate;
			})
			.catch((error: unknown) => {
				this.refusal = {error};
			});
	}

	async setStage(id: string, record: Partial<StageRecord>): Promise<void> {
		await this.update((journal) => {
			journal.stages[id] = {...(journal.stages[id] ?? {state: 'pending'}), ...record};
		});
	}

	/** Merges `patch` into the stage's slot (undefined removes a field, as JSON drops it). */
	async saveState(stage: string, patch: Record<string, StateValue>): Promise<void> {
		await this.update((journal) => {
			journal.states[stage] = {...journal.states[stage], ...patch};
		});
	}
}
