import fs from 'node:fs';
import {fileURLToPath} from 'node:url';
import {execa} from 'execa';
import {processStartTime} from './proc.js';

/** argv that runs one of farmclone's own modules with node, compiled or (in tests) through tsx. */
export function nodeModuleArgv(moduleUrl: URL): string[] {
	let file = fileURLToPath(moduleUrl);
	// Under tsx (the tests) the module is still its .ts source.
	if (file.endsWith('.js') && !fs.existsSync(file)) file = file.replace(/\.js$/, '.ts');
	if (file.endsWith('.ts')) {
		const tsx = fileURLToPath(import.meta.resolve('tsx'));
		return [process.execPath, '--import', tsx, file];
	}

	return [process.execPath, file];
}

export type DetachedProcess = {pid: number; startTime: string | undefined};

/**
 * Starts a process in its own session, its output in `logFile`, so that it
 * outlives farmclone and the SSH session (SIGHUP goes to the old session).
 */
export async function spawnDetached(
	argv: string[],
	options: {logFile: string; env: Record<string, string>},
): Promise<DetachedProcess> {
	const [command, ...args] = argv;
	if (!command) throw new Error('empty command');
	const child = execa(command, args, {
		detached: true,
		stdin: 'ignore',
		stdout: {file: options.logFile, append: true},
		stderr: {file: options.logFile, append: true},
		env: options.env,
		extendEnv: true,
		reject: false,
		cleanup: false,
	});
	child.catch(() => undefined);
	child.unref();
	const pid = child.pid;
	if (pid === undefined) throw new Error(`could not start ${command}`);
	return {pid, startTime: await processStartTime(pid)};
}
