import {runEngine, runUndo, type Outcome} from '../engine/engine.js';
import {stageInfo, type Ask, type StageInfo} from '../engine/api.js';
import type {EngineEvent, StageState} from '../engine/events.js';
import {isUnfinished, readJournal} from '../engine/journal.js';
import {acquireLock} from '../engine/lock.js';
import {createHeadlessAsk, createHeadlessPrinter} from '../headless.js';
import type {SettingsStore} from '../settings/store.js';
import {SettingsError} from '../settings/validate.js';
import {allStages} from '../stages/index.js';
import type {Stage} from '../stages/types.js';
import {formatWhen} from '../ui/format.js';
import {renderRun} from '../ui/start-run.js';
import {farmcloneCommand, farmDir, guardSession} from './context.js';

export type SessionKind = 'run' | 'undo';

export type SessionFlags = {
	yes: boolean;
	json: boolean;
	/** The typed answer of headless typed confirmations: the farm's name. */
	confirm?: string;
	/** Headless run: restart the firewall (with its rollback watchdog) instead of stopping before it. */
	restartFirewall?: boolean;
};

export function stageInfos(): StageInfo[] {
	return allStages.map((stage) => stageInfo(stage));
}

/** The arguments that run `farm` again as this run was started. */
function resumeArgs(farm: string, flags: SessionFlags): string[] {
	if (!flags.yes) return ['run', farm];
	return [
		'run',
		farm,
		'--yes',
		...(flags.confirm ? ['--confirm', flags.confirm] : []),
		...(flags.restartFirewall ? ['--restart-firewall'] : []),
	];
}

/**
 * One driver for `farmclone run` and `farmclone undo`: the farm's lock, the
 * session guard (SIGHUP, a terminal gone), the front end that shows the
 * engine's events and answers its questions (the TUI, or the headless
 * printer and answers), the engine itself, and the line printed once the
 * screen is gone. Returns the exit code.
 */
export async function driveSession(
	store: SettingsStore,
	farm: string,
	kind: SessionKind,
	flags: SessionFlags,
	/** The stages run or undone: all of them, but for tests of the driver itself. */
	stages: readonly Stage[] = allStages,
): Promise<number> {
	const settings = store.require(farm);
	const dir = farmDir(farm);
	const release = await acquireLock(dir, `farmclone ${kind} ${farm}`);
	const guard = guardSession(new AbortController());
	try {
		const journal = await readJournal(dir);
		const resumed = isUnfinished(journal);
		const engine = async (drivers: {ask: Ask; onEvent: (event: EngineEvent) => void; signal: AbortSignal}) => {
			const request = {settings, stages: [...stages], stateDir: dir, ...drivers};
			if (kind === 'undo') return runUndo(request);
			return runEngine({
				...request,
				saveSettings: (changed) => store.save(changed),
				otherFarms: store.list().filter((other) => other.name !== farm),
				...(flags.yes
					? {
							unattended: {
								acceptAttended: flags.restartFirewall === true,
								how: `with --restart-firewall (and --confirm ${farm})`,
							},
						}
					: {}),
			});
		};

		let outcome: Outcome;
		if (flags.yes) {
			const printer = createHeadlessPrinter({json: flags.json, write: guard.print, stages});
			if (kind === 'run' && resumed && !flags.json) guard.print(`resuming the unfinished run of ${farm}`);
			const ask = createHeadlessAsk({farm, yes: true, confirm: flags.confirm, printer});
			try {
				outcome = await engine({ask, onEvent: printer, signal: guard.signal});
			} finally {
				printer.flush();
			}
		} else {
			const initialStates: Record<string, StageState> = {};
			for (const stage of stages) initialStates[stage.id] = journal?.stages[stage.id]?.state ?? 'pending';
			// The screen shows a refusal as a failed run; kept to be thrown once it is gone, so it exits 2 as headless.
			let refusal: SettingsError | undefined;
			outcome = await renderRun({
				farm,
				stages: stages.map((stage) => stageInfo(stage)),
				initialStates,
				resumedNote:
					kind === 'undo'
						? `Undo of ${farm}: the completed stages are reversed, last first.`
						: resumed
							? `Resuming the unfinished run of ${farm} started ${journal ? formatWhen(journal.startedAt) : ''}: each stage is checked against the host first.`
							: undefined,
				// A signal or a lost terminal: the screen goes once the engine stopped at a safe point.
				signal: guard.signal,
				start: async (drivers) =>
					engine({...drivers, signal: AbortSignal.any([drivers.signal, guard.signal])}).catch((error: unknown) => {
						if (error instanceof SettingsError) refusal = error;
						throw error;
					}),
			});
			if (refusal) throw refusal;
		}

		// After the screen is gone, a plain line where the screen's own hard-wrapped it (the terminal wraps a plain
		// line, so it pastes whole); one that fitted is on the screen's last frame already.
		const resume = `resume with: ${farmcloneCommand(resumeArgs(farm, flags))}`;
		const fitted = !flags.yes && resume.length <= (process.stdout.columns || 80);
		if (kind === 'run' && outcome !== 'done' && !flags.json && !fitted) guard.print(resume);

		return outcome === 'done' ? 0 : 1;
	} finally {
		guard.dispose();
		await release();
	}
}
