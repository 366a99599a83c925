import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test, type TestContext} from 'node:test';
import {runEngine} from '../source/engine/engine.js';
import type {EngineEvent} from '../source/engine/events.js';
import {readJournal} from '../source/engine/journal.js';
import {defaultSettings} from '../source/settings/schema.js';
import type {Prompt, Stage} from '../source/stages/types.js';
import {askWith} from './kit/stage.js';

/**
 * The engine when the terminal is gone: a question nobody can answer any
 * more (the TUI's gate, a stage's confirm) must not hold the run once the
 * signal aborted it; and a resumed run first says what it finds.
 */

const never = new Promise<never>(() => undefined);
const silent: Prompt = {confirm: async () => never, choose: async () => never, typed: async () => never};

function stage(dir: string, id: string, options: {asks?: boolean} = {}): Stage {
	const file = path.join(dir, id);
	return {
		id,
		title: `stage ${id}`,
		summary: id,
		danger: 'none',
		skippable: false,
		async check() {
			return (await fs.stat(file).catch(() => undefined))
				? {status: 'done', detail: `${id} present`}
				: {status: 'pending', detail: `${id} absent`};
		},
		async plan() {
			return {commands: [], diffs: [], notes: []};
		},
		async apply(context) {
			if (options.asks && !(await context.prompt.confirm('go on?'))) return;
			await fs.writeFile(file, id);
		},
		async verify() {},
		async undo() {},
	};
}

async function setup(t: TestContext) {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-fault-engine-'));
	t.after(async () => fs.rm(dir, {recursive: true, force: true}));
	const host = path.join(dir, 'host');
	await fs.mkdir(host);
	return {host, stateDir: path.join(dir, 'state')};
}

function start(stages: Stage[], stateDir: string, options: {gate?: 'never'; prompt?: Prompt; signal?: AbortSignal}) {
	const events: EngineEvent[] = [];
	const outcome = runEngine({
		settings: defaultSettings('gallifrey-dev'),
		stages,
		ask: askWith(async ({index}) => (options.gate === 'never' && index > 0 ? never : 'run'), options.prompt ?? silent),
		onEvent: (event) => events.push(event),
		signal: options.signal ?? new AbortController().signal,
		stateDir,
	});
	return {outcome, events};
}

test('a gate nobody answers any more does not hold the run once it is aborted', async (t) => {
	const {host, stateDir} = await setup(t);
	const controller = new AbortController();
	const {outcome, events} = start([stage(host, 'a'), stage(host, 'b')], stateDir, {
		gate: 'never',
		signal: controller.signal,
	});
	while (!events.some((event) => event.type === 'plan' && event.stage === 'b'))
		await new Promise((r) => setTimeout(r, 5));
	controller.abort();
	assert.equal(await outcome, 'stopped');
	const journal = await readJournal(stateDir);
	assert.equal(journal?.stages['a']?.state, 'done');
	assert.equal(journal?.stages['b'], undefined);
	assert.equal(journal?.outcome, 'stopped');
});

test("a stage's question nobody answers: stopped, the stage left running for the next session's check", async (t) => {
	const {host, stateDir} = await setup(t);
	const controller = new AbortController();
	const {outcome, events} = start([stage(host, 'a', {asks: true})], stateDir, {signal: controller.signal});
	while (!events.some((event) => event.type === 'stage-start')) await new Promise((r) => setTimeout(r, 5));
	controller.abort();
	assert.equal(await outcome, 'stopped');
	assert.equal((await readJournal(stateDir))?.stages['a']?.state, 'running');
});

test('a resumed run says, before anything runs, what the host shows of each stage the journal recorded', async (t) => {
	const {host, stateDir} = await setup(t);
	const stages = [stage(host, 'a'), stage(host, 'b', {asks: true}), stage(host, 'c')];
	const controller = new AbortController();
	const first = start(stages, stateDir, {signal: controller.signal});
	while (!first.events.some((event) => event.type === 'stage-start' && event.stage === 'b')) {
		await new Promise((r) => setTimeout(r, 5));
	}

	controller.abort();
	assert.equal(await first.outcome, 'stopped');
	const yes: Prompt = {...silent, confirm: async () => true};
	const second = start(stages, stateDir, {prompt: yes});
	assert.equal(await second.outcome, 'done');
	const runStart = second.events.find((event) => event.type === 'run-start');
	assert.ok(runStart?.type === 'run-start' && runStart.resumed);
	const lines = second.events.flatMap((event) => (event.type === 'log' ? [`${event.stage}: ${event.text}`] : []));
	assert.match(
		lines[0]!,
		/^resume: resuming the run of gallifrey-dev started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d[^;]*; checking the host for the 2 stages/,
	);
	assert.equal(lines[1], 'a: resume: stage a: found done: a present (journal: done)');
	assert.equal(lines[2], 'b: resume: stage b: not finished: b absent (journal: running)');
	const firstStart = second.events.findIndex((event) => event.type === 'stage-start');
	assert.ok(second.events.findIndex((event) => event.type === 'log') < firstStart);
});
