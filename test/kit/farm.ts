/**
 * Shared by the fault-injection tests: a simulated farm per scenario, the
 * real CLI run against it (its JSON event stream read as it comes, so a test
 * can interrupt it at a chosen event), and the farm tree as data to compare.
 */
import {createHash} from 'node:crypto';
import {createReadStream} from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import assert from 'node:assert/strict';
import type {TestContext} from 'node:test';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa, type ResultPromise} from 'execa';
import {copyDevices, joinLimiter, makeLimiter, removeLimiter, setKernelLimit} from '../../source/host/copy-rate.js';
import {Host} from '../../source/host/host.js';
import {readProcStat} from '../../source/host/proc.js';
import {defaultSettings, type FarmSettings} from '../../source/settings/schema.js';
import {SettingsStore} from '../../source/settings/store.js';
import {createSimFarm} from '../../source/sim/farm.js';
import {stopSimServices} from '../../source/sim/services.js';

export const cli = path.resolve('dist/cli.js');
export const farmName = 'gallifrey-dev';
export const MiB = 1024 * 1024;

/** Both runs of a comparison use this MAC, so that the MAC stage's random pick does not tell them apart. */
export const fixedMac = '52:54:00:4f:a1:7e';

/**
 * The identity stage writes fresh SSH host keys and file times into the
 * clone's filesystem: two correct runs never give the same bytes there. The
 * comparisons turn it off so that the clone's disk can be compared whole.
 */
export const identityOff: Partial<FarmSettings> = {
	identityHostname: false,
	identitySshKeys: false,
	identityMachineId: false,
	identityPersistentNet: false,
	identityDhcpLeases: false,
	identityGitRevision: false,
} as Partial<FarmSettings>;

export type TestFarm = {
	dir: string;
	root: string;
	stateDir: string;
	env: Record<string, string>;
	settings: FarmSettings;
	journal(): Promise<Journal>;
	/** With holdCopy: the dds started from now on copy at once. */
	releaseCopies(): Promise<void>;
};

export type Journal = {
	mode: string;
	outcome?: string;
	stages: Record<string, {state: string}>;
	/** Each stage's state, by stage id. */
	states: Record<string, Record<string, unknown> | undefined>;
};

export type EngineEvent = {type: string; stage?: string; text?: string; resumed?: boolean; outcome?: string} & Record<
	string,
	unknown
>;

/** Every process whose command line mentions `dir`: what a scenario leaves behind (dd, watchdog, QEMU). */
async function processesUnder(dir: string): Promise<number[]> {
	const pids: number[] = [];
	for (const entry of await fs.readdir('/proc')) {
		if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
		const commandLine = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
		if (commandLine.includes(dir)) pids.push(Number(entry));
	}

	return pids;
}

/**
 * A directory whose `dd` stops itself when it is the copy (the one with
 * progress; farmclone's other dd calls go straight through), then becomes the real dd (exec keeps
 * the pid and the start time farmclone recorded): a copy that cannot end
 * before the test lets it, however fast this machine's disk is.
 */
export async function heldDdDir(dir: string): Promise<string> {
	const bin = path.join(dir, 'held-bin');
	await fs.mkdir(bin);
	await writeHeldCopies(bin, true);
	return bin;
}

/** What each copy's command line looks like: dd's copy reports its progress; the copier is node running copier.js. */
export const copyPatterns = {dd: '*" status=progress "*', node: '*/copier.[jt]s" "*'} as const;

/**
 * A `program` whose copy (its command line matching `copyPatterns`) stops itself before its first byte
 * when `hold`, and becomes the real program at `real` on SIGCONT: exec keeps its pid and start time, so
 * farmclone's record holds. Every other call goes straight through.
 */
export function heldCopyScript(program: keyof typeof copyPatterns, real: string, hold = true): string {
	const stop = hold
		? `case " $* " in ${copyPatterns[program]}) kill -STOP $$ ;; esac
`
		: '';
	return `#!/bin/sh
${stop}exec ${real} "$@"
`;
}

/** The copy's dd and farmclone's copier, held or not. */
async function writeHeldCopies(bin: string, hold: boolean): Promise<void> {
	for (const program of ['dd', 'node'] as const) {
		const real = await new Host({backupDir: bin}).which(program);
		assert.ok(real, `${program} is on PATH`);
		// Written aside and renamed: a copy starting meanwhile reads the old script or the new one, never half of one.
		await fs.writeFile(path.join(bin, `${program}.new`), heldCopyScript(program, real, hold), {mode: 0o755});
		await fs.rename(path.join(bin, `${program}.new`), path.join(bin, program));
	}
}

/**
 * A slow disk for one process: its reads and writes of the disk under `file`
 * limited by the kernel (a cgroup of the test's own), so that a copy at full
 * speed is still running when the test acts. False where the host has no
 * cgroup I/O controller.
 */
export async function slowDisk(t: TestContext, pid: number, file: string, bytesPerSecond: number): Promise<boolean> {
	const limiter = await makeLimiter(`farmclone-test-slow-${pid}`);
	if (limiter.kind === 'pacing') return false;
	t.after(async () => removeLimiter(limiter));
	await setKernelLimit(limiter, (await copyDevices(file, file)).throttled, bytesPerSecond);
	await joinLimiter(limiter, pid);
	return true;
}

/** With holdCopy: the run's dd once it holds itself at its start (its pid and start time from the journal). */
export async function heldCopy(farm: TestFarm): Promise<{pid: number; startTime: number}> {
	let job = {pid: Number.NaN, startTime: Number.NaN};
	await waitFor(
		async () => {
			const {states} = await farm.journal().catch(() => ({states: {} as Journal['states']}));
			job = {pid: Number(states['copy']?.['pid']), startTime: Number(states['copy']?.['startTime'])};
			return Number.isInteger(job.pid) && (await isStopped(job.pid));
		},
		120_000,
		'the copy to start',
	);
	return job;
}

/** Whether a process is stopped by a signal (state T), as a held dd is until it gets SIGCONT. */
export async function isStopped(pid: number): Promise<boolean> {
	return (await readProcStat(pid))?.state === 'T';
}

/** A simulated farm in a temp dir of its own, with settings and run state inside it; removed after the test. */
export async function makeFarm(
	t: TestContext,
	options: {
		size?: number;
		settings?: Partial<FarmSettings>;
		/** Every dd the run starts stops itself before it copies a byte, until the test sends it SIGCONT. */
		holdCopy?: boolean;
	} = {},
): Promise<TestFarm> {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-fault-'));
	const root = path.join(dir, 'farm');
	t.after(async () => {
		await stopSimServices(root).catch(() => undefined);
		for (const pid of await processesUnder(dir)) {
			try {
				process.kill(pid, 'SIGKILL');
			} catch {}
		}

		await sleep(100);
		await fs.rm(dir, {recursive: true, force: true});
	});
	const sim = await createSimFarm({root, sourceSize: options.size ?? 32 * MiB, farm: farmName});
	const env = {
		...process.env,
		CI: 'true',
		FORCE_COLOR: '0',
		FARMCLONE_CONFIG_DIR: path.join(dir, 'config'),
		FARMCLONE_STATE_DIR: path.join(dir, 'state'),
	} as Record<string, string>;
	const held = options.holdCopy ? await heldDdDir(dir) : undefined;
	const settings = defaultSettings(farmName, {
		...sim.settings,
		...(held ? {commandPath: [held, ...(sim.settings.commandPath ?? [])]} : {}),
		mac: fixedMac,
		firewallTimeout: 15,
		...identityOff,
		...options.settings,
	});
	new SettingsStore(env['FARMCLONE_CONFIG_DIR']).save(settings);
	const stateDir = path.join(env['FARMCLONE_STATE_DIR']!, farmName);
	return {
		dir,
		root,
		stateDir,
		env,
		settings,
		async journal() {
			return JSON.parse(await fs.readFile(path.join(stateDir, 'journal.json'), 'utf8')) as Journal;
		},
		async releaseCopies() {
			if (held) await writeHeldCopies(held, false);
		},
	};
}

let restartFlag: string[] | undefined;

/** `--restart-firewall` where this build has it: a headless run then restarts the firewall instead of stopping. */
async function firewallFlag(): Promise<string[]> {
	restartFlag ??= (await execa(process.execPath, [cli, '--help'])).stdout.includes('--restart-firewall')
		? ['--restart-firewall']
		: [];
	return restartFlag;
}

export type CliRun = {
	child: ResultPromise;
	/** Resolves when the process ended: its exit code (or the signal that ended it), and every JSON event. */
	done: Promise<{exitCode?: number; signal?: string; events: EngineEvent[]; stdout: string; stderr: string}>;
};

/** `farmclone ARGS` against the farm; `onEvent` sees each JSON event as it is printed. */
export function startCli(farm: TestFarm, args: string[], onEvent?: (event: EngineEvent) => void): CliRun {
	// No forceKillAfterDelay: execa would follow a SIGTERM with a SIGKILL 5 s later, when farmclone may still be
	// finishing a firewall restart before its safe point.
	const child = execa(process.execPath, [cli, ...args], {
		env: farm.env,
		reject: false,
		buffer: false,
		forceKillAfterDelay: false,
	});
	const events: EngineEvent[] = [];
	const lines: string[] = [];
	let stderr = '';
	child.stderr?.on('data', (chunk: Buffer) => {
		stderr += chunk.toString();
	});
	const reader = readline.createInterface({input: child.stdout!});
	reader.on('line', (line) => {
		lines.push(line);
		if (!line.startsWith('{')) return;
		const event = JSON.parse(line) as EngineEvent;
		events.push(event);
		onEvent?.(event);
	});
	const done = (async () => {
		const result = await child;
		await new Promise((resolve) => setImmediate(resolve));
		return {
			exitCode: result.exitCode,
			signal: result.signal,
			events,
			stdout: lines.join('\n'),
			stderr,
		};
	})();
	return {child, done};
}

/** The headless run the tests make: every stage confirmed, JSON events. */
export async function runArgs(command = 'run'): Promise<string[]> {
	const confirm = ['--yes', '--confirm', farmName, '--json'];
	return command === 'run'
		? [command, farmName, ...confirm, ...(await firewallFlag())]
		: [command, farmName, ...confirm];
}

async function sha256(file: string): Promise<string> {
	const hash = createHash('sha256');
	for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
	return hash.digest('hex');
}

/**
 * Not part of the farm tree: what the running daemons write for themselves
 * (logs, pid files, sockets, dhcpd's leases, named's cache, nginx's temp
 * dirs), Shorewall's compiled state (var/lib/shorewall: regenerated by every
 * start, it holds the compile time), the sim's own process bookkeeping, and
 * farmclone's settings and run state (journal, backups), which are not the
 * farm's.
 */
const notTheFarm = [
	'farmclone',
	'run',
	'var/run',
	'var/log',
	'var/cache',
	'var/lib/dhcp',
	'var/lib/nginx',
	'var/lib/shorewall',
	'var/lib/farmclone-sim/services.json',
	'var/lib/farmclone-sim/services.lock',
	'var/lib/farmclone-sim/namespace',
	'var/lib/farmclone-sim/pids',
];

export type FarmTree = Record<string, string>;

/**
 * Every file of the farm tree: text files by content, volumes by hash, links
 * by target. With `normalize`, what differs between two farms built apart is
 * made comparable: the root path, and the uuids LVM and Ganeti make up (named
 * in order of first appearance), and the stand-ins' creation times.
 */
export async function farmTree(root: string, options: {normalize: boolean}): Promise<FarmTree> {
	const tree: FarmTree = {};
	const tokens = new Map<string, string>();
	const uuid = /\b[\da-f]{8}-[\da-f]{4}-[\da-f]{4}-[\da-f]{4}-[\da-f]{12}\b|\b[\w]{6}(-[\w]{4}){5}-[\w]{6}\b/gi;
	const normalize = (text: string) =>
		options.normalize
			? text
					.replaceAll(root, '<root>')
					.replaceAll(uuid, (found) => {
						if (!tokens.has(found)) tokens.set(found, `<uuid${tokens.size + 1}>`);
						return tokens.get(found)!;
					})
					.replaceAll(/secret "[^"]*"/g, 'secret "<the sim\'s rndc key>"')
			: text;
	// The source disk holds a filesystem made when the sim was built (its own uuid and times): two sims differ
	// there. What must hold in both is that a volume has the source's bytes.
	const sourceDisk = path.join(root, 'dev/all/f3e8d23f-21c0-417d-9b5e-91bb4da9b926.disk0');
	const sourceHash = options.normalize ? await sha256(sourceDisk) : undefined;
	const volume = (hash: string) => (hash === sourceHash ? 'the bytes of the source disk' : hash);
	// The stand-ins' state first, so that uuids are named in the order the stand-ins keep them.
	for (const name of ['lvm.json', 'ganeti.json']) {
		const file = path.join(root, 'var/lib/farmclone-sim', name);
		const state = JSON.parse(await fs.readFile(file, 'utf8')) as unknown;
		const text = JSON.stringify(state, (key, value: unknown) =>
			options.normalize && (key === 'ctime' || key === 'mtime') ? '<time>' : value,
		);
		tree[`var/lib/farmclone-sim/${name}`] = normalize(text);
	}

	const walk = async (relative: string): Promise<void> => {
		const absolute = path.join(root, relative);
		const stat = await fs.lstat(absolute);
		if (notTheFarm.some((prefix) => relative === prefix || relative.startsWith(`${prefix}/`))) return;
		if (relative in tree) return;
		if (stat.isDirectory()) {
			if (relative) tree[normalize(`${relative}/`)] = `dir ${(stat.mode & 0o7777).toString(8)}`;
			for (const entry of (await fs.readdir(absolute)).sort()) await walk(path.join(relative, entry));
		} else if (stat.isSymbolicLink()) {
			tree[normalize(relative)] = `link ${normalize(await fs.readlink(absolute))}`;
		} else if (relative.startsWith('dev/')) {
			tree[normalize(relative)] = `volume ${stat.size} ${volume(await sha256(absolute))}`;
		} else {
			tree[normalize(relative)] =
				`${(stat.mode & 0o7777).toString(8)} ${normalize(await fs.readFile(absolute, 'utf8'))}`;
		}
	};

	await walk('');
	return Object.fromEntries(Object.entries(tree).sort(([a], [b]) => a.localeCompare(b)));
}

/** The differences between two trees, one line each, for an assertion message. */
export function treeDifferences(expected: FarmTree, actual: FarmTree): string[] {
	const differences: string[] = [];
	for (const key of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
		if (expected[key] === actual[key]) continue;
		if (!(key in actual)) differences.push(`missing: ${key}`);
		else if (!(key in expected)) differences.push(`extra: ${key}`);
		else differences.push(`differs: ${key}\n--- expected\n${expected[key]}\n--- actual\n${actual[key]}`);
	}

	return differences;
}

/** Waits until `test` holds, checking every 50 ms. */
export async function waitFor(test: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await test())) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await sleep(50);
	}
}

/** A headless run to the end: exit 0 and the journal saying done; its events. */
export async function completeRun(farm: TestFarm): Promise<EngineEvent[]> {
	const result = await startCli(farm, await runArgs()).done;
	assert.equal(
		result.exitCode,
		0,
		`the run failed:\n${result.stdout.split('\n').slice(-15).join('\n')}\n${result.stderr}`,
	);
	assert.equal((await farm.journal()).outcome, 'done');
	return result.events;
}
