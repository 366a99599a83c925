import fs from 'node:fs/promises';
import path from 'node:path';
import {nodeModuleArgv, spawnDetached} from '../host/detached.js';
import {isSameProcessAlive} from '../engine/lock.js';
import type {WatchdogJob, WatchdogResult} from '../engine/firewall-watchdog.js';
import {StageError, type Stage, type StageContext} from './types.js';
import {previousFirewallFiles} from './firewall-rule.js';

const savedName = (context: StageContext) => `farmclone-${context.settings.name}`;

function files(context: StageContext) {
	return {
		confirm: path.join(context.stateDir, 'firewall.confirmed'),
		rollback: path.join(context.stateDir, 'firewall.rollback'),
		result: path.join(context.stateDir, 'firewall.result.json'),
		job: path.join(context.stateDir, 'firewall.job.json'),
		log: path.join(context.stateDir, 'firewall.watchdog.log'),
	};
}

async function readJson<T>(file: string): Promise<T | undefined> {
	try {
		return JSON.parse(await fs.readFile(file, 'utf8')) as T;
	} catch {
		return undefined;
	}
}

const readResult = async (context: StageContext) => readJson<WatchdogResult>(files(context).result);

type LiveWatchdog = {pid: number; startTime: string | undefined; deadline: number};

/** The watchdog of an earlier session that still waits for a confirmation (farmclone or SSH died meanwhile). */
async function liveWatchdog(context: StageContext): Promise<LiveWatchdog | undefined> {
	const pid = context.facts['firewall-restart.watchdogPid'];
	const startTime = context.facts['firewall-restart.watchdogStart'];
	if (typeof pid !== 'number') return undefined;
	const start = typeof startTime === 'string' ? startTime : undefined;
	if (!(await isSameProcessAlive(pid, start))) return undefined;
	const job = await readJson<WatchdogJob>(files(context).job);
	if (!job || (await readResult(context))) return undefined;
	return {pid, startTime: start, deadline: job.deadline};
}

async function firewallRunning(context: StageContext): Promise<boolean> {
	const status = await context.host.run(['shorewall', 'status'], {reject: false});
	return status.exitCode === 0 && /Shorewall is running/i.test(status.stdout);
}

/**
 * `shorewall check` exits 0 only when it compiled, but `try` and
 * `safe-restart` do not: ask for the verdict line too, so that a wrapper or
 * a future version that exits 0 on a compile error is not trusted.
 */
async function checkConfiguration(context: StageContext): Promise<void> {
	const dir = context.settings.shorewallDir;
	const check = await context.host.run(['shorewall', 'check', dir], {reject: false});
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
async function changedSince(context: StageContext, since: number): Promise<string | undefined> {
	for (const name of ['rules', 'params']) {
		const file = path.join(context.settings.shorewallDir, name);
		const stat = await fs.stat(file).catch(() => undefined);
		if (stat && stat.mtimeMs > since) return file;
	}

	return undefined;
}

const clock = (epoch: number) => new Date(epoch).toLocaleTimeString();

/** What happened to the last restart, for the journal; a rollback means the stage is to be run again. */
async function recordOutcome(context: StageContext, result: WatchdogResult): Promise<void> {
	if (context.facts['firewall-restart.outcomeAt'] === result.at) return;
	await context.record({
		'firewall-restart.outcome': result.outcome,
		'firewall-restart.outcomeAt': result.at,
		'firewall-restart.outcomeDetail': result.detail,
		'firewall-restart.confirmed': result.outcome === 'confirmed',
	});
}

async function startRestart(context: StageContext): Promise<LiveWatchdog> {
	const dir = context.settings.shorewallDir;
	const paths = files(context);
	await checkConfiguration(context);
	// Not running: the previous state had no Shorewall ruleset, so `clear` is what restores it.
	const running = await firewallRunning(context);
	const restore = running ? [['shorewall', 'restore', savedName(context)]] : [['shorewall', 'clear']];
	if (running) await context.host.run(['shorewall', 'save', savedName(context)]);

	const saved: WatchdogJob['files'] = [];
	for (const [name, text] of Object.entries(await previousFirewallFiles(context))) {
		const copy = path.join(context.stateDir, `firewall.previous.${path.basename(name)}`);
		await fs.writeFile(copy, text);
		saved.push({path: name, previous: copy});
	}

	for (const file of [paths.confirm, paths.rollback, paths.result]) await fs.rm(file, {force: true});
	const deadline = Date.now() + context.settings.firewallTimeout * 1000;
	const job: WatchdogJob = {
		deadline,
		confirmFile: paths.confirm,
		rollbackFile: paths.rollback,
		resultFile: paths.result,
		files: saved,
		restore,
		env: context.host.env(),
	};
	await fs.writeFile(paths.job, JSON.stringify(job));
	const watchdog = await spawnDetached(
		[...nodeModuleArgv(new URL('../engine/firewall-watchdog.js', import.meta.url)), paths.job],
		{logFile: paths.log, env: context.host.env()},
	);
	await context.record({
		'firewall-restart.watchdogPid': watchdog.pid,
		'firewall-restart.watchdogStart': watchdog.startTime,
		'firewall-restart.deadline': new Date(deadline).toISOString(),
		'firewall-restart.saved': running ? savedName(context) : undefined,
		'firewall-restart.confirmed': false,
	});
	context.log(`watchdog ${watchdog.pid} restores the previous firewall at ${clock(deadline)} unless confirmed`);
	const restart = await context.host.run(['shorewall', 'restart', dir], {reject: false});
	if (restart.exitCode !== 0) {
		await fs.writeFile(paths.rollback, 'restart failed');
		context.log(`shorewall restart exited ${restart.exitCode}: the watchdog rolls back now`);
	}

	return {pid: watchdog.pid, startTime: watchdog.startTime, deadline};
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
	async check(context) {
		const live = await liveWatchdog(context);
		if (live) {
			return {
				status: 'pending',
				detail: `a restart waits for confirmation until ${clock(live.deadline)}: run this stage to confirm it`,
			};
		}

		const result = await readResult(context);
		if (result) await recordOutcome(context, result);
		if (result?.outcome === 'rollback-failed') {
			return {
				status: 'conflict',
				detail: `the watchdog could not restore the previous firewall at ${result.at}: ${result.detail}\nlook at shorewall status before anything else; once the firewall is right, remove ${files(context).result} to try again`,
			};
		}

		if (result?.outcome === 'rolled-back') {
			return {
				status: 'pending',
				detail: `the last restart was rolled back at ${result.at} (${result.detail.split(';')[0]}); run this stage to try again`,
			};
		}

		if (result?.outcome === 'confirmed' && context.facts['firewall-restart.confirmed']) {
			const changed = await changedSince(context, Date.parse(result.at));
			if (changed) return {status: 'pending', detail: `${changed} changed after the restart confirmed at ${result.at}`};
			return {status: 'done', detail: `new firewall confirmed at ${result.at}`};
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
					'running this stage only asks you to keep the new firewall: open a NEW ssh connection to this host first',
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
				`after the restart: open a NEW ssh connection to this host, then confirm; no answer, or farmclone or SSH dying, rolls back`,
			],
		};
	},
	async apply(context) {
		const paths = files(context);
		const live = (await liveWatchdog(context)) ?? (await startRestart(context));
		const seconds = () => Math.max(0, Math.floor((live.deadline - Date.now()) / 1000));
		const keep =
			seconds() > 0 &&
			(await context.prompt.confirm(
				`Firewall restarted. Open a NEW ssh connection to this host now. Keep the new firewall? (rolled back at ${clock(live.deadline)})`,
				{timeoutSeconds: seconds()},
			));
		await fs.writeFile(keep && Date.now() < live.deadline ? paths.confirm : paths.rollback, new Date().toISOString());

		// The watchdog decides, so that a late answer cannot race it.
		let result: WatchdogResult | undefined;
		const giveUp = live.deadline + 120_000;
		while (!(result = await readResult(context)) && Date.now() < giveUp) {
			if (!(await isSameProcessAlive(live.pid, live.startTime))) break;
			await new Promise((resolve) => setTimeout(resolve, 200));
		}

		result ??= await readResult(context);
		if (result) await recordOutcome(context, result);
		if (result?.outcome !== 'confirmed') {
			throw new StageError(
				result?.outcome === 'rolled-back'
					? `the new firewall was not kept: the previous rules, params and firewall are back (${result.detail})`
					: `the watchdog did not confirm: ${result?.detail ?? `it died; see ${paths.log}`}`,
				'run again to retry the restart (the firewall-rule stage adds the rule again)',
			);
		}
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
