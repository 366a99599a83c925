import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {stopSimServices} from '../../source/sim/services.js';
import {answerScreen, capture, killSession, tmux} from '../kit/tmux.js';

const cli = path.resolve('dist/cli.js');

/**
 * The demo in a real pseudo-terminal (tmux, 80x24), driven by keys as a
 * person would: Enter for each stage, the farm's name where a typed
 * confirmation is asked, y for questions, until the end.
 */
test('the demo driven by keys in tmux reaches the end', {timeout: 600_000}, async (t) => {
	const work = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-tui-e2e-'));
	// The demo wants an empty directory of its own.
	const dir = path.join(work, 'farm');
	const session = `farmclone-e2e-${process.pid}`;
	const exitFile = path.join(work, 'exit-code');
	t.after(async () => {
		await killSession(session);
		await stopSimServices(dir).catch(() => undefined);
		await fs.rm(work, {recursive: true, force: true});
	});
	const command = [
		'env',
		'CI=false',
		'TERM=xterm-256color',
		'FARMCLONE_CONFIG_DIR=',
		'FARMCLONE_STATE_DIR=',
		process.execPath,
		cli,
		'demo',
		'--size',
		'32M',
		'--dir',
		dir,
	];
	// The exit code is written by a wrapper so the test can read it after the TUI ends.
	const script = path.join(work, 'run.sh');
	await fs.writeFile(
		script,
		`#!/bin/sh\n${command.map((word) => `'${word}'`).join(' ')}\necho $? > '${exitFile}'\nsleep 600\n`,
		{mode: 0o755},
	);
	await tmux('new-session', '-d', '-s', session, '-x', '80', '-y', '24', script);

	const typed = new Set<string>();
	let last = '';
	const deadline = Date.now() + 540_000;
	while (Date.now() < deadline) {
		const exitCode = await fs.readFile(exitFile, 'utf8').catch(() => undefined);
		if (exitCode !== undefined) {
			assert.equal(exitCode.trim(), '0', `farmclone exited ${exitCode.trim()}; last screen:\n${last}`);
			break;
		}

		const now = await capture(session);
		for (const line of now.split('\n')) assert.ok(line.length <= 80, `line wider than 80 columns: ${line}`);
		if (now !== last) {
			last = now;
			if (/press any key to exit/.test(now)) assert.match(now, /15\/15|all 15|done/i);
			await answerScreen(session, now, 'gallifrey-dev', typed);
		}

		await new Promise((resolve) => setTimeout(resolve, 300));
	}

	assert.ok(await fs.readFile(exitFile, 'utf8').catch(() => undefined), `the TUI did not end; last screen:\n${last}`);
	const journal = JSON.parse(
		await fs.readFile(path.join(dir, 'farmclone', 'state', 'gallifrey-dev', 'journal.json'), 'utf8'),
	) as {outcome: string};
	assert.equal(journal.outcome, 'done');
	const asked = [...typed].join('\n');
	assert.match(asked, /Type the farm's name/, 'the copy asked for the typed confirmation');
	assert.match(asked, /keep without proof/, 'the firewall restart waited, and was kept only by the typed choice');
});
