import {existsSync} from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import {fromSources, ownModule} from '../host/own-files.js';
import {simPaths} from './paths.js';

/** Quotes `text` for a POSIX shell: single quotes, with embedded ones closed, escaped and reopened. */
export function shellQuote(text: string): string {
	return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * How to start the stand-in `module` (source/sim/bin/<module>): compiled
 * JavaScript runs on plain node; the TypeScript sources (tests, `tsx`) need
 * tsx's loader, resolved to an absolute path so the shim works from any
 * directory. FARMCLONE_SIM_STANDINS=compiled (set by test/run.js once dist/
 * is newer than the sources) makes a sim built from the sources run the
 * compiled stand-ins anyway: under load a call costs 0.75-1 s through tsx
 * against 0.3-0.5 s compiled, and a farmclone run makes hundreds.
 */
export function standInCommand(module: string): string[] {
	const compiled = !fromSources || process.env['FARMCLONE_SIM_STANDINS'] === 'compiled';
	const script = ownModule(`sim/bin/${module}.js`, compiled);
	if (compiled && !existsSync(script)) throw new Error(`the compiled stand-in ${script} is missing: run npm run build`);
	// Warnings would land in the stand-in's stderr, where the real command prints nothing.
	const loader = compiled ? [] : ['--import', import.meta.resolve('tsx')];
	return [process.execPath, '--no-warnings', ...loader, script];
}

/**
 * Writes root/bin/<command>: a shell script that runs the stand-in `module`
 * for the simulated farm at `root`, passing the name it was called by (one
 * module serves lvs, lvcreate, ...) and its arguments.
 */
export async function writeShim(
	root: string,
	command: string,
	module: string,
	env: Record<string, string> = {},
): Promise<void> {
	const paths = simPaths(root);
	const exports = Object.entries({FARMCLONE_SIM_ROOT: paths.root, ...env}).map(([name, value]) => {
		if (!/^[A-Za-z_]\w*$/.test(name))
			throw new Error(`${name} cannot be an environment variable of the stand-in ${module}`);
		return `export ${name}=${shellQuote(value)}`;
	});
	const exec = standInCommand(module).map(shellQuote).join(' ');
	const script = [
		'#!/bin/sh',
		`# farmclone simulated farm: stand-in for ${command}`,
		...exports,
		`exec ${exec} "\${0##*/}" "$@"`,
		'',
	].join('\n');
	const file = path.join(paths.bin, command);
	await fs.mkdir(paths.bin, {recursive: true});
	const temporary = `${file}.tmp-${process.pid}`;
	await fs.writeFile(temporary, script, {mode: 0o755});
	await fs.rename(temporary, file);
}
