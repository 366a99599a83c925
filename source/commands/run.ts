import {formatWhen} from '../ui/format.js';
import {runEngine, type Outcome} from '../engine/engine.js';
import type {StageGate, StartRun} from '../engine/api.js';
import type {StageState} from '../engine/events.js';
import {isUnfinished, readJournal} from '../engine/journal.js';
import {acquireLock} from '../engine/lock.js';
import {createHeadlessDrivers, createHeadlessPrinter} from '../headless.js';
import type {SettingsStore} from '../settings/store.js';
import {SettingsError} from '../settings/validate.js';
import {allStages} from '../stages/index.js';
import {renderRun} from '../ui/render-run.js';
import {farmcloneCommand, farmDir, guardSession, isInteractive, UsageError, type SessionGuard} from './context.js';

export type RunFlags = {
	yes: boolean;
	json: boolean;
	confirm?: string;
	/** Headless: restart the firewall (with its rollback watchdog) instead of stopping before it. */
	restartFirewall?: boolean;
};

export function stageInfos() {
	return allStages.map(({id, title, summary, danger, skippable}) => ({id, title, summary, danger, skippable}));
}

/**
 * Ends a TUI session that a signal or a lost terminal stopped: its screen
 * would wait for a key nobody can press. Called once the engine has stopped
 * at a safe point, so the journal is consistent; the lock goes first.
 */
export async function leaveStoppedScreen(
	guard: SessionGuard,
	release: () => Promise<void>,
	outcome: Outcome,
): Promise<void> {
	if (!guard.signal.aborted) return;
	await release();
	process.exit(outcome === 'done' ? 0 : 1);
}

/** The arguments that run `farm` again as this run was started. */
function resumeArgs(farm: string, flags: RunFlags): string[] {
	if (!flags.yes) return ['run', farm];
	return [
		'run',
		farm,
		'--yes',
		...(flags.confirm ? ['--confirm', flags.confirm] : []),
		...(flags.restartFirewall ? ['--restart-firewall'] : []),
	];
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
	const guard = guardSession(new AbortController());
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
				signal: AbortSignal.any([drivers.signal, guard.signal]),
				stateDir: dir,
				saveSettings: (changed) => store.save(changed),
				otherFarms: store.list().filter((other) => other.name !== farm),
			});
		let outcome: Outcome;
		if (flags.yes) {
			const printer = createHeadlessPrinter({json: flags.json, write: guard.print, stages: stageInfos()});
			if (resumed && !flags.json) guard.print(`resuming the unfinished run of ${farm}`);
			const drivers = createHeadlessDrivers({farm, yes: true, confirm: flags.confirm, printer});
			const confirmStage: StageGate = async (request) => {
				if (request.stage.id === 'firewall-restart' && !flags.restartFirewall) {
					printer.note(
						`stopping before ${request.stage.id}: without a terminal the firewall is restarted only with --restart-firewall (and --confirm ${farm}); the run stays resumable`,
						request.stage.id,
					);
					return 'quit';
				}

				return drivers.confirmStage(request);
			};
			try {
				outcome = await start({...drivers, confirmStage, onEvent: printer, signal: guard.signal});
			} finally {
				printer.flush();
			}
		} else {
			const initialStates: Record<string, StageState> = {};
			for (const stage of allStages) initialStates[stage.id] = journal?.stages[stage.id]?.state ?? 'pending';
			// The screen shows a refusal as a failed run; kept to be thrown once it is gone, so it exits 2 as headless.
			let refusal: SettingsError | undefined;
			outcome = await renderRun({
				farm,
				stages: stageInfos(),
				initialStates,
				resumedNote: resumed
					? `Resuming the unfinished run of ${farm} started ${journal ? formatWhen(journal.startedAt) : ''}: each stage is checked against the host first.`
					: undefined,
				async start(drivers) {
					const result = await start(drivers).catch((error: unknown) => {
						if (error instanceof SettingsError) refusal = error;
						throw error;
					});
					await leaveStoppedScreen(guard, release, result);
					return result;
				},
			});
			if (refusal) throw refusal;
		}

		// After the screen is gone, a plain line where the screen's own hard-wrapped it (the terminal wraps a plain
		// line, so it pastes whole); one that fitted is on the screen's last frame already.
		const resume = `resume with: ${farmcloneCommand(resumeArgs(farm, flags))}`;
		const fitted = !flags.yes && resume.length <= (process.stdout.columns || 80);
		if (outcome !== 'done' && !flags.json && !fitted) guard.print(resume);
		return outcome === 'done' ? 0 : 1;
	} finally {
		guard.dispose();
		await release();
	}
}
