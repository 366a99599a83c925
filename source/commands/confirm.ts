import path from 'node:path';
import {formatClock} from '../ui/format.js';
import {Host} from '../host/host.js';
import {clockTicksPerSecond, recordedStartTime, sessionSshd} from '../host/proc.js';
import type {SettingsStore} from '../settings/store.js';
import {
	guardFiles,
	guardNames,
	readRestarted,
	readResult,
	watchdogWaiting,
	type Confirmation,
	type GuardName,
} from '../stages/firewall-guard.js';
import {farmDir} from './context.js';

type Outcome = {exitCode: number; text: string};

/**
 * `farmclone confirm NAME`, run from a new SSH connection after a Shorewall
 * restart: accepted only when this connection's sshd started after the
 * restart returned, which proves that the new firewall lets new SSH
 * connections in. The waiting session and the watchdog learn of it through
 * the confirm file in the farm's state dir.
 */
export async function confirmFarm(store: SettingsStore, farm: string): Promise<Outcome> {
	store.require(farm);
	const stateDir = farmDir(farm);
	const host = new Host({backupDir: path.join(stateDir, 'backups')});
	const context = {host, stateDir};
	let waiting: {name: GuardName; restartedUptime: number; deadline: number} | undefined;
	let underway = false;
	for (const name of guardNames) {
		const text = await host.readFileIfExists(guardFiles(stateDir, name).watchdog);
		const watchdog = text === undefined ? undefined : (JSON.parse(text) as {pid?: number; startTime?: unknown});
		if (typeof watchdog?.pid !== 'number') continue;
		const live = await watchdogWaiting(context, name, watchdog.pid, recordedStartTime(watchdog.startTime));
		if (!live) continue;
		const restarted = await readRestarted(context, name);
		if (!restarted) underway = true;
		else waiting = {name, restartedUptime: restarted.uptime, deadline: restarted.deadline};
	}

	if (!waiting) {
		return {
			exitCode: 1,
			text: underway
				? `shorewall restart of ${farm} has not returned yet: run farmclone confirm ${farm} again once it has`
				: `no firewall restart of ${farm} waits for a confirmation; nothing was changed`,
		};
	}

	const connection = process.env['SSH_CONNECTION']?.trim().split(/\s+/);
	if (!connection || connection.length < 4) {
		return {
			exitCode: 1,
			text: `not run over SSH (SSH_CONNECTION is not set): only a NEW ssh connection proves the firewall lets them in; from the console, type "keep without proof" on the waiting screen instead`,
		};
	}

	const sshd = await sessionSshd();
	if (!sshd) {
		return {
			exitCode: 1,
			text: `no sshd among this process's ancestors (inside tmux or screen?): run farmclone confirm ${farm} straight from a NEW ssh session`,
		};
	}

	const startedUptime = sshd.startTime / clockTicksPerSecond;
	const client = connection[0]!;
	if (!(startedUptime > waiting.restartedUptime)) {
		const before = (waiting.restartedUptime - startedUptime).toFixed(1);
		return {
			exitCode: 1,
			text: `refused: this SSH connection (from ${client}, sshd pid ${sshd.pid}) started ${before} s before the firewall restart returned, so it proves nothing: Shorewall keeps established connections. Open a NEW ssh connection and run farmclone confirm ${farm} there (before ${formatClock(waiting.deadline)}).`,
		};
	}

	const files = guardFiles(stateDir, waiting.name);
	const at = new Date().toISOString();
	const confirmation: Confirmation = {
		proof: 'new-connection',
		at,
		client,
		sshdPid: sshd.pid,
		detail: `confirmed from ${client} at ${formatClock(Date.parse(at))}: a new ssh connection (sshd pid ${sshd.pid}) opened after the restart`,
	};
	if (await host.exists(files.confirm)) {
		return {exitCode: 0, text: `already confirmed; the new firewall is kept`};
	}

	await host.writeStateFile(files.confirm, JSON.stringify(confirmation));
	// The watchdog decides; it looks every 200 ms.
	for (let tries = 0; tries < 50; tries++) {
		const result = await readResult(context, waiting.name);
		if (result) {
			return result.outcome === 'confirmed'
				? {exitCode: 0, text: `${confirmation.detail}: the new firewall is kept`}
				: {exitCode: 1, text: `too late: the watchdog had already decided: ${result.outcome} (${result.detail})`};
		}

		await new Promise((resolve) => setTimeout(resolve, 200));
	}

	return {exitCode: 0, text: `${confirmation.detail}; the watchdog has not answered yet: see farmclone status ${farm}`};
}

export async function confirmCommand(store: SettingsStore, farm: string): Promise<number> {
	const outcome = await confirmFarm(store, farm);
	(outcome.exitCode === 0 ? process.stdout : process.stderr).write(`farmclone: ${outcome.text}\n`);
	return outcome.exitCode;
}
