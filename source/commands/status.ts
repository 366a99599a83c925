import {formatWhen} from '../ui/format.js';
import {madeLines, whatWasMade} from '../engine/made.js';
import {readJournal} from '../engine/journal.js';
import {isLockHeld, readLock} from '../engine/lock.js';
import type {SettingsStore} from '../settings/store.js';
import {allStages} from '../stages/index.js';
import {farmDir} from './context.js';

const marks: Record<string, string> = {pending: '·', running: '…', done: '✔', failed: '✘', skipped: '↷', undone: '↺'};

/** One line for the farm picker: "7/14 done, copy running". */
export async function farmSummary(farm: string): Promise<string> {
	const journal = await readJournal(farmDir(farm));
	if (!journal) return 'not started';
	const done = allStages.filter((stage) => journal.stages[stage.id]?.state === 'done').length;
	const active = allStages.find((stage) => ['running', 'failed'].includes(journal.stages[stage.id]?.state ?? ''));
	const tail = active
		? `, ${active.title} ${journal.stages[active.id]!.state}`
		: journal.outcome
			? `, ${journal.outcome}`
			: '';
	return `${done}/${allStages.length} done${tail}`;
}

export async function statusCommand(store: SettingsStore, farm: string, json: boolean): Promise<number> {
	const settings = store.require(farm);
	const dir = farmDir(farm);
	const journal = await readJournal(dir);
	const lock = await readLock(dir);
	const held = lock ? await isLockHeld(lock) : false;
	if (json) {
		const lockState = lock ? {...lock, held} : null;
		process.stdout.write(`${JSON.stringify({farm, lock: lockState, journal: journal ?? null}, null, 2)}\n`);
		return 0;
	}

	if (!journal) {
		process.stdout.write(`${farm}: not started\n`);
		return 0;
	}

	const lines = [
		`${farm}: ${journal.mode}${journal.outcome ? `, ${journal.outcome}` : ', unfinished'} (started ${formatWhen(journal.startedAt)}, updated ${formatWhen(journal.updatedAt)})`,
	];
	if (lock && held) lines.push(`in use by pid ${lock.pid} on ${lock.host} since ${formatWhen(lock.since)}`);
	if (lock && !held) {
		lines.push(`left by pid ${lock.pid} (${lock.command}), which no longer runs: the next run or undo takes it over`);
	}
	const titleWidth = Math.max(...allStages.map((stage) => stage.title.length));
	for (const [index, stage] of allStages.entries()) {
		const record = journal.stages[stage.id];
		const state = record?.state ?? 'pending';
		lines.push(
			`${marks[state] ?? '?'} ${String(index + 1).padStart(2)} ${stage.title.padEnd(titleWidth)} ${state}${record?.error ? `: ${record.error}` : ''}`,
		);
	}

	// The stages' state is for --json; a person reads what the run made.
	if (journal.mode === 'run' && journal.outcome === 'done')
		lines.push('', ...madeLines(whatWasMade(settings, journal.states)));

	process.stdout.write(`${lines.join('\n')}\n`);
	return 0;
}
