import {existsSync} from 'node:fs';
import fs from 'node:fs/promises';
import {fileURLToPath} from 'node:url';
import {execa} from 'execa';
import {processStartTime, type StartTime} from './proc.js';

/** argv that runs one of farmclone's own modules with node, compiled or (in tests) through tsx. */
export function nodeModuleArgv(moduleUrl: URL): string[] {
	let file = fileURLToPath(moduleUrl);
	// Under tsx (the tests) the module is still its .ts source.
	if (file.endsWith('.js') && !existsSync(file)) file = file.replace(/\.js$/, '.ts');
	if (file.endsWith('.ts')) {
		const tsx = fileURLToPath(import.meta.resolve('tsx'));
		return [process.execPath, '--import', tsx, file];
	}

	return [process.execPath, file];
}

export type DetachedProcess = {
	pid: number;
	/** Undefined when the process had already ended when /proc was read: `exited` then says how it went. */
	startTime: StartTime | undefined;
	/** Exit code; only this farmclone process learns it (a later one finds the pid, not the child). */
	exited: Promise<number | undefined>;
};

export type DetachedOptions = {
	/** Where its stdout and stderr go, both through one descriptor, so their lines interleave as written. */
	output: string;
	/** Append to `output` (a log kept across runs) or start it empty (dd's progress, read from the top). */
	append: boolean;
	env: Record<string, string>;
	/** Runs as soon as the process exists, before anything else here waits (the copy puts dd in its cgroup). */
	onSpawn?: (pid: number) => Promise<void>;
};

/**
 * Starts a process in its own session, so that it outlives farmclone and the
 * SSH session (SIGHUP goes to the old session): the firewall watchdog and the
 * copy's dd. Its stdin is /dev/null; farmclone does not wait for it.
 */
export async function spawnDetached(argv: string[], options: DetachedOptions): Promise<DetachedProcess> {
	const [command, ...args] = argv;
	if (!command) throw new Error('empty command');
	const output = await fs.open(options.output, options.append ? 'a' : 'w');
	// execa's types only name descriptors 3-9; at run time it hands any open descriptor to the child.
	const descriptor = output.fd as 3;
	let child;
	try {
		child = execa(command, args, {
			detached: true,
			cleanup: false,
			stdin: 'ignore',
			stdout: descriptor,
			stderr: descriptor,
			env: options.env,
			extendEnv: true,
			reject: false,
			buffer: false,
		});
	} finally {
		await output.close();
	}

	const {pid} = child;
	if (pid === undefined) {
		const failure = await child;
		throw new Error(`could not start ${argv.join(' ')}: ${failure.shortMessage ?? failure.message}`);
	}

	child.unref();
	await options.onSpawn?.(pid);
	const exited = child.then((result) => result.exitCode);
	return {pid, startTime: await processStartTime(pid), exited};
}
