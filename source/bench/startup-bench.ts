/**
 * Start-up benchmark: the TUI as an admin meets it, in a pseudo-terminal of
 * 80x24 (a private tmux server), against the demo's simulated farm.
 *
 *   npm run bench:startup -- [rounds]     (as root: the demo farm needs namespaces; default 5)
 *
 * Figures, each a median of the rounds, against the targets of issue 13:
 * - first frame: from starting `farmclone run NAME` to the first screen
 *   naming the farm (the line it prints while Ink loads); the full screen,
 *   Ink's first frame, is printed beside it;
 * - first gate: to the first stage's gate on the screen, its plan to read.
 *   It may show while the preflight's slowest checks still run: its key line
 *   then says Enter runs once the preflight passes (an Enter is kept, and
 *   nothing starts before). Beside it, "preflight passed": to the key line
 *   saying Enter run, and each command the run started before then, as its
 *   command log timed it (the checkers side by side, then the first stage's
 *   look): where the time went;
 * - resume: a run stopped after its first stage (the session killed, as a
 *   dropped SSH connection does) started again, to its first frame;
 * - during the copy: farmclone's own CPU (utime+stime from /proc, of the
 *   process in the pane; dd runs detached and is not counted) and the bytes
 *   it writes to the terminal per second, while dd runs (the comparison of
 *   the whole clone that follows is the stage's work, not the screen's).
 * The clock is read by polling the pane every few milliseconds: a figure is
 * late by at most one poll, which the polls themselves slow a little. Only
 * the figures against their targets count, not their last digit.
 */
import {existsSync} from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';
import {readProcStat} from '../host/proc.js';

const rounds = Number(process.argv[2] ?? process.env['FARMCLONE_BENCH_ROUNDS'] ?? 5);
const cli = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../cli.js');
const farm = 'gallifrey-dev';
const socket = `farmclone-bench-${process.pid}`;
const pollMs = 5;

const targets = {firstFrameMs: 300, firstGateMs: 1000, resumeMs: 500, copyCpuPercent: 2, copyBytesPerSecond: 1024};

async function tmux(...args: string[]): Promise<string> {
	return (await execa('tmux', ['-L', socket, ...args])).stdout;
}

const screen = async (session: string) => tmux('capture-pane', '-p', '-t', session).catch(() => '');

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

type Demo = {dir: string; env: Record<string, string>; stateDir: string};

async function buildDemo(): Promise<Demo> {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-startup-bench-'));
	const env = {
		FARMCLONE_CONFIG_DIR: path.join(dir, 'farmclone/config'),
		FARMCLONE_STATE_DIR: path.join(dir, 'farmclone/state'),
	};
	// A copy long enough to be sampled for a few seconds.
	await execa(process.execPath, [cli, 'demo', '--dir', dir, '--size', '1G', '--no-run', '--keep'], {
		env: {...env, CI: 'true'},
	});
	// A fixed rate: the copy is sampled ~16 s whatever this machine's disk does (`auto` finished 1 GiB in 2 s here).
	await execa(process.execPath, [cli, 'farm', 'set', farm, 'copyRate=64M'], {env: {...env, CI: 'true'}});
	return {dir, env, stateDir: env.FARMCLONE_STATE_DIR};
}

let sessions = 0;

/** Starts `farmclone run` in a fresh 80x24 pane; returns its session and the start instant. */
async function startRun(demo: Demo): Promise<{session: string; startedAt: number}> {
	const session = `run${++sessions}`;
	const variables = Object.entries({...demo.env, CI: 'false', TERM: 'xterm-256color'}).flatMap(([key, value]) => [
		'-e',
		`${key}=${value}`,
	]);
	const startedAt = performance.now();
	await tmux(
		'new-session',
		'-d',
		'-s',
		session,
		'-x',
		'80',
		'-y',
		'24',
		...variables,
		process.execPath,
		cli,
		'run',
		farm,
	);
	return {session, startedAt};
}

/**
 * The baseline of a busy machine: node itself printing the farm's name in a
 * fresh pane, polled the same way. A figure over its target only under load
 * is judged by its ratio to this one, taken side by side.
 */
async function baselineRun(): Promise<number> {
	const session = `node${++sessions}`;
	const startedAt = performance.now();
	const script = `process.stdout.write('farmclone ${farm}\\n'); setTimeout(() => undefined, 60_000);`;
	await tmux('new-session', '-d', '-s', session, '-x', '80', '-y', '24', process.execPath, '-e', script);
	const ms = await until(session, startedAt, firstFrame);
	await tmux('kill-session', '-t', session);
	return ms;
}

const loadAverage = () =>
	os
		.loadavg()
		.map((load) => load.toFixed(2))
		.join(' ');

/** Milliseconds from `startedAt` until the screen matches `pattern`. */
async function until(session: string, startedAt: number, pattern: RegExp, timeoutMs = 60_000): Promise<number> {
	for (;;) {
		const text = await screen(session);
		const now = performance.now();
		if (pattern.test(text)) return now - startedAt;
		if (now - startedAt > timeoutMs) throw new Error(`no ${pattern} on the screen after ${timeoutMs} ms:\n${text}`);
		await sleep(pollMs);
	}
}

/** Ends the session as a dropped SSH connection does (SIGHUP to the pane) and waits for farmclone to exit. */
async function hangUp(session: string): Promise<void> {
	const pid = Number(await tmux('display-message', '-p', '-t', session, '#{pane_pid}'));
	await tmux('kill-session', '-t', session);
	while (await readProcStat(pid)) await sleep(20);
}

const firstFrame = /farmclone gallifrey-dev/;
/** The screen itself (Ink's first frame, with the stage count), after the line farmclone prints while it loads. */
const fullFrame = /farmclone gallifrey-dev · \d+\/\d+ done/;
/** The gate on the screen, its plan shown, whether or not the preflight's last checks still run. */
const gateShown = / · waits for you/;
/** The gate with the preflight passed: Enter runs the stage at once. */
const gate = /Enter run|Enter go on/;

async function cpuTicks(pid: number): Promise<number> {
	const stat = await readProcStat(pid);
	if (!stat) throw new Error(`farmclone (pid ${pid}) ended before its CPU time was read`);
	return stat.utime + stat.stime;
}

/** The copy's dd, as the run's journal records it. */
async function copyPid(demo: Demo): Promise<number> {
	const journal = path.join(demo.stateDir, farm, 'journal.json');
	for (let tries = 0; tries < 100; tries++) {
		const text = await fs.readFile(journal, 'utf8').catch(() => '{}');
		const pid = (JSON.parse(text) as {states?: {copy?: Record<string, unknown>}}).states?.copy?.['pid'];
		if (typeof pid === 'number') return pid;
		await sleep(50);
	}

	throw new Error(`no states.copy.pid in ${journal}`);
}

/** Answers gates and typed confirmations until the copy shows progress, then samples until it is done. */
async function sampleCopy(demo: Demo): Promise<{cpuPercent: number; bytesPerSecond: number; seconds: number}> {
	const {session, startedAt} = await startRun(demo);
	const pid = Number(await tmux('display-message', '-p', '-t', session, '#{pane_pid}'));
	const output = path.join(demo.dir, 'terminal.out');
	// tmux runs the pipe through sh; the path is a temp dir's, with nothing a shell would read into.
	await tmux('pipe-pane', '-O', '-t', session, `cat > ${output}`);
	const typed = new Set<string>();
	for (;;) {
		const text = await screen(session);
		if (/ETA /.test(text)) break;
		if (performance.now() - startedAt > 120_000) throw new Error(`the copy did not start:\n${text}`);
		if (/Type the farm's name/.test(text) && !typed.has('name')) {
			typed.add('name');
			await tmux('send-keys', '-t', session, '-l', farm);
			await tmux('send-keys', '-t', session, 'Enter');
		} else if (gate.test(text) && !/Type the farm's name/.test(text)) {
			await tmux('send-keys', '-t', session, 'Enter');
			await sleep(200);
		}

		await sleep(50);
	}

	const dd = await copyPid(demo);
	const ticksBefore = await cpuTicks(pid);
	const bytesBefore = (await fs.stat(output)).size;
	const from = performance.now();
	// While dd copies: the stage's byte-for-byte comparison after it is work of its own, not the screen's.
	while ((await readProcStat(dd)) && /ETA /.test(await screen(session))) await sleep(100);
	const seconds = (performance.now() - from) / 1000;
	const cpuPercent = ((((await cpuTicks(pid)) - ticksBefore) / 100) * 100) / seconds;
	const bytesPerSecond = ((await fs.stat(output)).size - bytesBefore) / seconds;
	await hangUp(session);
	return {cpuPercent, bytesPerSecond, seconds};
}

/** What each command before the first gate took, by program and verb (`shorewall check`), from the run's command log. */
async function commandTimes(demo: Demo): Promise<Map<string, number>> {
	const log = await fs.readFile(path.join(demo.stateDir, farm, 'commands.log'), 'utf8').catch(() => '');
	const times = new Map<string, number>();
	for (const match of log.matchAll(/^=== .*? \$ (\S+(?: [^-\s]\S*)?).* -> exit \d+ \((\d+) ms\)$/gm)) {
		times.set(match[1]!, (times.get(match[1]!) ?? 0) + Number(match[2]));
	}

	return times;
}

function line(name: string, value: number, unit: string, target: number): string {
	const met = value <= target ? 'met' : 'NOT met';
	return `  ${name.padEnd(22)} ${value.toFixed(unit === 'ms' ? 0 : 1).padStart(7)} ${unit.padEnd(4)} target <= ${target} ${unit}: ${met}`;
}

async function main(): Promise<void> {
	if (process.getuid?.() !== 0) {
		console.log('startup bench: skipped, it needs root (the demo farm uses network namespaces)');
		return;
	}

	if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
	const demo = await buildDemo();
	await tmux('new-session', '-d', '-s', 'idle', '-x', '80', '-y', '24', 'sleep', '1d');
	try {
		console.log(`load average at the start: ${loadAverage()} (${os.cpus().length} cores)`);
		const frames: number[] = [];
		const gates: number[] = [];
		const shownGates: number[] = [];
		const screens: number[] = [];
		const baselines: number[] = [];
		const commands = new Map<string, number[]>();
		for (let round = 1; round <= rounds; round++) {
			await fs.rm(demo.stateDir, {recursive: true, force: true});
			baselines.push(await baselineRun());
			const {session, startedAt} = await startRun(demo);
			frames.push(await until(session, startedAt, firstFrame));
			screens.push(await until(session, startedAt, fullFrame));
			shownGates.push(await until(session, startedAt, gateShown));
			gates.push(await until(session, startedAt, gate));
			await hangUp(session);
			for (const [command, ms] of await commandTimes(demo))
				commands.set(command, [...(commands.get(command) ?? []), ms]);
			console.log(
				`round ${round}: node alone ${baselines.at(-1)!.toFixed(0)} ms, first frame ${frames.at(-1)!.toFixed(0)} ms, screen ${screens.at(-1)!.toFixed(0)} ms, first gate ${shownGates.at(-1)!.toFixed(0)} ms, preflight passed ${gates.at(-1)!.toFixed(0)} ms`,
			);
		}

		// A run with its first stage done, then left as a dropped connection leaves it.
		await fs.rm(demo.stateDir, {recursive: true, force: true});
		const first = await startRun(demo);
		await until(first.session, first.startedAt, gate);
		await tmux('send-keys', '-t', first.session, 'Enter');
		await until(first.session, first.startedAt, /1\/\d+ done/);
		await hangUp(first.session);
		const resumes: number[] = [];
		for (let round = 1; round <= rounds; round++) {
			const {session, startedAt} = await startRun(demo);
			resumes.push(await until(session, startedAt, firstFrame));
			await until(session, startedAt, gate);
			await hangUp(session);
			console.log(`round ${round}: resumed, first frame ${resumes.at(-1)!.toFixed(0)} ms`);
		}

		const copy = await sampleCopy(demo);
		console.log(`copy sampled for ${copy.seconds.toFixed(1)} s`);
		const baseline = median(baselines);
		console.log(`\nstart-up, median of ${rounds} rounds (80x24 pane, demo farm), load average ${loadAverage()}:`);
		console.log(`  ${'node alone (baseline)'.padEnd(22)} ${baseline.toFixed(0).padStart(7)} ms`);
		console.log(line('first frame', median(frames), 'ms', targets.firstFrameMs));
		console.log(
			`  ${'first full screen'.padEnd(22)} ${median(screens).toFixed(0).padStart(7)} ms   (no target: Ink's own first frame)`,
		);
		console.log(line('first gate', median(shownGates), 'ms', targets.firstGateMs));
		console.log(
			`  ${'preflight passed'.padEnd(22)} ${median(gates).toFixed(0).padStart(7)} ms   (no target: the gate's key line says Enter run; an Enter before is kept)`,
		);
		console.log(
			`    (commands before the preflight passed, median ms: ${[...commands]
				.map(([command, times]) => `${command} ${median(times).toFixed(0)}`)
				.join(', ')})`,
		);
		console.log(line('resume to first frame', median(resumes), 'ms', targets.resumeMs));
		console.log(
			`  ratios to node alone: first frame ${(median(frames) / baseline).toFixed(1)}x, first gate ${(median(shownGates) / baseline).toFixed(1)}x, resume ${(median(resumes) / baseline).toFixed(1)}x`,
		);
		console.log(line('copy: CPU', copy.cpuPercent, '%', targets.copyCpuPercent));
		console.log(line('copy: to the terminal', copy.bytesPerSecond, 'B/s', targets.copyBytesPerSecond));
	} finally {
		await tmux('kill-server').catch(() => undefined);
		await execa(process.execPath, [cli, 'demo', '--stop', '--dir', demo.dir], {reject: false});
		await fs.rm(demo.dir, {recursive: true, force: true});
	}
}

await main();
