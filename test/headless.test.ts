import assert from 'node:assert/strict';
import {promptFrom} from '../source/engine/engine.js';
import {test} from 'node:test';
import type {GateQuestion} from './kit/stage.js';
import type {EngineEvent} from '../source/engine/events.js';
import {createHeadlessAsk, createHeadlessPrinter} from '../source/headless.js';
import type {Question} from '../source/engine/api.js';
import type {CopyProgress, Danger, Plan} from '../source/stages/types.js';
import {fakeStage} from './kit/stage.js';

const farm = 'gallifrey-dev';
const stages = ['snapshot', 'target', 'copy', 'drop-snapshot'].map((id) => ({id}));
const gib = 1024 ** 3;

function capture(options: {json?: boolean; now?: () => number; stages?: ReadonlyArray<{id: string}>} = {}) {
	const lines: string[] = [];
	const printer = createHeadlessPrinter({
		json: options.json ?? false,
		write: (line) => lines.push(line),
		now: options.now,
		stages: options.stages ?? stages,
	});
	return {lines, printer};
}

const progress = (bytes: number, patch: Partial<CopyProgress> = {}): EngineEvent => ({
	type: 'progress',
	stage: 'copy',
	progress: {bytes, total: gib, rate: 180 * 1024 ** 2, etaSeconds: 3, ...patch},
});

test('text lines: stage numbers, commands with their exit code, timings, failures with hints', () => {
	const {lines, printer} = capture();
	const events: EngineEvent[] = [
		{type: 'run-start', farm, resumed: false, at: '2024-01-01T00:00:00.000Z'},
		{type: 'check', stage: 'copy', result: {status: 'pending', detail: 'target is empty'}},
		{type: 'stage-start', stage: 'copy', title: 'copy the disk'},
		{
			type: 'command',
			stage: 'copy',
			command: {argv: ['ionice', '-c3', 'dd', 'if=/dev/all/snap'], exitCode: 0, stdout: '', stderr: '', durationMs: 1},
		},
		progress(512 * 1024 ** 2),
		{type: 'stage-done', stage: 'copy', title: 'copy the disk', seconds: 5.2},
		{type: 'check', stage: 'snapshot', result: {status: 'done', detail: 'snapshot exists'}},
		{type: 'stage-done', stage: 'snapshot', title: 'snapshot', seconds: 0},
		{type: 'stage-skipped', stage: 'drop-snapshot', title: 'drop the snapshot', reason: 'skipped by the admin'},
		{
			type: 'command',
			stage: 'target',
			command: {
				argv: ['lvcreate', '--name', 'dev vol', 'all'],
				exitCode: 5,
				stdout: '',
				stderr: '  Volume group "all" has insufficient free space\n',
				durationMs: 1,
			},
		},
		{type: 'stage-failed', stage: 'target', title: 'target', error: 'no room\nin all', hint: 'free some space'},
		{type: 'run-end', farm, outcome: 'failed', message: 'no room'},
	];
	for (const event of events) printer(event);
	assert.deepEqual(lines, [
		'farmclone gallifrey-dev: starting',
		'[3/4] copy: check: pending (target is empty)',
		'[3/4] copy: started',
		'$ ionice -c3 dd if=/dev/all/snap -> exit 0',
		'[3/4] copy: 512 MiB / 1.0 GiB 50% 180 MiB/s ETA 3s',
		'✔ copy (5.2 s)',
		'[1/4] snapshot: check: done (snapshot exists)',
		'✔ snapshot (already done: snapshot exists)',
		'↷ drop-snapshot skipped: skipped by the admin',
		"$ lvcreate --name 'dev vol' all -> exit 5",
		'      Volume group "all" has insufficient free space',
		'✘ target failed: no room',
		'    in all',
		'  hint: free some space',
		'farmclone gallifrey-dev: failed: no room',
	]);
});

test('json: one object per line, the event as it is plus the time it was printed', () => {
	const {lines, printer} = capture({json: true, now: () => Date.UTC(2024, 0, 2, 3, 4, 5)});
	const event: EngineEvent = {type: 'stage-start', stage: 'copy', title: 'copy the disk'};
	printer(event);
	printer(progress(1024));
	assert.equal(lines.length, 2);
	assert.deepEqual(JSON.parse(lines[0] ?? ''), {...event, at: '2024-01-02T03:04:05.000Z'});
	const parsed = JSON.parse(lines[1] ?? '') as {type: string; progress: CopyProgress};
	assert.equal(parsed.type, 'progress');
	assert.equal(parsed.progress.bytes, 1024);
	assert.ok(lines.every((line) => !line.includes('\n')));
});

test('copy progress is printed at most once a second, but always the final 100%', () => {
	let clock = 10_000;
	for (const json of [false, true]) {
		const {lines, printer} = capture({json, now: () => clock});
		printer({type: 'stage-start', stage: 'copy', title: 'copy'});
		const before = lines.length;
		for (let tenth = 1; tenth <= 25; tenth++) {
			printer(progress(Math.min(gib - 1, tenth * 40 * 1024 ** 2)));
			clock += 100;
		}

		printer(progress(gib, {etaSeconds: 0}));
		printer(progress(gib, {etaSeconds: 0}));
		const printed = lines.slice(before);
		// 2.5 s of updates every 100 ms: the first, then one per second, then the final one once.
		assert.equal(printed.length, 4, printed.join('\n'));
		if (!json) {
			assert.match(printed[0] ?? '', /40 MiB \/ 1\.0 GiB 3%/);
			assert.match(printed.at(-1) ?? '', /1\.0 GiB \/ 1\.0 GiB 100% .* ETA 0s$/);
		}
	}
});

const plan: Plan = {commands: [], diffs: [], notes: []};
const gate = (id: string, danger: Danger): GateQuestion => ({
	kind: 'gate',
	stage: fakeStage(id, {danger, title: `${id} stage`}),
	index: 2,
	plan,
	check: {status: 'pending', detail: ''},
});
const typedFor = (id: string): Extract<Question, {kind: 'typed'}> => ({
	kind: 'typed',
	stage: fakeStage(id, {danger: 'typed', title: `${id} stage`}),
	message: `Type the farm's name to run ${id} stage`,
	expected: farm,
});

test("--yes answers every gate run; a typed confirmation gets --confirm's text, a missing or wrong one said with how to give it", async () => {
	const without = capture();
	const refusing = createHeadlessAsk({farm, yes: true, printer: without.printer});
	for (const danger of ['none', 'confirm', 'typed'] as const) assert.equal(await refusing(gate('copy', danger)), 'run');
	assert.equal(await refusing(typedFor('copy')), undefined);
	assert.deepEqual(without.lines, [
		"stopping before copy: copy stage asks for the farm's name to be typed; rerun with --confirm gallifrey-dev",
	]);

	const wrong = capture();
	const mistaken = createHeadlessAsk({farm, yes: true, confirm: 'gallifrey', printer: wrong.printer});
	assert.equal(await mistaken(typedFor('copy')), 'gallifrey', 'the engine compares what was given');
	assert.match(wrong.lines[0] ?? '', /--confirm gallifrey is not the farm's name.*rerun with --confirm gallifrey-dev$/);

	const right = capture();
	const confirmed = createHeadlessAsk({farm, yes: true, confirm: farm, printer: right.printer});
	assert.equal(await confirmed(typedFor('copy')), farm);
	assert.deepEqual(right.lines, []);
});

test('the refusal is a JSON line in json mode', async () => {
	const {lines, printer} = capture({json: true, now: () => 0});
	const ask = createHeadlessAsk({farm, yes: true, printer});
	assert.equal(await ask(typedFor('copy')), undefined);
	const parsed = JSON.parse(lines[0] ?? '') as {type: string; stage: string; text: string};
	assert.equal(parsed.type, 'log');
	assert.equal(parsed.stage, 'copy');
	assert.match(parsed.text, /rerun with --confirm gallifrey-dev/);
});

test('headless prompts: yes and the first choice with --yes; typed only with the expected text', async () => {
	const {lines, printer} = capture();
	const ask = createHeadlessAsk({farm, yes: true, confirm: farm, printer});
	const prompt = promptFrom(ask);
	assert.equal(await prompt.confirm('Extend the snapshot?'), true);
	const picked = await prompt.choose('Which node?', [
		{label: 'node1', value: 'n1'},
		{label: 'node2', value: 'n2'},
	]);
	assert.equal(picked, 'n1');
	assert.equal(await prompt.typed('Type the farm name', farm), true);
	assert.equal(await prompt.typed('Type KEEP', 'KEEP'), false);
	assert.deepEqual(lines.slice(0, 2), ['? Extend the snapshot? -> yes (--yes)', '? Which node? -> node1 (--yes)']);
	assert.match(lines[2] ?? '', /rerun with --confirm KEEP/);

	const asking = createHeadlessAsk({farm, yes: false, printer});
	await assert.rejects(promptFrom(asking).confirm('Extend?'), /no terminal to ask/);
	assert.equal(await asking(gate('snapshot', 'none')), 'quit');
});
