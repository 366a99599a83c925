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

/**
 * A farmclone command line that works as printed: the settings and state
 * directories this process uses (the demo's own, say) go in front of it.
 */
export function farmcloneCommand(args: string[]): string {
	const env = ['FARMCLONE_CONFIG_DIR', 'FARMCLONE_STATE_DIR']
		.filter((name) => process.env[name])
		.map((name) => `${name}=${shellQuote(process.env[name]!)}`);
	return [...env, shellQuote(farmcloneProgram()), ...args.map(shellQuote)].join(' ');
}
