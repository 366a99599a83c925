import {runUndo} from '../engine/engine.js';
import {acquireLock} from '../engine/lock.js';
import {createHeadlessDrivers, createHeadlessPrinter} from '../headless.js';
import type {SettingsStore} from '../settings/store.js';
import {allStages} from '../stages/index.js';
import {renderRun} from '../ui/render-run.js';
import {farmDir, guardSession, isInteractive, UsageError} from './context.js';
import {leaveStoppedScreen, stageInfos} from './run.js';
import type {StageState} from '../engine/events.js';
import {readJournal} from '../engine/journal.js';

export async function undoCommand(
	store: SettingsStore,
	farm: string,
	flags: {yes: boolean; json: boolean; confirm?: string},
): Promise<number> {
	const settings = store.require(farm);
	if (!flags.yes && !isInteractive()) {
		throw new UsageError('farmclone undo needs a terminal for its typed confirmation; use --yes --confirm NAME');
	}

	if (flags.yes && flags.confirm !== farm) {
		throw new UsageError(`undo deletes the clone's disk: rerun with --yes --confirm ${farm}`);
	}

	const dir = farmDir(farm);
	const release = await acquireLock(dir, `farmclone undo ${farm}`);
	const guard = guardSession(new AbortController());
	try {
		const journal = await readJournal(dir);
		const printer = createHeadlessPrinter({json: flags.json, write: guard.print, stages: stageInfos()});
		if (flags.yes) {
			const drivers = createHeadlessDrivers({farm, yes: true, confirm: flags.confirm, printer});
			const outcome = await runUndo({
				settings,
				stages: [...allStages],
				prompt: drivers.prompt,
				confirmUndo: async () => true,
				onEvent: printer,
				signal: guard.signal,
				stateDir: dir,
			}).finally(() => printer.flush());
			return outcome === 'done' ? 0 : 1;
		}

		const initialStates: Record<string, StageState> = {};
		for (const stage of allStages) initialStates[stage.id] = journal?.stages[stage.id]?.state ?? 'pending';
		const outcome = await renderRun({
			farm,
			stages: stageInfos(),
			initialStates,
			resumedNote: `Undo of ${farm}: the completed stages are reversed, last first.`,
			start: async (drivers) => {
				const result = await runUndo({
					settings,
					stages: [...allStages],
					prompt: drivers.prompt,
					confirmUndo: async (plans) =>
						drivers.prompt.typed(
							`Undo ${plans.length} stages of ${farm}, last first. This deletes the clone's disk and instance. Type ${farm} to go on:`,
							farm,
						),
					onEvent: drivers.onEvent,
					signal: AbortSignal.any([drivers.signal, guard.signal]),
					stateDir: dir,
				});
				await leaveStoppedScreen(guard, release, result);
				return result;
			},
		});
		return outcome === 'done' ? 0 : 1;
	} finally {
		guard.dispose();
		await release();
	}
}
