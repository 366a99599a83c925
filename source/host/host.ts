import {createHash} from 'node:crypto';
import {constants as fsConstants} from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import {execa} from 'execa';
import {writeFileAtomic, type AtomicWriteResult} from './atomic.js';

export type CommandRecord = {
	argv: string[];
	exitCode: number;
	stdout: string;
	stderr: string;
	durationMs: number;
	/** The file that holds this command's whole output, when the run keeps one (the screen shows its tail). */
	log?: string;
};

export type RunOptions = {
	input?: string;
	/** Non-zero exit does not throw when false; the caller inspects exitCode. */
	reject?: boolean;
	timeoutMs?: number;
	/** Keep noisy or binary output out of the command log. */
	quiet?: boolean;
	env?: Record<string, string>;
};

export type RunResult = {stdout: string; stderr: string; exitCode: number};

export class CommandError extends Error {
	constructor(
		readonly argv: string[],
		readonly result: RunResult,
	) {
		const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-6).join('\n');
		super(`${argv.join(' ')} exited ${result.exitCode}${detail ? `: ${detail}` : ''}`);
		this.name = 'CommandError';
	}
}

export type HostOptions = {
	/** Directories searched before the inherited PATH: the farm's `commandPath` setting. */
	commandPath?: string[];
	/** Where backups of edited files go. */
	backupDir: string;
	onCommand?: (record: CommandRecord) => void;
};

/**
 * The only code that touches the machine. Commands are looked up on PATH (the
 * farm's command path first), always with an argument array; files are
 * replaced atomically with a backup. Swapping PATH and the settings' file
 * paths is the whole difference between a real host and the simulated farm.
 */
/** Debian packages of the programs farmclone runs. */
const debianPackages: Record<string, string> = {
	'named-checkzone': 'bind9-utils',
	'named-checkconf': 'bind9-utils',
	named: 'bind9',
	rndc: 'bind9-utils',
	dig: 'bind9-dnsutils',
	dhcpd: 'isc-dhcp-server',
	nginx: 'nginx',
	shorewall: 'shorewall',
	socat: 'socat',
	curl: 'curl',
	'ssh-keygen': 'openssh-client',
	e2fsck: 'e2fsprogs',
	debugfs: 'e2fsprogs',
	sfdisk: 'fdisk',
	losetup: 'mount',
	mount: 'mount',
	lvs: 'lvm2',
	lvcreate: 'lvm2',
	lvremove: 'lvm2',
	lvextend: 'lvm2',
	dd: 'coreutils',
	'gnt-instance': 'ganeti',
	'gnt-cluster': 'ganeti',
	'qemu-system-x86_64': 'qemu-system-x86',
};

export function missingProgram(command: string): string {
	const name = path.basename(command);
	const debian = debianPackages[name];
	return `${name} is not installed (not found on PATH)${debian ? `: apt-get install ${debian}` : ''}`;
}

export class Host {
	readonly searchPath: string;
	/** What checkers accepted in this process: argv and the content of their inputs (see runCheck). */
	private readonly accepted = new Map<string, RunResult>();

	constructor(readonly options: HostOptions) {
		const inherited = process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin';
		const extra = options.commandPath ?? [];
		// Root's tools live in sbin; a non-login root shell over sudo may lack them.
		const sbin = ['/usr/local/sbin', '/usr/sbin', '/sbin'].filter((dir) => !inherited.split(':').includes(dir));
		this.searchPath = [...extra, inherited, ...sbin].filter(Boolean).join(':');
	}

	env(extra: Record<string, string> = {}): Record<string, string> {
		return {PATH: this.searchPath, LC_ALL: 'C', ...extra};
	}

	async which(command: string): Promise<string | undefined> {
		for (const dir of this.searchPath.split(':')) {
			if (!dir) continue;
			const candidate = path.join(dir, command);
			try {
				await fs.access(candidate, fsConstants.X_OK);
				return candidate;
			} catch {}
		}

		return undefined;
	}

	async run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
		const [command, ...args] = argv;
		if (!command) throw new Error('empty command');
		const started = Date.now();
		const result = await execa(command, args, {
			env: this.env(options.env),
			extendEnv: true,
			input: options.input,
			reject: false,
			timeout: options.timeoutMs,
			stripFinalNewline: false,
		});
		const record: RunResult = {
			stdout: String(result.stdout ?? ''),
			stderr: String(result.stderr ?? ''),
			exitCode: result.exitCode ?? (result.failed ? 127 : 0),
		};
		if (result.failed && result.exitCode === undefined) {
			const code = (result as {code?: string}).code;
			// EACCES too: spawn reports it when PATH holds a directory this user may not search (root's
			// ~/.cargo/bin under su) and the program is nowhere else.
			const missing =
				code === 'ENOENT' || (code === 'EACCES' && !command.includes('/') && !(await this.which(command)));
			// A missing program is named with the package that brings it, not blamed on the file it was to check.
			record.stderr = missing ? missingProgram(command) : record.stderr || (result.shortMessage ?? '');
		}

		if (!options.quiet) {
			this.options.onCommand?.({argv, ...record, durationMs: Date.now() - started});
		}

		if (record.exitCode !== 0 && options.reject !== false) {
			throw new CommandError(argv, record);
		}

		return record;
	}

	/**
	 * Runs a checker whose verdict depends on the files under `inputs` (shorewall check compiles the
	 * whole directory: 40-65 s on a slow host, and one run checks the same files up to four times).
	 * When this process already saw the same argv accept the same content (every file's path, mode
	 * and bytes, read now), its acceptance is given again, said in the command log, without running
	 * it. A refusal is never remembered: content not accepted yet is always checked. Files outside
	 * `inputs` that the configuration includes are not in the key: farmclone edits none of them, and
	 * an admin editing them in the middle of a run is not guarded against.
	 */
	async runCheck(argv: string[], inputs: string, options: RunOptions = {}): Promise<RunResult> {
		const key = `${JSON.stringify(argv)}\n${await this.contentKey(inputs)}`;
		const earlier = this.accepted.get(key);
		if (earlier) {
			const note = `farmclone: ${argv.join(' ')} accepted these same files (${inputs}) earlier in this run: not run again\n`;
			if (!options.quiet) this.options.onCommand?.({argv, ...earlier, stdout: note + earlier.stdout, durationMs: 0});
			return earlier;
		}

		const result = await this.run(argv, {...options, reject: false});
		if (result.exitCode === 0) this.accepted.set(key, result);
		if (result.exitCode !== 0 && options.reject !== false) throw new CommandError(argv, result);
		return result;
	}

	/** sha256 over every entry under `dir`: relative path, type, mode, and the bytes or link target. */
	private async contentKey(dir: string): Promise<string> {
		const hash = createHash('sha256');
		const entries = await fs.readdir(dir, {recursive: true}).catch(() => undefined);
		if (entries === undefined) return 'absent';
		for (const entry of entries.map(String).sort()) {
			const file = path.join(dir, entry);
			const stat = await fs.lstat(file);
			hash.update(`${entry}\0${stat.mode}\0`);
			if (stat.isSymbolicLink()) hash.update(await fs.readlink(file));
			else if (stat.isFile()) hash.update(await fs.readFile(file));
			hash.update('\0');
		}

		return hash.digest('hex');
	}

	async readFile(file: string): Promise<string> {
		return fs.readFile(file, 'utf8');
	}

	async readFileIfExists(file: string): Promise<string | undefined> {
		try {
			return await fs.readFile(file, 'utf8');
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
			throw error;
		}
	}

	async exists(file: string): Promise<boolean> {
		try {
			await fs.lstat(file);
			return true;
		} catch {
			return false;
		}
	}

	async writeFile(file: string, content: string): Promise<AtomicWriteResult> {
		return writeFileAtomic(file, content, {backupDir: this.options.backupDir});
	}

	/** Run state of farmclone's own (journal-side files, not the host's): atomic, no backup. */
	async writeStateFile(file: string, content: string): Promise<void> {
		await writeFileAtomic(file, content);
	}

	/** Last modification, in ms since the epoch; undefined when there is no such file. */
	async modifiedAt(file: string): Promise<number | undefined> {
		const stat = await fs.stat(file).catch(() => undefined);
		return stat?.mtimeMs;
	}

	async symlink(target: string, link: string): Promise<void> {
		await fs.symlink(target, link);
	}

	async readLink(link: string): Promise<string | undefined> {
		try {
			return await fs.readlink(link);
		} catch {
			return undefined;
		}
	}

	/** Entry names of a directory, sorted; undefined when there is no such directory. */
	async listDir(dir: string): Promise<string[] | undefined> {
		try {
			return (await fs.readdir(dir)).sort();
		} catch (error) {
			const {code} = error as NodeJS.ErrnoException;
			if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
			throw error;
		}
	}

	async remove(file: string): Promise<void> {
		await fs.rm(file, {force: true});
	}
}

/** The host's methods that change files. */
export type HostWrites = 'writeFile' | 'writeStateFile' | 'symlink' | 'remove';

/** What looking (check, plan, status) may use: the host without its file writes. */
export type ReadOnlyHost = Omit<Host, HostWrites>;

export class ReadOnlyHostError extends Error {
	constructor(method: string, target: string) {
		super(`${method}(${target}) while only looking (check or plan): looking never changes the host`);
		this.name = 'ReadOnlyHostError';
	}
}

/** Programs that only change the machine, whatever their arguments. */
const changingPrograms = new Set([
	'mount',
	'umount',
	'lvcreate',
	'lvremove',
	'lvextend',
	'lvrename',
	'lvchange',
	'ssh-keygen',
	'kill',
	'systemctl',
	'service',
]);
/** Programs that look with some verbs and change with the others: the verbs that only look. */
const lookingVerbs: Record<string, ReadonlySet<string>> = {
	'gnt-instance': new Set(['list', 'info']),
	'gnt-cluster': new Set(['info', 'version', 'verify']),
	shorewall: new Set(['check', 'status', 'show', 'version', 'dump']),
	rndc: new Set(['status']),
};

/** Whether `argv` changes the machine: what looking (check, plan) must never run. */
export function changesTheMachine(argv: readonly string[]): boolean {
	const program = path.basename(argv[0] ?? '');
	if (changingPrograms.has(program) || argv[0]?.startsWith('/etc/init.d/')) return true;
	// losetup only lists with -l/--list/-j (attaching and detaching change the machine).
	// dd writes only with of= (without it, it reads to stdout).
	if (program === 'dd') return argv.some((arg) => arg.startsWith('of='));
	if (program === 'losetup') return !argv.some((arg) => ['-l', '--list', '-j', '--associated', '-a'].includes(arg));
	const verbs = lookingVerbs[program];
	const verb = verbOf(argv);
	// No verb at all (--version, --help) only prints.
	return verbs !== undefined && verb !== undefined && !verbs.has(verb);
}

/** The first argument that is not an option: `list` of `gnt-instance list -o name`. */
const verbOf = (argv: readonly string[]) => argv.find((arg, index) => index > 0 && !arg.startsWith('-'));

/**
 * The same host, whose file writes and changing commands throw: check and plan run with it, so a
 * stage that writes while looking fails its tests instead of touching a farm.
 */
export function readOnlyHost(host: Host): ReadOnlyHost {
	const view = Object.create(host) as Host;
	const refuse = (method: HostWrites) => async (target: string) => {
		throw new ReadOnlyHostError(method, target);
	};
	view.run = async (argv: string[], options?: RunOptions) => {
		if (changesTheMachine(argv)) throw new ReadOnlyHostError('run', argv.join(' '));
		return host.run(argv, options);
	};
	view.writeFile = refuse('writeFile');
	view.writeStateFile = refuse('writeStateFile');
	view.symlink = async (_target: string, link: string) => refuse('symlink')(link);
	view.remove = refuse('remove');
	return view;
}

/** Listings that only read the machine: lvs and vgs whatever they list, the cluster's programs by verb (none: --version). */
const listingPrograms = new Set(['lvs', 'vgs']);
const listingVerbs: Record<string, ReadonlySet<string | undefined>> = {
	'gnt-instance': new Set(['list', 'info']),
	'gnt-cluster': new Set(['info', undefined]),
};

function isListing(argv: readonly string[]): boolean {
	const program = path.basename(argv[0] ?? '');
	return listingPrograms.has(program) || (listingVerbs[program]?.has(verbOf(argv)) ?? false);
}

/**
 * A read-only host for one look at the machine: the preflight and the first
 * stage's check and plan, or one stage's check and plan. Nothing changes the
 * machine during a look, so a listing (`lvs`, `vgs`, `gnt-instance list`...)
 * asked twice, or by two checks side by side, runs once: each is a process of
 * its own (a few hundred ms on a busy host), and the command log tells it once.
 * The engine takes a new look whenever the host may have changed: once the
 * admin answered a gate, before anything is applied. Apply reads afresh and
 * refuses a plan gone stale, as it always did.
 */
export function lookingHost(host: Host | ReadOnlyHost): ReadOnlyHost {
	// A look of a look shares the reads of the outer one: its reads go through it.
	const view = Object.create(readOnlyHost(host as Host)) as Host;
	const reads = new Map<string, Promise<RunResult>>();
	const run = view.run.bind(view);
	view.run = async (argv: string[], options: RunOptions = {}) => {
		if (!isListing(argv)) return run(argv, options);
		const key = JSON.stringify([argv, options.input ?? null, options.env ?? null, options.timeoutMs ?? null]);
		let read = reads.get(key);
		if (!read) {
			read = run(argv, {...options, reject: false});
			reads.set(key, read);
		}

		const result = {...(await read)};
		if (result.exitCode !== 0 && options.reject !== false) throw new CommandError(argv, result);
		return result;
	};
	return view;
}
