import {runEngine, type Outcome} from '../engine/engine.js';
import type {StartRun} from '../engine/api.js';
import type {StageState} from '../engine/events.js';
import {isUnfinished, readJournal} from '../engine/journal.js';
import {acquireLock} from '../engine/lock.js';
import {createHeadlessDrivers, createHeadlessPrinter} from '../headless.js';
import type {SettingsStore} from '../settings/store.js';
import {allStages} from '../stages/index.js';
import {renderRun} from '../ui/render-run.js';
import {abortOnSignals, farmDir, isInteractive, UsageError} from './context.js';

export type RunFlags = {yes: boolean; json: boolean; confirm?: string};

export function stageInfos() {
	return allStages.map(({id, title, summary, danger, skippable}) => ({id, title, summary, danger, skippable}));
}

export async function runCommand(store: SettingsStore, farm: string, flags: RunFlags): Promise<number> {
	const settings = store.require(farm);
	if (!flags.yes && !isInteractive()) {
		throw new UsageError(
			'farmclone run needs a terminal to ask before each stage; use --yes (and --confirm NAME) to run without one',
		);
	}

	const dir = farmDir(farm);
	const release = await acquireLock(dir, `farmclone run ${farm}`);
	const controller = new AbortController();
	const stopSignals = abortOnSignals(controller);
	try {
		const journal = await readJournal(dir);
		const resumed = isUnfinished(journal);
		const start: StartRun = async (drivers) =>
			runEngine({
				settings,
				stages: [...allStages],
				prompt: drivers.prompt,
				confirmStage: drivers.confirmStage,
				onEvent: drivers.onEvent,
				signal: AbortSignal.any([drivers.signal, controller.signal]),
				stateDir: dir,
				saveSettings: (changed) => store.save(changed),
			});
		let outcome: Outcome;
		if (flags.yes) {
			const printer = createHeadlessPrinter({
				json: flags.json,
				write: (line) => process.stdout.write(`${line}\n`),
				stages: stageInfos(),
			});
			if (resumed && !flags.json) process.stdout.write(`resuming the unfinished run of ${farm}\n`);
			const drivers = createHeadlessDrivers({farm, yes: true, confirm: flags.confirm, printer});
			outcome = await start({...drivers, onEvent: printer, signal: controller.signal});
		} else {
			const initialStates: Record<string, StageState> = {};
			for (const stage of allStages) initialStates[stage.id] = journal?.stages[stage.id]?.state ?? 'pending';
			outcome = await renderRun({
				farm,
				stages: stageInfos(),
				initialStates,
				resumedNote: resumed
					? `Resuming the unfinished run of ${farm} started ${journal?.startedAt ?? ''}: each stage is checked against the host first.`
					: undefined,
				start,
			});
		}

		return outcome === 'done' ? 0 : 1;
	} finally {
		stopSignals();
		await release();
	}
}
