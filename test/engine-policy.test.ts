/**
 * Policy in the engine: a dangerous stage runs only when the engine got the
 * farm's name typed, whatever front end answers (a test's own answers,
 * headless, the TUI's queue); a stage that needs a person stops a run nobody
 * watches unless accepted; `run` and `undo` go through the one session driver.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import type {Answers, Ask, Question} from '../source/engine/api.js';
import {runEngine} from '../source/engine/engine.js';
import type {EngineEvent} from '../source/engine/events.js';
import {readJournal} from '../source/engine/journal.js';
import {createHeadlessAsk, createHeadlessPrinter} from '../source/headless.js';
import {driveSession} from '../source/commands/session.js';
import {PreflightError} from '../source/engine/preflight.js';
import {defaultSettings, type FarmSettings} from '../source/settings/schema.js';
import {SettingsStore} from '../source/settings/store.js';
import type {Danger, PreflightCheck, Stage} from '../source/stages/types.js';
import {createTuiPrompt, type PromptRequest} from '../source/ui/tui-prompt.js';

const farm = 'gallifrey-dev';

/** A stage whose effect is a file in `dir`. */
function fileStage(dir: string, id: string, danger: Danger = 'none', extra: Partial<Stage> = {}): Stage {
	const file = path.join(dir, id);
	const exists = async () => (await fs.stat(file).catch(() => undefined)) !== undefined;
	return {
		id,
		title: `the ${id} stage`,
		summary: id,
		danger,
		skippable: false,
		check: async () => ((await exists()) ? {status: 'done', detail: 'there'} : {status: 'pending', detail: 'absent'}),
		plan: async () => ({commands: [['touch', file]], diffs: [], notes: []}),
		apply: async () => fs.writeFile(file, id),
		async verify() {
			if (!(await exists())) throw new Error('not there');
		},
		undo: async () => fs.rm(file, {force: true}),
		...extra,
	};
}

async function setup(t: {after: (fn: () => Promise<void>) => void}) {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-policy-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	const host = path.join(dir, 'host');
	await fs.mkdir(host);
	return {dir, host, stateDir: path.join(dir, 'state')};
}

async function run(stages: Stage[], stateDir: string, ask: Ask, unattended?: {acceptAttended: boolean; how: string}) {
	const events: EngineEvent[] = [];
	const outcome = await runEngine({
		// A source volume named: the preflight of a stage with checks validates the settings first.
		settings: {...defaultSettings(farm), sourceLv: 'f3e8d23f.disk0'},
		stages,
		ask,
		onEvent: (event) => events.push(event),
		signal: new AbortController().signal,
		stateDir,
		...(unattended ? {unattended} : {}),
	});
	const logs = events.flatMap((event) => (event.type === 'log' ? [event.text] : []));
	return {outcome, logs};
}

/** A front end that says run at every gate and answers typed questions with `typed`. */
const careless =
	(typed: string | undefined): Ask =>
	async (question: Question) =>
		(question.kind === 'gate'
			? 'run'
			: question.kind === 'typed'
				? typed
				: true) as Answers[typeof question.kind] as never;

test('a dangerous stage does not run on a gate answered run alone: the engine wants the name typed, whatever answers', async (t) => {
	const {host, stateDir} = await setup(t);
	const stages = () => [fileStage(host, 'plain'), fileStage(host, 'copy', 'typed')];
	const printed: string[] = [];
	const headless = createHeadlessAsk({
		farm,
		yes: true,
		printer: createHeadlessPrinter({json: false, write: (line) => printed.push(line)}),
	});
	// The TUI's queue, answered by a screen that lets the gate through without the typed field.
	const tui = createTuiPrompt((request: PromptRequest | undefined) => {
		if (request?.kind === 'gate') setImmediate(() => tui.answer(request.id, 'gate', 'run'));
		if (request?.kind === 'typed') setImmediate(() => tui.answer(request.id, 'typed', false));
	});
	const frontEnds: Array<[string, Ask]> = [
		['no typed answer', careless(undefined)],
		['a wrong name', careless('gallifrey')],
		['headless without --confirm', headless],
		['the TUI without the typed field', tui.ask],
	];
	for (const [name, ask] of frontEnds) {
		await fs.rm(stateDir, {recursive: true, force: true});
		await fs.rm(path.join(host, 'plain'), {force: true});
		const {outcome, logs} = await run(stages(), stateDir, ask);
		assert.equal(outcome, 'stopped', name);
		assert.equal(await fs.stat(path.join(host, 'copy')).catch(() => undefined), undefined, `${name}: copy did not run`);
		assert.ok(
			logs.some((text) => /the copy stage runs only once the farm's name is typed.*not run/.test(text)),
			`${name}: ${logs.join('\n')}`,
		);
		const journal = await readJournal(stateDir);
		assert.equal(journal?.stages['plain']?.state, 'done', name);
		assert.equal(journal?.stages['copy']?.state ?? 'pending', 'pending', `${name}: left to resume`);
	}

	assert.match(printed.join('\n'), /stopping before copy: the copy stage asks for the farm's name to be typed/);
	// With the name: it runs.
	const {outcome} = await run(stages(), stateDir, careless(farm));
	assert.equal(outcome, 'done');
	assert.equal(await fs.readFile(path.join(host, 'copy'), 'utf8'), 'copy');
});

test('a stage that needs a person stops a run nobody watches, unless accepted', async (t) => {
	const {host, stateDir} = await setup(t);
	const stages = () => [fileStage(host, 'restart', 'none', {attended: 'a person proves it'})];
	const how = 'with --accept-it';
	const refused = await run(stages(), stateDir, careless(farm), {acceptAttended: false, how});
	assert.equal(refused.outcome, 'stopped');
	assert.ok(
		refused.logs.some((text) =>
			text.startsWith('stopping before restart: without a terminal it runs only with --accept-it'),
		),
	);
	assert.equal(await fs.stat(path.join(host, 'restart')).catch(() => undefined), undefined);
	assert.equal((await run(stages(), stateDir, careless(farm), {acceptAttended: true, how})).outcome, 'done');
	// A person at the screen (no `unattended`): asked at its gate like any stage.
	await fs.rm(path.join(host, 'restart'));
	assert.equal((await run(stages(), stateDir, careless(farm))).outcome, 'done');
});

test('run and undo go through the one session driver: lock, front end, engine, exit code', async (t) => {
	const {dir, host} = await setup(t);
	const saved = {state: process.env['FARMCLONE_STATE_DIR'], write: process.stdout.write};
	process.env['FARMCLONE_STATE_DIR'] = path.join(dir, 'states');
	const printed: string[] = [];
	process.stdout.write = ((chunk: string) => (printed.push(String(chunk)), true)) as typeof process.stdout.write;
	t.after(() => {
		process.stdout.write = saved.write;
		if (saved.state === undefined) delete process.env['FARMCLONE_STATE_DIR'];
		else process.env['FARMCLONE_STATE_DIR'] = saved.state;
	});
	const store = new SettingsStore(path.join(dir, 'config'));
	store.save({...defaultSettings(farm), sourceLv: 'f3e8d23f.disk0'});
	const stages = [fileStage(host, 'one'), fileStage(host, 'two', 'typed')];
	const flags = {yes: true, json: false, confirm: farm};
	try {
		assert.equal(await driveSession(store, farm, 'run', flags, stages), 0);
		assert.deepEqual((await fs.readdir(host)).sort(), ['one', 'two']);
		assert.equal(await driveSession(store, farm, 'undo', flags, stages), 0);
		assert.deepEqual(await fs.readdir(host), []);
		// Without the name, the engine refuses the typed stage and the driver says how to resume.
		assert.equal(await driveSession(store, farm, 'run', {yes: true, json: false}, stages), 1);
	} finally {
		process.stdout.write = saved.write;
	}

	const text = printed.join('');
	assert.match(text, /farmclone gallifrey-dev: done/);
	assert.match(text, /↺ two undone[\s\S]*↺ one undone[\s\S]*farmclone gallifrey-dev: undone/);
	assert.match(text, /resume with: .*farmclone run gallifrey-dev --yes\n/);
	const lock = await fs.readdir(path.join(dir, 'states', farm));
	assert.ok(!lock.some((name) => name.includes('lock')), `the lock is released: ${lock.join(', ')}`);
});

/** A preflight check that waits until `finish` is called, then finds what `findings` holds. */
function heldPreflight(order: string[], findings: Array<[keyof FarmSettings, string]> = []) {
	let finish: () => void = () => undefined;
	const held = new Promise<void>((resolve) => {
		finish = resolve;
	});
	const check: PreflightCheck = async function heldPreflight({add}) {
		await held;
		order.push('preflight passed');
		for (const [field, reason] of findings) add(field, reason);
	};
	return {check, finish};
}

test(
	'the first gate shows while the preflight still checks; its Enter is kept, and the stage starts once the preflight passed',
	{timeout: 60_000},
	async (t) => {
		const {host, stateDir} = await setup(t);
		const order: string[] = [];
		const preflight = heldPreflight(order);
		const one = fileStage(host, 'one', 'none', {
			preflight: [preflight.check],
			apply: async () => {
				order.push('apply one');
				await fs.writeFile(path.join(host, 'one'), 'one');
			},
		});
		const ask: Ask = async (question) => {
			if (question.kind === 'gate') {
				order.push(`gate ${question.stage.id}`);
				// Answered at once, the preflight still running: it finishes only after the engine took the answer.
				setImmediate(preflight.finish);
			}

			return careless(undefined)(question);
		};
		const {outcome, logs} = await run([one], stateDir, ask);
		assert.equal(outcome, 'done');
		assert.deepEqual(order, ['gate one', 'preflight passed', 'apply one']);
		assert.ok(
			logs.some((text) => /starts once the preflight passes \(checking held\)/.test(text)),
			logs.join('\n'),
		);
	},
);

test(
	'a preflight refusal that comes while the first gate is shown replaces the gate; nothing runs, nothing is written',
	{timeout: 60_000},
	async (t) => {
		const {host, stateDir} = await setup(t);
		const order: string[] = [];
		const preflight = heldPreflight(order, [['ip', 'is taken by gallifrey.xivo.vm.farm']]);
		const one = fileStage(host, 'one', 'none', {preflight: [preflight.check]});
		// The person reads the gate and never answers; the refusal must not wait for them.
		const ask: Ask = async (question) => {
			if (question.kind !== 'gate') throw new Error(`unexpected ${question.kind}`);
			order.push('gate one');
			preflight.finish();
			return new Promise<never>(() => undefined);
		};
		await assert.rejects(run([one], stateDir, ask), (error: Error) => {
			assert.ok(error instanceof PreflightError, String(error));
			assert.match(error.message, /is taken by gallifrey\.xivo\.vm\.farm/);
			return true;
		});
		assert.deepEqual(order, ['gate one', 'preflight passed']);
		assert.deepEqual(await fs.readdir(host), []);
		const journal = await readJournal(stateDir);
		assert.equal(journal?.stages['one']?.state ?? 'pending', 'pending');
		assert.equal(journal?.outcome, undefined);
	},
);

test(
	'without a terminal nothing is shown early: the preflight passes before the first gate is asked',
	{timeout: 60_000},
	async (t) => {
		const {host, stateDir} = await setup(t);
		const order: string[] = [];
		const preflight = heldPreflight(order);
		const one = fileStage(host, 'one', 'none', {preflight: [preflight.check]});
		const ask: Ask = async (question) => {
			if (question.kind === 'gate') order.push(`gate ${question.stage.id}`);
			return careless(undefined)(question);
		};
		const running = run([one], stateDir, ask, {acceptAttended: false, how: 'with --yes'});
		// Let the engine get as far as it can before the check is let go: the gate must not be asked meanwhile.
		await new Promise((resolve) => setImmediate(resolve));
		await new Promise((resolve) => setTimeout(resolve, 200));
		preflight.finish();
		assert.equal((await running).outcome, 'done');
		assert.deepEqual(order, ['preflight passed', 'gate one']);
	},
);
