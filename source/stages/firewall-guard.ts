import path from 'node:path';
import {isSameProcessAlive, readUptimeSeconds, recordedStartTime, type StartTime} from '../host/proc.js';
import type {RestartRecord, WatchdogJob, WatchdogResult} from '../host/firewall-watchdog.js';
import {nodeModuleArgv, spawnDetached} from '../host/detached.js';
import {ownModuleUrl} from '../host/own-files.js';
import {formatClock} from '../ui/format.js';
import {StageError, type FirewallWaitAnswer, type LookContext, type StageContext} from './types.js';
import type {StateSaver, StatesView} from './state.js';
import {farmcloneCommand} from '../host/self.js';

/**
 * Every Shorewall restart farmclone makes goes through here: the stage's,
 * a resumed run's, a retry's and the firewall-rule undo's. A watchdog in its
 * own session puts the previous files and firewall back unless a connection
 * opened after the restart proves that new SSH connections get in
 * (`farmclone confirm NAME`), or the admin types "keep without proof".
 */

/** How the new firewall was kept, as the journal records it. */
export type Confirmation = {
	proof: 'new-connection' | 'without-proof' | 'headless';
	at: string;
	detail: string;
	/** SSH_CONNECTION's client address and port, for a new connection. */
	client?: string;
	sshdPid?: number;
};

/** The restarts that may wait for a confirmation: the stage's and the undo's, each with files of its own. */
export const guardNames = ['firewall', 'firewall-undo'] as const;
export type GuardName = (typeof guardNames)[number];

export function guardFiles(stateDir: string, name: GuardName) {
	const file = (suffix: string) => path.join(stateDir, `${name}.${suffix}`);
	return {
		confirm: file('confirmed'),
		rollback: file('rollback'),
		restarted: file('restarted.json'),
		result: file('result.json'),
		job: file('job.json'),
		watchdog: file('watchdog.json'),
		log: file('watchdog.log'),
	};
}

/** A guarded restart's state in the journal of the stage that makes it. */
export type GuardState = {
	watchdogPid: number;
	watchdogStart: number;
	/** ISO time: the previous firewall comes back then, unless confirmed. */
	deadline: string;
	confirmed: boolean;
	proof: string;
	outcome: string;
	outcomeAt: string;
	outcomeDetail: string;
};

/** A restart's files (by name) and where its state is kept (a slot of the stage that makes it, or part of one). */
export type Guard = {
	name: GuardName;
	state: {
		of(context: StatesView): Readonly<Partial<GuardState>>;
		save(context: StateSaver & StatesView, patch: Partial<GuardState>): Promise<void>;
	};
};

async function readJson<T>(context: Pick<LookContext, 'host'>, file: string): Promise<T | undefined> {
	try {
		const text = await context.host.readFileIfExists(file);
		return text === undefined ? undefined : (JSON.parse(text) as T);
	} catch {
		return undefined;
	}
}

export const readResult = async (context: Pick<LookContext, 'host' | 'stateDir'>, name: GuardName) =>
	readJson<WatchdogResult>(context, guardFiles(context.stateDir, name).result);

export const readConfirmation = async (context: Pick<LookContext, 'host' | 'stateDir'>, name: GuardName) =>
	readJson<Confirmation>(context, guardFiles(context.stateDir, name).confirm);

export const readRestarted = async (context: Pick<LookContext, 'host' | 'stateDir'>, name: GuardName) =>
	readJson<RestartRecord>(context, guardFiles(context.stateDir, name).restarted);

export type LiveWatchdog = {pid: number; startTime: StartTime | undefined; deadline: number | undefined};

/** The watchdog of an earlier session that still waits (farmclone or SSH died meanwhile), from the journal's facts. */
export async function liveWatchdog(context: LookContext, guard: Guard): Promise<LiveWatchdog | undefined> {
	const {watchdogPid: pid, watchdogStart: startTime} = guard.state.of(context);
	if (typeof pid !== 'number') return undefined;
	return watchdogWaiting(context, guard.name, pid, recordedStartTime(startTime));
}

/** Whether the watchdog `pid` is alive and has not decided yet. */
export async function watchdogWaiting(
	context: Pick<LookContext, 'host' | 'stateDir'>,
	name: GuardName,
	pid: number,
	startTime: StartTime | undefined,
): Promise<LiveWatchdog | undefined> {
	if (!(await isSameProcessAlive(pid, startTime))) return undefined;
	const files = guardFiles(context.stateDir, name);
	if (!(await context.host.exists(files.job))) return undefined;
	if (await context.host.exists(files.result)) return undefined;
	const restarted = await readRestarted(context, name);
	return {pid, startTime, deadline: restarted?.deadline};
}

export type RestartOptions = {
	/** What the watchdog runs to bring the previous firewall back, in order. */
	restore: string[][];
	/** Files to put back, with their content from before: `path -> text`. */
	previous: Record<string, string>;
};

/**
 * Starts the watchdog, then `shorewall restart`. The watchdog's deadline is
 * set only once the restart returned, so the admin always gets the whole
 * firewallTimeout; a restart that outlasts firewallRestartTimeout is killed
 * and rolled back.
 */
export async function startGuardedRestart(
	context: StageContext,
	guard: Guard,
	options: RestartOptions,
): Promise<LiveWatchdog> {
	const {shorewallDir, firewallTimeout, firewallRestartTimeout} = context.settings;
	const files = guardFiles(context.stateDir, guard.name);
	const saved: WatchdogJob['files'] = [];
	for (const [name, text] of Object.entries(options.previous)) {
		const copy = path.join(context.stateDir, `${guard.name}.previous.${path.basename(name)}`);
		await context.host.writeStateFile(copy, text);
		saved.push({path: name, previous: copy});
	}

	for (const file of [files.confirm, files.rollback, files.result, files.restarted]) await context.host.remove(file);
	const job: WatchdogJob = {
		restartedFile: files.restarted,
		// A little past the restart's own timeout, so that farmclone kills a hung restart first when it is alive.
		restartBound: Date.now() + (firewallRestartTimeout + 15) * 1000,
		restartTimeoutSeconds: firewallRestartTimeout,
		confirmFile: files.confirm,
		rollbackFile: files.rollback,
		resultFile: files.result,
		files: saved,
		restore: options.restore,
		env: context.host.env(),
	};
	await context.host.writeStateFile(files.job, JSON.stringify(job));
	const watchdog = await spawnDetached([...nodeModuleArgv(ownModuleUrl('host/firewall-watchdog.js')), files.job], {
		output: files.log,
		append: true,
		env: context.host.env(),
	});
	// For farmclone confirm, which reads no journal: the waiting session may not have written it yet.
	await context.host.writeStateFile(files.watchdog, JSON.stringify({pid: watchdog.pid, startTime: watchdog.startTime}));
	await guard.state.save(context, {
		watchdogPid: watchdog.pid,
		watchdogStart: watchdog.startTime,
		deadline: undefined,
		confirmed: false,
		proof: undefined,
	});
	context.log(
		`watchdog ${watchdog.pid} restores the previous firewall unless confirmed within ${firewallTimeout} s after the restart`,
	);
	const restart = await context.host.run(['shorewall', 'restart', shorewallDir], {
		reject: false,
		timeoutMs: firewallRestartTimeout * 1000,
	});
	if (restart.exitCode !== 0) {
		await context.host.writeStateFile(files.rollback, 'restart failed');
		const why =
			/timed out/i.test(restart.stderr) || restart.exitCode === 127
				? `did not return within ${firewallRestartTimeout} s (firewallRestartTimeout)`
				: `exited ${restart.exitCode}`;
		context.log(`shorewall restart ${why}: the watchdog rolls back now`);
		return {pid: watchdog.pid, startTime: watchdog.startTime, deadline: undefined};
	}

	const deadline = Date.now() + firewallTimeout * 1000;
	const record: RestartRecord = {at: new Date().toISOString(), uptime: await readUptimeSeconds(), deadline};
	await context.host.writeStateFile(files.restarted, JSON.stringify(record));
	await guard.state.save(context, {deadline: new Date(deadline).toISOString()});
	context.log(
		`shorewall restart returned; the previous firewall comes back at ${formatClock(deadline)} unless confirmed`,
	);
	return {pid: watchdog.pid, startTime: watchdog.startTime, deadline};
}

/** Resolves once `farmclone confirm` wrote its proof, or never; `stop` ends the polling. */
function watchConfirmation(context: StageContext, guard: Guard) {
	let stopped = false;
	const confirmed = new Promise<Confirmation>((resolve) => {
		const poll = async () => {
			while (!stopped) {
				const found = await readConfirmation(context, guard.name);
				if (found) {
					resolve(found);
					return;
				}

				await new Promise((wake) => setTimeout(wake, 250));
			}
		};

		void poll();
	});
	return {
		confirmed,
		stop() {
			stopped = true;
		},
	};
}

async function recordOutcome(context: StageContext, guard: Guard, result: WatchdogResult): Promise<void> {
	if (guard.state.of(context).outcomeAt === result.at) return;
	await guard.state.save(context, {
		outcome: result.outcome,
		outcomeAt: result.at,
		outcomeDetail: result.detail,
		confirmed: result.outcome === 'confirmed',
	});
}

export {recordOutcome as recordGuardOutcome};

/**
 * Waits for the decision: `farmclone confirm` from a new connection, the
 * old session's typed "keep without proof" or "roll back", or the deadline.
 * The watchdog decides, so that a late answer cannot race it.
 */
export async function awaitDecision(context: StageContext, guard: Guard, live: LiveWatchdog): Promise<WatchdogResult> {
	const files = guardFiles(context.stateDir, guard.name);
	const command = farmcloneCommand(['confirm', context.settings.name]);
	if (live.deadline !== undefined && Date.now() < live.deadline) {
		const watch = watchConfirmation(context, guard);
		let answer: FirewallWaitAnswer;
		try {
			if (context.prompt.firewallWait) {
				answer = await context.prompt.firewallWait({
					farm: context.settings.name,
					command,
					deadline: live.deadline,
					confirmed: watch.confirmed,
				});
			} else {
				// A prompt without the waiting screen: a yes only waits for the proof, a no rolls back now.
				const seconds = Math.max(0, Math.floor((live.deadline - Date.now()) / 1000));
				const wait = await context.prompt.confirm(
					`Firewall restarted. From a NEW ssh session, run: ${command} (rolled back at ${formatClock(live.deadline)}). Wait for it?`,
					{timeoutSeconds: seconds},
				);
				answer = wait ? 'expired' : 'roll-back';
			}
		} finally {
			watch.stop();
		}

		const now = new Date().toISOString();
		if (answer === 'roll-back') {
			await context.host.writeStateFile(files.rollback, now);
		} else if ((answer === 'keep-without-proof' || answer === 'headless') && Date.now() < live.deadline) {
			// A proof that came meanwhile stays: it says more than the typed choice.
			if (!(await readConfirmation(context, guard.name))) {
				const confirmation: Confirmation =
					answer === 'headless'
						? {proof: 'headless', at: now, detail: 'kept without proof: headless run (the risk is accepted)'}
						: {
								proof: 'without-proof',
								at: now,
								detail: 'kept WITHOUT proof: typed "keep without proof" in the old session',
							};
				await context.host.writeStateFile(files.confirm, JSON.stringify(confirmation));
			}
		}
	}

	let result: WatchdogResult | undefined;
	const giveUp = (live.deadline ?? Date.now() + (context.settings.firewallRestartTimeout + 15) * 1000) + 120_000;
	while (!(result = await readResult(context, guard.name)) && Date.now() < giveUp) {
		if (!(await isSameProcessAlive(live.pid, live.startTime))) break;
		await new Promise((resolve) => setTimeout(resolve, 200));
	}

	result ??= await readResult(context, guard.name);
	if (result) await recordOutcome(context, guard, result);
	const confirmation = await readConfirmation(context, guard.name);
	if (result?.outcome === 'confirmed' && confirmation) {
		await guard.state.save(context, {proof: confirmation.detail});
		context.log(`new firewall kept: ${confirmation.detail}`);
	}

	if (result?.outcome !== 'confirmed') {
		throw new StageError(
			result?.outcome === 'rolled-back'
				? `the new firewall was not kept: the previous rules, params and firewall are back (${result.detail})`
				: `the watchdog did not confirm: ${result?.detail ?? `it died; see ${files.log}`}`,
			'run again to retry the restart',
		);
	}

	return result;
}
