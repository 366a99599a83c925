import fs from 'node:fs/promises';
import path from 'node:path';
import {nodeModuleArgv, spawnDetached} from '../host/detached.js';
import {isSameProcessAlive} from '../engine/lock.js';
import type {WatchdogJob, WatchdogResult} from '../engine/firewall-watchdog.js';
import {StageError, type Stage, type StageContext} from './types.js';
import {previousFirewallFiles} from './firewall-rule.js';

const savedName = (context: StageContext) => `farmclone-${context.settings.name}`;

function files(context: StageContext) {
	const dir = context.settings.shorewallDir;
	return {
		confirm: path.join(context.stateDir, 'firewall.confirmed'),
		result: path.join(context.stateDir, 'firewall.result.json'),
		job: path.join(context.stateDir, 'firewall.job.json'),
		log: path.join(context.stateDir, 'firewall.watchdog.log'),
		rules: path.join(dir, 'rules'),
		params: path.join(dir, 'params'),
	};
}

async function readResult(context: StageContext): Promise<WatchdogResult | undefined> {
	try {
		return JSON.parse(await fs.readFile(files(context).result, 'utf8')) as WatchdogResult;
	} catch {
		return undefined;
	}
}

async function firewallRunning(context: StageContext): Promise<boolean> {
	const status = await context.host.run(['shorewall', 'status'], {reject: false});
	return status.exitCode === 0 && /Shorewall is running/i.test(status.stdout);
}

/**
 * `shorewall restart` with a dead-man switch: a watchdog, detached from this
 * session, brings the previous firewall back unless the admin confirms from a
 * working connection before the timeout.
 */
export const firewallRestartStage: Stage = {
	id: 'firewall-restart',
	title: 'Restart the firewall',
	summary: 'shorewall check, then restart with a watchdog that rolls back unless confirmed',
	danger: 'typed',
	skippable: true,
	async check(context) {
		const result = await readResult(context);
		if (result?.outcome === 'confirmed' && context.facts['firewall-restart.confirmed']) {
			return {status: 'done', detail: `new firewall confirmed at ${result.at}`};
		}

		if (result?.outcome === 'rolled-back') {
			return {status: 'pending', detail: `the last restart was rolled back at ${result.at} (not confirmed in time)`};
		}

		const pid = context.facts['firewall-restart.watchdogPid'];
		if (
			typeof pid === 'number' &&
			(await isSameProcessAlive(pid, String(context.facts['firewall-restart.watchdogStart'])))
		) {
			return {status: 'pending', detail: 'a restart is waiting for confirmation'};
		}

		return {status: 'pending', detail: 'firewall not restarted with the new rule yet'};
	},
	async plan(context) {
		const dir = context.settings.shorewallDir;
		return {
			commands: [
				['shorewall', 'check', dir],
				['shorewall', 'save', savedName(context)],
				['shorewall', 'restart', dir],
			],
			diffs: [],
			notes: [
				`a watchdog detached from this session restores the previous rules, params and firewall after ${context.settings.firewallTimeout} s unless you confirm`,
				'confirm only after opening a NEW ssh connection to this host: that proves new connections pass',
			],
		};
	},
	async apply(context) {
		const dir = context.settings.shorewallDir;
		const paths = files(context);
		const check = await context.host.run(['shorewall', 'check', dir], {reject: false});
		if (check.exitCode !== 0 || /ERROR:/.test(check.stdout + check.stderr)) {
			throw new StageError(
				`shorewall check refuses the configuration: ${(check.stderr || check.stdout).trim().split('\n').slice(-3).join(' ')}`,
			);
		}

		const running = await firewallRunning(context);
		const restore = running
			? [['shorewall', 'restore', savedName(context)]]
			: // It was not running: the previous state is no Shorewall ruleset at all.
				[['shorewall', 'clear']];
		if (running) await context.host.run(['shorewall', 'save', savedName(context)]);

		const previous = await previousFirewallFiles(context);
		const saved: WatchdogJob['files'] = [];
		for (const [name, text] of Object.entries(previous)) {
			const copy = path.join(context.stateDir, `firewall.previous.${path.basename(name)}`);
			await fs.writeFile(copy, text);
			saved.push({path: name, previous: copy});
		}

		await fs.rm(paths.confirm, {force: true});
		await fs.rm(paths.result, {force: true});
		const deadline = Date.now() + context.settings.firewallTimeout * 1000;
		const job: WatchdogJob = {
			deadline,
			confirmFile: paths.confirm,
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
			'firewall-restart.confirmed': false,
		});
		context.log(`watchdog ${watchdog.pid} will roll back at ${new Date(deadline).toLocaleTimeString()}`);
		await context.host.run(['shorewall', 'restart', dir]);

		const keep = await context.prompt.confirm(
			`Firewall restarted. Open a NEW ssh connection to this host now. Keep the new firewall? (rolls back in ${context.settings.firewallTimeout} s)`,
			{timeoutSeconds: Math.max(1, Math.floor((deadline - Date.now()) / 1000))},
		);
		if (keep && Date.now() < deadline) {
			await fs.writeFile(paths.confirm, new Date().toISOString());
		}

		// The watchdog decides, so that a late answer cannot race it.
		let result: WatchdogResult | undefined;
		while (!(result = await readResult(context))) {
			if (!(await isSameProcessAlive(watchdog.pid, watchdog.startTime))) break;
			await new Promise((resolve) => setTimeout(resolve, 200));
		}

		if (result?.outcome !== 'confirmed') {
			throw new StageError(
				result?.outcome === 'rolled-back'
					? 'not confirmed in time: the previous rules, params and firewall are back'
					: `the watchdog did not confirm: ${result?.detail ?? 'it died'}`,
				'run again to retry the restart (the firewall-rule stage will add the rule again)',
			);
		}

		await context.record({'firewall-restart.confirmed': true});
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
