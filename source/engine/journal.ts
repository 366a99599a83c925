import fs from 'node:fs/promises';
import path from 'node:path';
import {writeFileAtomic} from '../host/atomic.js';
import type {Facts} from '../stages/types.js';
import type {StageState} from './events.js';

export type StageRecord = {
	state: StageState;
	startedAt?: string;
	endedAt?: string;
	error?: string;
	/** What the last check found, in words, for `status` and the resume screen. */
	detail?: string;
};

export type Journal = {
	version: 1;
	farm: string;
	startedAt: string;
	updatedAt: string;
	mode: 'run' | 'undo';
	outcome?: 'done' | 'failed' | 'stopped' | 'undone';
	stages: Record<string, StageRecord>;
	facts: Facts;
};

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

	const journal = JSON.parse(text) as Journal;
	if (journal.version !== 1 || typeof journal.stages !== 'object') {
		throw new Error(`${journalPath(farmDir)} is not a farmclone journal`);
	}

	return journal;
}

export function newJournal(farm: string): Journal {
	const now = new Date().toISOString();
	return {version: 1, farm, startedAt: now, updatedAt: now, mode: 'run', stages: {}, facts: {}};
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

	constructor(
		readonly farmDir: string,
		readonly journal: Journal,
	) {}

	async update(change: (journal: Journal) => void): Promise<void> {
		change(this.journal);
		this.journal.updatedAt = new Date().toISOString();
		const text = `${JSON.stringify(this.journal, null, '\t')}\n`;
		const write = this.chain.then(async () => {
			await fs.mkdir(this.farmDir, {recursive: true, mode: 0o700});
			await writeFileAtomic(journalPath(this.farmDir), text, {mode: 0o600});
		});
		this.chain = write.catch(() => undefined);
		await write;
	}

	async setStage(id: string, record: Partial<StageRecord>): Promise<void> {
		await this.update((journal) => {
			journal.stages[id] = {...(journal.stages[id] ?? {state: 'pending'}), ...record};
		});
	}

	async addFacts(facts: Facts): Promise<void> {
		await this.update((journal) => {
			Object.assign(journal.facts, facts);
		});
	}
}
