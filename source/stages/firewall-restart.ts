import path from 'node:path';
import {formatClock} from '../ui/format.js';
import {StageError, type Stage, type LookContext, type StageContext} from './types.js';
import {previousFirewallFiles} from './firewall-rule.js';
import {farmcloneCommand} from '../host/self.js';
import {
	awaitDecision,
	guardFiles,
	liveWatchdog as guardWatchdog,
	readResult as readGuardResult,
	recordGuardOutcome,
	startGuardedRestart,
	type Guard,
	type GuardState,
} from './firewall-guard.js';
import {stageState, type StatesView} from './state.js';
import {firewallPreflight} from './firewall-rule.js';

/** The guarded restart (watchdog, deadline, outcome), and the name of the firewall saved before it. */
type FirewallRestartState = GuardState & {saved: string};

const firewallRestartState = stageState<FirewallRestartState>('firewall-restart');

const savedName = (context: LookContext) => `farmclone-${context.settings.name}`;
const guard: Guard = {name: 'firewall', state: firewallRestartState};

/** Whether this run started the restart's watchdog: the rules on disk may be live. */
export const restartWatchdogStarted = (context: StatesView): boolean =>
	firewallRestartState.of(context).watchdogPid !== undefined;
const liveWatchdog = async (context: LookContext) => guardWatchdog(context, guard);
const readResult = async (context: LookContext) => readGuardResult(context, guard.name);
const recordOutcome = async (context: StageContext, result: Parameters<typeof recordGuardOutcome>[2]) =>
	recordGuardOutcome(context, guard, result);

async function firewallRunning(context: LookContext): Promise<boolean> {
	const status = await context.host.run(['shorewall', 'status'], {reject: false});
	return status.exitCode === 0 && /Shorewall is running/i.test(status.stdout);
}

/**
 * `shorewall check` exits 0 only when it compiled, but `try` and
 * `safe-restart` do not: ask for the verdict line too, so that a wrapper or
 * a future version that exits 0 on a compile error is not trusted.
 */
async function checkConfiguration(context: LookContext): Promise<void> {
	const dir = context.settings.shorewallDir;
	// The firewall-rule stage checked these same files a moment ago: runCheck does not compile them again.
	const check = await context.host.runCheck(['shorewall', 'check', dir], dir, {reject: false});
	const output = `${check.stdout}\n${check.stderr}`;
	const errors = output.split('\n').filter((line) => /\b(ERROR|FATAL)\b/.test(line));
	if (check.exitCode !== 0 || errors.length > 0 || !/Shorewall configuration verified/.test(output)) {
		const said = errors.length > 0 ? errors : output.trim().split('\n').slice(-4);
		throw new StageError(
			`shorewall check refuses ${dir} (exit ${check.exitCode}); nothing was restarted:\n${said.join('\n').trim()}`,
		);
	}
}

/** rules or params, when edited after `since`: the running firewall does not have that edit. */
async function changedSince(context: LookContext, since: number): Promise<string | undefined> {
	for (const name of ['rules', 'params']) {
		const file = path.join(context.settings.shorewallDir, name);
		const modified = await context.host.modifiedAt(file);
		if (modified !== undefined && modified > since) return file;
	}

	return undefined;
}

const clock = (epoch: number | undefined) => (epoch === undefined ? 'once the restart returned' : formatClock(epoch));

async function startRestart(context: StageContext) {
	await checkConfiguration(context);
	// Not running: the previous state had no Shorewall ruleset, so `clear` is what restores it.
	const running = await firewallRunning(context);
	const restore = running ? [['shorewall', 'restore', savedName(context)]] : [['shorewall', 'clear']];
	if (running) await context.host.run(['shorewall', 'save', savedName(context)]);
	await firewallRestartState.save(context, {saved: running ? savedName(context) : undefined});
	return startGuardedRestart(context, guard, {restore, previous: await previousFirewallFiles(context)});
}

/**
 * `shorewall restart` with a dead-man switch: a watchdog, detached from this
 * session, brings the previous firewall back unless the admin confirms from a
 * working connection before the timeout. A session that finds the watchdog
 * of an earlier one still waiting asks for that confirmation instead of
 * restarting again.
 */
export const firewallRestartStage: Stage = {
	id: 'firewall-restart',
	title: 'Restart the firewall',
	summary: 'shorewall check, then restart with a watchdog that rolls back unless confirmed',
	danger: 'typed',
	skippable: true,
	preflight: [firewallPreflight],
	attended: 'a new SSH connection proves the new firewall lets SSH in, or the previous one comes back',
	async check(context) {
		const live = await liveWatchdog(context);
		if (live) {
			return {
				status: 'pending',
				detail: `a restart waits for confirmation until ${clock(live.deadline)}`,
				underway: true,
			};
		}

		// What the watchdog decided is read, not recorded: apply puts it in the journal.
		const result = await readResult(context);
		if (result?.outcome === 'rollback-failed') {
			return {
				status: 'conflict',
				detail: `the watchdog could not restore the previous firewall at ${formatClock(result.at)}: ${result.detail}\nlook at shorewall status before anything else; once the firewall is right, remove ${guardFiles(context.stateDir, guard.name).result} to try again`,
			};
		}

		if (result?.outcome === 'rolled-back') {
			return {
				status: 'pending',
				detail: `the last restart was rolled back at ${formatClock(result.at)} (${result.detail.split(';')[0]}); run this stage to try again`,
			};
		}

		// A result file is the latest restart's: each restart removes the one before.
		if (result?.outcome === 'confirmed') {
			const changed = await changedSince(context, Date.parse(result.at));
			if (changed)
				return {
					status: 'pending',
					detail: `${changed} changed after the restart confirmed at ${formatClock(result.at)}`,
				};
			return {status: 'done', detail: `new firewall confirmed at ${formatClock(result.at)}`};
		}

		return {status: 'pending', detail: 'firewall not restarted with the new rule yet'};
	},
	async plan(context) {
		const {shorewallDir, firewallTimeout} = context.settings;
		const live = await liveWatchdog(context);
		if (live) {
			return {
				commands: [],
				diffs: [],
				notes: [
					`the firewall was restarted by an earlier session; its watchdog (pid ${live.pid}) restores the previous firewall at ${clock(live.deadline)}`,
					`running this stage waits for the proof again: from a NEW ssh connection to this host, run ${farmcloneCommand(['confirm', context.settings.name])}`,
				],
			};
		}

		const running = await firewallRunning(context);
		return {
			commands: [
				['shorewall', 'check', shorewallDir],
				...(running ? [['shorewall', 'save', savedName(context)]] : []),
				['shorewall', 'restart', shorewallDir],
			],
			diffs: [],
			notes: [
				`restarts Shorewall with the new rule; shorewall check must pass (and say "configuration verified") first`,
				running
					? `safety net: the running firewall is saved as ${savedName(context)}; a watchdog in its own session (it outlives farmclone and this SSH connection) puts the previous rules and params back and runs "shorewall restore ${savedName(context)}" unless you confirm within ${firewallTimeout} s; it never runs shorewall clear`
					: `Shorewall is not running now: unless you confirm within ${firewallTimeout} s, a watchdog in its own session puts the previous rules and params back and runs "shorewall clear" (no Shorewall ruleset, as now)`,
				`the ${firewallTimeout} s start once shorewall restart returned; a restart that takes over ${context.settings.firewallRestartTimeout} s is rolled back`,
				`proof: from a NEW ssh connection to this host, run ${farmcloneCommand(['confirm', context.settings.name])}; it is accepted only when that connection started after the restart (Shorewall keeps established connections, so this session proves nothing); no proof, or farmclone or SSH dying, rolls back`,
				`without a second connection (console access), type "keep without proof" on the waiting screen: the journal records it as such; a headless run (--restart-firewall) keeps the new firewall without proof and so accepts that risk`,
			],
		};
	},
	async apply(context) {
		// The decision of a watchdog that ended while no session was there (check only reads it).
		const earlier = await readResult(context);
		if (earlier) await recordOutcome(context, earlier);
		const live = (await liveWatchdog(context)) ?? (await startRestart(context));
		await awaitDecision(context, guard, live);
	},
	async verify(context) {
		if (!(await firewallRunning(context))) throw new StageError('Shorewall is not running after the restart');
	},
	async undoPlan(context) {
		return {
			commands: [
				['shorewall', 'check', context.settings.shorewallDir],
				['shorewall', 'restart', context.settings.shorewallDir],
			],
			diffs: [],
			notes: ['after the firewall-rule stage removed its lines'],
		};
	},
	async undo(context) {
		// Runs before the firewall-rule undo (reverse order): that stage restarts once its lines are gone.
		context.log('the firewall is restarted by the firewall-rule undo, once the rule is removed');
	},
};
