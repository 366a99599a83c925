import fs from 'node:fs/promises';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {simPaths} from './paths.js';

/** Quotes `text` for a POSIX shell: single quotes, with embedded ones closed, escaped and reopened. */
export function shellQuote(text: string): string {
	return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * How to start the stand-in `module` (source/sim/bin/<module>): compiled
 * JavaScript runs on plain node; the TypeScript sources (tests, `tsx`) need
 * tsx's loader, resolved to an absolute path so the shim works from any
 * directory.
 */
export function standInCommand(module: string): string[] {
	const here = import.meta.url;
	const fromSources = here.endsWith('.ts');
	const script = fileURLToPath(new URL(`./bin/${module}${fromSources ? '.ts' : '.js'}`, here));
	// Warnings would land in the stand-in's stderr, where the real command prints nothing.
	const loader = fromSources ? ['--import', import.meta.resolve('tsx')] : [];
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
		if (!/^[A-Za-z_]\w*$/.test(name)) throw new Error(`writeShim: bad environment variable name ${name}`);
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
