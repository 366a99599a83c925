import os from 'node:os';
import path from 'node:path';
import {farmStateDir} from '../engine/journal.js';

/** Exit codes: 0 done, 1 a stage failed or the run stopped before the end, 2 usage or bad input. */
export class UsageError extends Error {
	readonly exitCode = 2;
	constructor(message: string) {
		super(message);
		this.name = 'UsageError';
	}
}

/** Run state (journals, locks, progress files, backups): FARMCLONE_STATE_DIR, else /var/lib/farmclone as root, else XDG. */
export function stateRoot(): string {
	const override = process.env['FARMCLONE_STATE_DIR'];
	if (override) return path.resolve(override);
	if (process.getuid?.() === 0) return '/var/lib/farmclone';
	const xdg = process.env['XDG_STATE_HOME'] || path.join(os.homedir(), '.local', 'state');
	return path.join(xdg, 'farmclone');
}

export function farmDir(farm: string): string {
	return farmStateDir(stateRoot(), farm);
}

export function isInteractive(): boolean {
	return Boolean(process.stdin.isTTY && process.stdout.isTTY);
}

/**
 * SIGHUP (the SSH session dropped), SIGTERM and SIGINT abort the run: the
 * engine stops at the next safe point with the journal consistent, and
 * detached work (the copy, the firewall watchdog) goes on.
 */
export function abortOnSignals(controller: AbortController): () => void {
	const signals: NodeJS.Signals[] = ['SIGHUP', 'SIGTERM', 'SIGINT'];
	const handler = () => controller.abort();
	for (const signal of signals) process.on(signal, handler);
	return () => {
		for (const signal of signals) process.off(signal, handler);
	};
}
