import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import {test} from 'node:test';
import {isAlive, parseDdOutput} from '../../source/host/copy.js';
import {cli, farmName, makeFarm, MiB, waitFor, type TestFarm} from '../kit/farm.js';
import {answerScreen, capture, killSession, tmux} from '../kit/tmux.js';

/** The TUI of `farmclone run` in a new tmux session (80x24), its exit code written to `exitFile` when it ends. */
async function startSession(farm: TestFarm, session: string, exitFile: string): Promise<void> {
	const env = [
		'CI=false',
		'TERM=xterm-256color',
		...['FARMCLONE_CONFIG_DIR', 'FARMCLONE_STATE_DIR'].map((name) => `${name}=${farm.env[name]}`),
	];
	const command = ['env', ...env, process.execPath, cli, 'run', farmName];
	const script = path.join(farm.dir, `${session}.sh`);
	await fs.writeFile(
		script,
		`#!/bin/sh\n${command.map((word) => `'${word}'`).join(' ')}\necho $? > '${exitFile}'\nsleep 600\n`,
		{mode: 0o755},
	);
	await tmux('new-session', '-d', '-s', session, '-x', '80', '-y', '24', script);
}

/**
 * The SSH session dies in the middle of the copy: the tmux session running
 * the TUI is killed (its terminal hangs up, as sshd's does). farmclone must
 * stop at a safe point and give the lock back, dd must go on, and a new
 * session, driven by keys, resumes and reaches the end with an exact clone.
 */
test(
	'the TUI killed with its terminal in the middle of the copy; a new session resumes to the end',
	{timeout: 480_000},
	async (t) => {
		const farm = await makeFarm(t, {size: 64 * MiB, settings: {copyBlockSize: 4096}});
		const sessions = [`farmclone-resume-a-${process.pid}`, `farmclone-resume-b-${process.pid}`];
		t.after(async () => {
			for (const session of sessions) await killSession(session);
		});
		const exitFiles = sessions.map((session) => path.join(farm.dir, `${session}.exit`));
		const typedFor = new Set<string>();

		await startSession(farm, sessions[0]!, exitFiles[0]!);
		let dd: {pid: number; startTime: number} | undefined;
		await waitFor(
			async () => {
				await answerScreen(sessions[0]!, await capture(sessions[0]!), farmName, typedFor);
				const states = (await farm.journal().catch(() => undefined))?.states;
				if (typeof states?.['copy']?.['pid'] !== 'number') return false;
				const copied = parseDdOutput(
					await fs.readFile(String(states['copy']?.['progressFile']), 'utf8').catch(() => ''),
				);
				dd = {pid: states['copy']?.['pid'], startTime: Number(states['copy']?.['startTime'])};
				return copied.bytes > 0;
			},
			240_000,
			'the copy to be under way in the TUI',
		);
		assert.ok(dd);
		const lockFile = path.join(farm.stateDir, 'lock');
		const owner = JSON.parse(await fs.readFile(lockFile, 'utf8')) as {pid: number};

		await tmux('kill-session', '-t', sessions[0]!);
		await waitFor(
			async () => !(await fs.stat(`/proc/${owner.pid}`).catch(() => undefined)),
			20_000,
			'farmclone to stop',
		);
		await assert.rejects(fs.access(lockFile), 'farmclone gave the lock back before it went');
		const journal = await farm.journal();
		assert.equal(journal.stages['copy']?.state, 'running', 'the journal says the copy is under way');
		const ddWentOn = await isAlive(dd);
		const progress = parseDdOutput(await fs.readFile(String(journal.states['copy']?.['progressFile']), 'utf8'));
		assert.ok(ddWentOn || progress.finished, 'dd outlived the session (or had finished)');

		await startSession(farm, sessions[1]!, exitFiles[1]!);
		const typedAgain = new Set<string>();
		let sawResume = false;
		let last = '';
		await waitFor(
			async () => {
				const screen = await tmux('capture-pane', '-p', '-S', '-200', '-t', sessions[1]!);
				if (/resume: Copy the disk/.test(screen)) sawResume = true;
				if (screen !== last) {
					last = screen;
					await answerScreen(sessions[1]!, await capture(sessions[1]!), farmName, typedAgain);
				}

				return (await fs.readFile(exitFiles[1]!, 'utf8').catch(() => undefined)) !== undefined;
			},
			300_000,
			'the resumed TUI to end',
		);
		assert.equal((await fs.readFile(exitFiles[1]!, 'utf8')).trim(), '0', `last screen:\n${last}`);
		assert.ok(sawResume, 'the resumed session said what it found of the copy');
		const done = await farm.journal();
		assert.equal(done.outcome, 'done');
		const adopted = path.join(farm.root, 'dev/all', String(done.states['ganeti-instance']?.['disk']));
		const source = path.join(farm.root, 'dev/all', farm.settings.sourceLv);
		const [a, b] = await Promise.all([fs.readFile(adopted), fs.readFile(source)]);
		assert.ok(a.equals(b), 'the clone has the bytes of the source');
	},
);
