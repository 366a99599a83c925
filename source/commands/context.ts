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

export type SessionGuard = {
	/** Aborted by SIGHUP, SIGTERM, SIGINT, or the terminal going away. */
	signal: AbortSignal;
	/** Whether stdout, stderr or stdin failed (EIO, EPIPE): nothing written reaches anyone any more. */
	terminalGone(): boolean;
	/** Writes a line to stdout unless the terminal is gone; never throws. */
	print(line: string): void;
	dispose(): void;
};

const streamErrors = new Set([
	'EIO',
	'EPIPE',
	'ENXIO',
	'ECONNRESET',
	'ERR_STREAM_DESTROYED',
	'ERR_STREAM_WRITE_AFTER_END',
]);

/**
 * SIGHUP (the SSH session dropped), SIGTERM and SIGINT abort the run: the
 * engine stops at the next safe point with the journal consistent, and
 * detached work (the copy, the firewall watchdog) goes on. After a hang-up
 * the terminal is gone: writing to it fails with EIO (EPIPE for a pipe), and
 * such a failure must not kill farmclone before the journal is consistent,
 * so the errors are taken as one more reason to stop, quietly.
 */
export function guardSession(controller: AbortController): SessionGuard {
	let gone = false;
	const signals: NodeJS.Signals[] = ['SIGHUP', 'SIGTERM', 'SIGINT'];
	// A hang-up alone does not silence the output: it may go to a file or a pipe that still works.
	const onSignal = (signal: NodeJS.Signals) => {
		controller.abort(new Error(`${signal} received`));
	};

	const onStreamError = (error: NodeJS.ErrnoException) => {
		gone = true;
		const why = streamErrors.has(error.code ?? '') ? 'the terminal is gone' : 'the terminal failed';
		if (!controller.signal.aborted) controller.abort(new Error(`${why} (${error.code ?? error.message})`));
	};

	const streams = [process.stdout, process.stderr, process.stdin];
	for (const signal of signals) process.on(signal, onSignal);
	for (const stream of streams) stream.on('error', onStreamError);
	const {stdin} = process;
	const setRawMode = stdin.isTTY ? stdin.setRawMode : undefined;
	if (setRawMode) {
		// Restoring the mode of a hung-up terminal fails with EIO; there is no mode left to restore.
		stdin.setRawMode = (mode: boolean) => {
			try {
				return setRawMode.call(stdin, mode);
			} catch {
				gone = true;
				return stdin;
			}
		};
	}

	return {
		signal: controller.signal,
		terminalGone: () => gone,
		print(line) {
			if (gone) return;
			try {
				process.stdout.write(`${line}\n`);
			} catch {
				gone = true;
			}
		},
		dispose() {
			for (const signal of signals) process.off(signal, onSignal);
			// The error listeners stay: a late write to a dead terminal must still not crash the exit.
		},
	};
}

export {farmcloneCommand, shellQuote} from '../host/self.js';
