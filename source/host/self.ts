import fs from 'node:fs';
import path from 'node:path';

/** Quotes a word for a POSIX shell only when it needs it, so a printed command pastes as is. */
export function shellQuote(word: string): string {
	return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

function realPath(file: string): string | undefined {
	try {
		return fs.realpathSync(file);
	} catch {
		return undefined;
	}
}

function onPath(name: string): string | undefined {
	for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
		if (!dir) continue;
		const file = path.join(dir, name);
		try {
			fs.accessSync(file, fs.constants.X_OK);
			return realPath(file);
		} catch {}
	}

	return undefined;
}

let program: string | undefined;

/**
 * How to start this farmclone again: `farmclone` when that is what PATH
 * finds, else the path of the script that runs now (`node dist/cli.js` from
 * a clone that is not on PATH).
 */
function farmcloneProgram(): string {
	if (program) return program;
	const script = process.argv[1] ? realPath(process.argv[1]) : undefined;
	const ours = script && /[/\\]cli\.js$/.test(script) ? script : undefined;
	program = !ours || onPath('farmclone') === ours ? 'farmclone' : ours;
	return program;
}

/** The launcher this process was started through (see writeLauncher): it carries the directories itself. */
const launcherVariable = 'FARMCLONE_SELF';

/**
 * A farmclone command line that works as printed: the settings and state
 * directories this process uses go in front of it, unless it runs through a
 * launcher that sets them (the demo's, short enough for an 80-column hint).
 */
export function farmcloneCommand(args: string[]): string {
	const launcher = process.env[launcherVariable];
	if (launcher)
		return [onPath(path.basename(launcher)) === realPath(launcher) ? path.basename(launcher) : launcher, ...args]
			.map(shellQuote)
			.join(' ');
	const env = ['FARMCLONE_CONFIG_DIR', 'FARMCLONE_STATE_DIR']
		.filter((name) => process.env[name])
		.map((name) => `${name}=${shellQuote(process.env[name]!)}`);
	return [...env, shellQuote(farmcloneProgram()), ...args.map(shellQuote)].join(' ');
}

/**
 * Writes an executable `file` that runs this farmclone with `env` (the
 * demo's settings and state directories), and makes this process's hints
 * name it: `/tmp/farmclone-demo-x/farmclone run gallifrey-dev` fits a line
 * where the two directories and the script's path do not.
 */
export async function writeLauncher(file: string, env: Record<string, string>): Promise<void> {
	const script = process.argv[1] ? (realPath(process.argv[1]) ?? process.argv[1]) : 'farmclone';
	const assignments = Object.entries({...env, [launcherVariable]: file}).map(
		([name, value]) => `${name}=${shellQuote(value)}`,
	);
	const text = [
		'#!/bin/sh',
		"# Written by farmclone demo: this farmclone with the demo's own settings and run state.",
		`${assignments.join(' ')} exec ${shellQuote(process.execPath)} ${shellQuote(script)} "$@"`,
		'',
	].join('\n');
	await fs.promises.mkdir(path.dirname(file), {recursive: true});
	await fs.promises.writeFile(file, text, {mode: 0o755});
	process.env[launcherVariable] = file;
}
