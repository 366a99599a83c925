import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';

import {runEngine, runUndo} from '../source/engine/engine.js';
import type {EngineEvent} from '../source/engine/events.js';
import {readJournal} from '../source/engine/journal.js';
import {acquireLock, LockedError, readLock} from '../source/engine/lock.js';
import {defaultSettings} from '../source/settings/schema.js';
import type {Stage} from '../source/stages/types.js';
import {createTuiPrompt} from '../source/ui/tui-prompt.js';
import {askWith, type GateQuestion} from './kit/stage.js';

/** A stage whose effect is a file: check looks at the "host" (the file), not at the journal. */
function fileStage(dir: string, id: string, options: {fail?: boolean; skippable?: boolean} = {}): Stage {
	const file = path.join(dir, id);
	return {
		id,
		title: id,
		summary: id,
		danger: 'none',
		skippable: options.skippable ?? true,
		async check() {
			return (await fs.stat(file).catch(() => undefined))
				? {status: 'done', detail: 'present'}
				: {status: 'pending', detail: 'absent'};
		},
		async plan() {
			return {commands: [['touch', file]], diffs: [], notes: []};
		},
		async apply(context) {
			if (options.fail) throw new Error(`${id} broke`);
			await context.saveState(id, {made: true});
			await fs.writeFile(file, id);
		},
		async verify() {
			await fs.access(file);
		},
		async undo() {
			await fs.rm(file, {force: true});
		},
	};
}

async function setup(t: {after: (fn: () => Promise<void>) => void}) {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-engine-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	const hostDir = path.join(dir, 'host');
	const stateDir = path.join(dir, 'state');
	await fs.mkdir(hostDir);
	return {hostDir, stateDir};
}

function run(
	stages: Stage[],
	stateDir: string,
	gate: (question: GateQuestion) => Promise<'run' | 'skip' | 'quit'>,
	events: EngineEvent[] = [],
) {
	return runEngine({
		settings: defaultSettings('gallifrey-dev'),
		stages,
		ask: askWith(gate),
		onEvent: (event) => events.push(event),
		signal: new AbortController().signal,
		stateDir,
	});
}

test('runs every stage in order and journals each one', async (t) => {
	const {hostDir, stateDir} = await setup(t);
	const stages = ['a', 'b', 'c'].map((id) => fileStage(hostDir, id));
	const events: EngineEvent[] = [];
	const outcome = await run(stages, stateDir, async () => 'run', events);
	assert.equal(outcome, 'done');
	const journal = await readJournal(stateDir);
	assert.deepEqual(
		Object.entries(journal!.stages).map(([id, record]) => [id, record.state]),
		[
			['a', 'done'],
			['b', 'done'],
			['c', 'done'],
		],
	);
	assert.equal(journal!.states['b']?.['made'], true);
	assert.equal(journal!.outcome, 'done');
	assert.deepEqual(
		events.filter((event) => event.type === 'stage-start').map((event) => (event as {stage: string}).stage),
		['a', 'b', 'c'],
	);
});

test('quit leaves the run resumable; resume trusts the host over the journal', async (t) => {
	const {hostDir, stateDir} = await setup(t);
	const stages = ['a', 'b', 'c'].map((id) => fileStage(hostDir, id));
	assert.equal(await run(stages, stateDir, async ({index}) => (index < 1 ? 'run' : 'quit')), 'stopped');
	assert.equal((await readJournal(stateDir))!.stages['a']!.state, 'done');
	// Someone removed a's effect meanwhile: the resumed run redoes it rather than trusting the journal.
	await fs.rm(path.join(hostDir, 'a'));
	const asked: string[] = [];
	assert.equal(
		await run(stages, stateDir, async ({stage}) => {
			asked.push(stage.id);
			return 'run';
		}),
		'done',
	);
	assert.deepEqual(asked, ['a', 'b', 'c']);
	// Effects already present are not asked about again.
	asked.length = 0;
	assert.equal(await run(stages, stateDir, async ({stage}) => (asked.push(stage.id), 'run')), 'done');
	assert.deepEqual(asked, []);
});

test('a failing stage stops the run with its error in the journal', async (t) => {
	const {hostDir, stateDir} = await setup(t);
	const stages = [fileStage(hostDir, 'a'), fileStage(hostDir, 'b', {fail: true}), fileStage(hostDir, 'c')];
	const events: EngineEvent[] = [];
	assert.equal(await run(stages, stateDir, async () => 'run', events), 'failed');
	const journal = await readJournal(stateDir);
	assert.equal(journal!.stages['b']!.state, 'failed');
	assert.equal(journal!.stages['b']!.error, 'b broke');
	assert.equal(journal!.stages['c'], undefined);
	assert.ok(events.some((event) => event.type === 'stage-failed' && event.error === 'b broke'));
});

test("a stage's question stopped by the screen (q, Ctrl+C) stops the run resumable, not as a failure", async (t) => {
	const {hostDir, stateDir} = await setup(t);
	const {ask, stop} = createTuiPrompt(() => undefined);
	const asking: Stage = {
		...fileStage(hostDir, 'b'),
		async apply(context) {
			if (!(await context.prompt.confirm('extend the snapshot?'))) throw new Error('not extended');
		},
	};
	const running = runEngine({
		settings: defaultSettings('gallifrey-dev'),
		stages: [fileStage(hostDir, 'a'), asking],
		ask: async (question) => (question.kind === 'gate' ? ('run' as never) : ask(question)),
		onEvent() {},
		signal: new AbortController().signal,
		stateDir,
	});
	for (let tries = 0; tries < 200 && (await readJournal(stateDir))?.stages['b']?.state !== 'running'; tries++) {
		await new Promise((resolve) => setTimeout(resolve, 10));
	}

	stop();
	assert.equal(await running, 'stopped');
	const journal = await readJournal(stateDir);
	assert.equal(journal!.stages['b']!.state, 'running', 'left for the next session to check');
	assert.equal(journal!.stages['b']!.error, undefined);
});

test('skip is honoured only for skippable stages', async (t) => {
	const {hostDir, stateDir} = await setup(t);
	const stages = [fileStage(hostDir, 'a', {skippable: true}), fileStage(hostDir, 'b', {skippable: false})];
	assert.equal(await run(stages, stateDir, async () => 'skip'), 'done');
	const journal = await readJournal(stateDir);
	assert.equal(journal!.stages['a']!.state, 'skipped');
	assert.equal(journal!.stages['b']!.state, 'done');
});

test('undo reverses completed stages last first and clears the journal', async (t) => {
	const {hostDir, stateDir} = await setup(t);
	const stages = ['a', 'b', 'c'].map((id) => fileStage(hostDir, id));
	await run(stages, stateDir, async () => 'run');
	const order: string[] = [];
	const outcome = await runUndo({
		settings: defaultSettings('gallifrey-dev'),
		stages,
		ask: askWith(),
		onEvent: (event) => {
			if (event.type === 'stage-undone') order.push(event.stage);
		},
		signal: new AbortController().signal,
		stateDir,
	});
	assert.equal(outcome, 'done');
	assert.deepEqual(order, ['c', 'b', 'a']);
	assert.deepEqual(await fs.readdir(hostDir), []);
	assert.deepEqual((await readJournal(stateDir))!.stages, {});
});

test('the lock names its owner and a dead owner is taken over', async (t) => {
	const {stateDir} = await setup(t);
	const release = await acquireLock(stateDir, 'test');
	await assert.rejects(acquireLock(stateDir, 'second'), (error: unknown) => {
		return error instanceof LockedError && error.owner.pid === process.pid && /pid \d+/.test(error.message);
	});
	await release();
	// A lock left by a process that is gone.
	const child = spawn(process.execPath, ['-e', '0']);
	await new Promise((resolve) => child.on('exit', resolve));
	await fs.writeFile(
		path.join(stateDir, 'lock'),
		JSON.stringify({pid: child.pid, host: os.hostname(), since: 'then', startTime: 1, command: 'x'}),
	);
	const again = await acquireLock(stateDir, 'third');
	assert.equal((await readLock(stateDir))!.command, 'third');
	await again();
	assert.equal(await readLock(stateDir), undefined);
});

test('a resumed run follows work still under way without asking; anything else is asked', async (t) => {
	const {hostDir, stateDir} = await setup(t);
	const underway: Stage = {
		...fileStage(hostDir, 'disk'),
		async check() {
			return {status: 'pending', detail: 'dd is still copying (pid 42)', underway: true};
		},
	};
	// The first session approved the copy and stopped while it ran: the journal says running.
	const asked: string[] = [];
	await run([underway], stateDir, async ({stage}) => {
		asked.push(stage.id);
		return 'quit';
	});
	const {JournalWriter} = await import('../source/engine/journal.js');
	const writer = new JournalWriter(stateDir, (await readJournal(stateDir))!);
	await writer.setStage('disk', {state: 'running'});

	const events: EngineEvent[] = [];
	const later = fileStage(hostDir, 'zone');
	const outcome = await run(
		[underway, later],
		stateDir,
		async ({stage}) => {
			asked.push(stage.id);
			return 'run';
		},
		events,
	);
	assert.equal(outcome, 'done');
	assert.deepEqual(asked, ['disk', 'zone'], 'the copy was asked about once, in the session that started it');
	assert.ok(
		events.some((event) => event.type === 'log' && /following without asking: dd is still copying/.test(event.text)),
	);
});

test('after a failure, an earlier stage the failure undid is shown and journalled as to do again', async (t) => {
	const {hostDir, stateDir} = await setup(t);
	const rule = fileStage(hostDir, 'rule');
	const restart: Stage = {
		...fileStage(hostDir, 'restart'),
		async apply() {
			// A rollback puts the rule file back as it was.
			await fs.rm(path.join(hostDir, 'rule'));
			throw new Error('rolled back: no confirmation');
		},
	};
	const events: EngineEvent[] = [];
	assert.equal(await run([fileStage(hostDir, 'zone'), rule, restart], stateDir, async () => 'run', events), 'failed');
	const reopened = events.filter((event) => event.type === 'stage-reopened');
	assert.deepEqual(
		reopened.map((event) => event.stage),
		['rule'],
	);
	const journal = await readJournal(stateDir);
	assert.equal(journal!.stages['rule']?.state, 'pending');
	assert.equal(journal!.stages['zone']?.state, 'done');
});

test('journal writes held until a gate: they wait for it, and a rejected gate leaves the file as it was', async (t) => {
	const {JournalWriter, newJournal} = await import('../source/engine/journal.js');
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-hold-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	const passing = new JournalWriter(path.join(dir, 'passes'), newJournal('gallifrey-dev'));
	let pass: () => void = () => undefined;
	passing.holdWritesUntil(
		new Promise<void>((resolve) => {
			pass = resolve;
		}),
	);
	let written = false;
	const write = passing.setStage('one', {state: 'running'}).then(() => {
		written = true;
	});
	await new Promise((resolve) => setImmediate(resolve));
	assert.equal(written, false, 'the write waits for the gate');
	assert.equal(await readJournal(path.join(dir, 'passes')), undefined);
	pass();
	await write;
	assert.equal((await readJournal(path.join(dir, 'passes')))?.stages['one']?.state, 'running');

	const refusing = new JournalWriter(path.join(dir, 'refused'), newJournal('gallifrey-dev'));
	refusing.holdWritesUntil(Promise.reject(new Error('preflight refuses')));
	await assert.rejects(refusing.setStage('one', {state: 'running'}), /preflight refuses/);
	await assert.rejects(
		refusing.update(() => undefined),
		/preflight refuses/,
		'and every write after it',
	);
	assert.equal(await readJournal(path.join(dir, 'refused')), undefined);
});
