import assert from 'node:assert/strict';
import {promptFrom} from '../source/engine/engine.js';
import {test} from 'node:test';
import type {StageInfo} from '../source/engine/api.js';
import type {GateQuestion} from './kit/stage.js';
import type {EngineEvent} from '../source/engine/events.js';
import {runKeyIntent} from '../source/hooks/use-run-keys.js';
import type {Plan} from '../source/stages/types.js';
import {
	compactPlanLines,
	expandDiffTabs,
	formatArgv,
	formatBytes,
	formatClock,
	formatDuration,
	formatEta,
	outputTail,
	planLines,
	progressSummary,
	sanitizeLine,
	stageWindow,
	wrapText,
} from '../source/ui/format.js';
import {
	focusIndex,
	initialRunState,
	preflightLine,
	runReducer,
	summaryLine,
	type RunState,
	type UiAction,
} from '../source/ui/run-state.js';
import {AbortedError} from '../source/engine/engine.js';
import {createTuiPrompt, type PromptRequest} from '../source/ui/tui-prompt.js';
import {fakeStage} from './kit/stage.js';

const stages: StageInfo[] = [
	{id: 'snapshot', title: 'snapshot the source disk', summary: 'lvcreate --snapshot', danger: 'none', skippable: false},
	{id: 'copy', title: 'copy the disk', summary: 'dd', danger: 'typed', skippable: false},
	{id: 'proxy', title: 'reverse proxy', summary: 'nginx', danger: 'none', skippable: true},
];

const plan: Plan = {commands: [['lvcreate', '--snapshot', '--size', '1G', 'all/source']], diffs: [], notes: []};

function reduce(state: RunState, ...actions: Array<EngineEvent | UiAction>): RunState {
	return actions.reduce(runReducer, state);
}

function fresh(): RunState {
	return initialRunState({farm: 'gallifrey-dev', stages, initialStates: {snapshot: 'done'}});
}

const gate = (id: number, stage: string): PromptRequest => ({
	kind: 'gate',
	id,
	stage,
	plan,
	check: {status: 'pending', detail: 'missing'},
});

test('initial state takes the journal states; a resumed note opens the log', () => {
	const state = initialRunState({farm: 'f', stages, initialStates: {snapshot: 'done'}, resumedNote: 'Resuming f'});
	assert.deepEqual(
		state.stages.map((stage) => stage.state),
		['done', 'pending', 'pending'],
	);
	assert.deepEqual(
		state.log.map((entry) => entry.kind === 'note' && entry.text),
		['Resuming f'],
	);
	const resumed = runReducer(state, {type: 'run-start', farm: 'f', resumed: true, at: ''});
	assert.equal(resumed.log.length, 1, 'the CLI note already says it is resumed');
	assert.equal(runReducer(fresh(), {type: 'run-start', farm: 'f', resumed: true, at: ''}).log.length, 1);
});

test('stage events move the marks and put finished things in the log with unique ids', () => {
	let state = reduce(
		fresh(),
		{type: 'check', stage: 'copy', result: {status: 'pending', detail: 'empty'}},
		{type: 'plan', stage: 'copy', plan},
		{type: 'stage-start', stage: 'copy', title: 'copy the disk'},
	);
	assert.equal(state.focus, 'copy');
	assert.equal(state.stages[1]?.state, 'running');
	state = reduce(
		state,
		{type: 'progress', stage: 'copy', progress: {bytes: 1, total: 2, rate: 1, etaSeconds: 1}},
		{
			type: 'command',
			stage: 'copy',
			command: {argv: ['dd'], exitCode: 0, stdout: '', stderr: '', durationMs: 5},
		},
	);
	assert.equal(state.progress?.stage, 'copy');
	state = runReducer(state, {type: 'stage-done', stage: 'copy', title: 'copy the disk', seconds: 5.2});
	assert.equal(state.progress, undefined, 'a finished copy has no bar');
	assert.equal(state.stages[1]?.state, 'done');
	const done = state.log.at(-1);
	assert.equal(done?.kind, 'stage');
	assert.ok(done?.kind === 'stage');
	assert.equal(done.number, 2);
	assert.equal(done.seconds, 5.2);

	state = reduce(
		state,
		{type: 'stage-failed', stage: 'proxy', title: 'reverse proxy', error: 'nginx -t failed', hint: 'see the log'},
		{type: 'stage-undone', stage: 'snapshot', title: 'snapshot the source disk'},
	);
	assert.deepEqual(
		state.stages.map((stage) => stage.state),
		['undone', 'done', 'failed'],
	);
	const failed = state.log.find((entry) => entry.kind === 'stage' && entry.state === 'failed');
	assert.ok(failed?.kind === 'stage');
	assert.equal(failed.hint, 'see the log');
	const ids = state.log.map((entry) => entry.id);
	assert.equal(new Set(ids).size, ids.length);
});

test('a stage found already done says so instead of a duration', () => {
	const state = reduce(
		fresh(),
		{type: 'check', stage: 'snapshot', result: {status: 'done', detail: 'snapshot all/snap exists'}},
		{type: 'stage-done', stage: 'snapshot', title: 'snapshot the source disk', seconds: 0},
	);
	const entry = state.log.at(-1);
	assert.ok(entry?.kind === 'stage');
	assert.equal(entry.seconds, undefined);
	assert.equal(entry.detail, 'already done: snapshot all/snap exists');
});

test('requests: a gate focuses its stage; typing only on a gate; the whole plan is paged in place, never logged', () => {
	let state = runReducer(fresh(), {type: 'ui:typing', on: true});
	assert.equal(state.typing, false, 'no gate, no field');
	state = reduce(state, {type: 'ui:request', request: gate(1, 'copy')}, {type: 'ui:typing', on: true});
	assert.equal(state.focus, 'copy');
	assert.equal(state.typing, true);
	state = runReducer(state, {type: 'ui:typed-mismatch', text: 'x'.repeat(40)});
	assert.match(state.typedError ?? '', /^"x{23}…" does not match$/);
	const logged = state.log.length;
	state = runReducer(state, {type: 'ui:plan-view', scroll: 12});
	assert.equal(state.planScroll, 12);
	assert.equal(state.log.length, logged, 'nothing goes to the scrollback');
	state = runReducer(state, {type: 'ui:request', request: gate(2, 'proxy')});
	assert.equal(state.typing, false, 'a new request starts without the field');
	assert.equal(state.typedError, undefined);
	assert.equal(state.planScroll, undefined, 'a new gate starts with the plan cut to its changes');
	state = runReducer(state, {type: 'ui:request', request: undefined});
	assert.equal(runReducer(state, {type: 'ui:plan-view', scroll: 3}).planScroll, undefined, 'no gate, no paging');
});

test('quitting: asked, cancelled, not asked once finished', () => {
	let state = runReducer(fresh(), {type: 'ui:ask-quit'});
	assert.equal(state.quit, 'asked');
	state = runReducer(state, {type: 'ui:cancel-quit'});
	assert.equal(state.quit, 'no');
	state = reduce(state, {type: 'ui:finished', outcome: 'done'}, {type: 'ui:ask-quit'});
	assert.equal(state.quit, 'no');
});

test('summary line and focus', () => {
	let state = fresh();
	assert.equal(focusIndex(state), 1, 'the first stage not done');
	state = reduce(
		state,
		{type: 'stage-skipped', stage: 'proxy', title: 'reverse proxy', reason: 'by the admin'},
		{type: 'stage-failed', stage: 'copy', title: 'copy the disk', error: 'dd: error'},
		{type: 'run-end', farm: 'gallifrey-dev', outcome: 'failed', message: 'dd: error'},
	);
	assert.deepEqual(summaryLine(state), {
		tone: 'error',
		text: 'failed at copy the disk: dd: error (1/3 done, 1 skipped)',
		resume: 'farmclone run gallifrey-dev',
	});
	const stopped = runReducer(fresh(), {type: 'ui:finished', outcome: 'stopped'});
	assert.equal(summaryLine(stopped).text, 'stopped (1/3 done)');
	assert.equal(summaryLine(stopped).resume, 'farmclone run gallifrey-dev');
});

test('keys: Enter runs or asks for the name, s only where skippable, Ctrl+C always asks first', () => {
	const key = {ctrl: false, return: false, escape: false};
	const enter = {...key, return: true};
	const atGate = (stage: string, patch: Partial<RunState> = {}) => ({
		...runReducer(fresh(), {type: 'ui:request', request: gate(7, stage)}),
		...patch,
	});
	assert.deepEqual(runKeyIntent(atGate('snapshot'), '\r', enter), {type: 'gate', answer: 'run'});
	assert.deepEqual(runKeyIntent(atGate('copy'), '\r', enter), {type: 'start-typing'});
	assert.equal(runKeyIntent(atGate('copy', {typing: true}), '\r', enter), undefined, 'the field reads Enter');
	assert.equal(runKeyIntent(atGate('snapshot'), 's', key), undefined);
	assert.deepEqual(runKeyIntent(atGate('proxy'), 's', key), {type: 'gate', answer: 'skip'});
	assert.deepEqual(runKeyIntent(atGate('proxy'), 'q', key), {type: 'gate', answer: 'quit'});
	assert.deepEqual(runKeyIntent(atGate('proxy'), 'c', {...key, ctrl: true}), {type: 'ask-quit'});
	assert.deepEqual(runKeyIntent(atGate('proxy', {quit: 'asked'}), 'c', {...key, ctrl: true}), {type: 'quit'});
	assert.deepEqual(runKeyIntent(atGate('proxy', {quit: 'asked'}), 'y', key), {type: 'quit'});
	assert.deepEqual(runKeyIntent(atGate('proxy', {quit: 'asked'}), '', {...key, escape: true}), {type: 'cancel-quit'});
	assert.equal(runKeyIntent(atGate('proxy', {quit: 'asked'}), '\r', enter), undefined, 'Enter does not answer it');
	assert.deepEqual(runKeyIntent(fresh(), 'q', key), {type: 'ask-quit'}, 'q while a stage runs asks');
	assert.deepEqual(runKeyIntent({...fresh(), finished: 'done'}, 'x', key), {type: 'exit'});
});

test('format: sizes, rates, times, argv quoting, control characters', () => {
	assert.equal(formatBytes(0), '0 B');
	assert.equal(formatBytes(512 * 1024 ** 2), '512 MiB');
	assert.equal(formatBytes(1024 ** 3), '1.0 GiB');
	assert.equal(formatBytes(1024 ** 3 - 1), '1.0 GiB', 'never "1024 MiB"');
	assert.equal(formatBytes(1536), '1.5 KiB');
	assert.equal(formatEta(3), '3s');
	assert.equal(formatEta(125), '2m05s');
	assert.equal(formatEta(3725), '1h02m');
	assert.equal(formatEta(undefined), '–');
	assert.equal(formatDuration(5.24), '5.2 s');
	assert.equal(formatDuration(192), '3 min 12 s');
	const earlyMorning = new Date(2026, 11, 3, 9, 5, 3).getTime();
	assert.match(formatClock(earlyMorning), /^09:05:03( \S+)?$/, 'a clock is zero padded and 24-hour');
	assert.match(formatClock(new Date(2026, 11, 3, 21, 0, 0).toISOString()), /^21:00:00( \S+)?$/);
	assert.equal(
		progressSummary({bytes: 512 * 1024 ** 2, total: 1024 ** 3, rate: 180 * 1024 ** 2, etaSeconds: 3}),
		'512 MiB / 1.0 GiB 50% 180 MiB/s ETA 3s',
	);
	assert.equal(formatArgv(['echo', 'a b', "it's", '--x=1']), `echo 'a b' 'it'\\''s' --x=1`);
	assert.equal(sanitizeLine('a\tb\u001B[31mred\u001B[0m\r'), 'a       bred');
	assert.deepEqual(outputTail('10%\r20%\r30%\n\ndone\n', 2), ['30%', 'done']);
});

test('wrapping keeps words whole when it can and cuts hard when it must', () => {
	assert.deepEqual(wrapText('aaa bbb ccc', 8), ['aaa bbb ', '  ccc']);
	assert.deepEqual(wrapText('abcdefghij', 4, ' '), ['abcd', ' efg', ' hij']);
	assert.deepEqual(wrapText('short', 80), ['short']);
});

test('plan lines never exceed the width, and a cut keeps to the budget', () => {
	const wide: Plan = {
		commands: [['dd', `if=/dev/all/${'x'.repeat(150)}`]],
		diffs: [{path: '/etc/bind/db.farm', diff: `@@ -1 +1,2 @@\n a\n+\t${'y'.repeat(100)}\n-b\n`}],
		notes: ['a note'],
	};
	for (const width of [20, 40, 80]) {
		const lines = planLines(wide, width);
		assert.ok(lines.every((line) => Array.from(line.text).length <= width));
		assert.deepEqual(
			lines.filter((line) => line.text.startsWith('+') || line.text.startsWith('-')).map((line) => line.tone),
			['add', 'remove'],
		);
	}
});

test('a plan cut to its budget keeps its changes first: context far from a change goes before context near it', () => {
	const plan: Plan = {
		commands: [['named-checkzone', 'farm', '/etc/bind/db.farm']],
		diffs: [
			{
				path: '/etc/bind/db.farm',
				diff: [
					'--- a/db.farm',
					'+++ b/db.farm',
					'@@ -1,6 +1,7 @@',
					' far',
					' near',
					'+new A',
					' near2',
					' far2',
					' far3',
					'-old',
				].join('\n'),
			},
		],
		notes: ['a note'],
	};
	const lines = planLines(plan, 80);
	assert.deepEqual(compactPlanLines(lines, 100), {shown: lines, hidden: 0, onlyContext: true});
	const texts = (budget: number) => compactPlanLines(lines, budget).shown.map((line) => line.text);
	assert.deepEqual(texts(4), ['~ /etc/bind/db.farm', '+new A', '-old'], 'the file and its changes, then the count');
	assert.deepEqual(texts(6), [
		'• a note',
		'$ named-checkzone farm /etc/bind/db.farm',
		'~ /etc/bind/db.farm',
		'+new A',
		'-old',
	]);
	assert.deepEqual(texts(9), [
		'• a note',
		'$ named-checkzone farm /etc/bind/db.farm',
		'~ /etc/bind/db.farm',
		'@@ -1,6 +1,7 @@',
		' near',
		'+new A',
		' near2',
		'-old',
	]);
	assert.equal(compactPlanLines(lines, 9).hidden, 5);
	assert.equal(compactPlanLines(lines, 9).onlyContext, true);
	assert.equal(compactPlanLines(lines, 4).onlyContext, false, 'the note and the command are hidden too');
	assert.ok(
		texts(12).includes('--- a/db.farm') === texts(12).includes('+++ b/db.farm'),
		'a file header whole or not at all',
	);
});

test('a cut plan shows its first commands, never a later one alone; tabs become spaces to stops of 4', () => {
	const plan: Plan = {
		commands: [
			['mount', '-o', 'nosuid,nodev,noexec', '/dev/loop0', '/var/lib/farmclone/gallifrey-dev/identity-mount'],
			['umount', '/m'],
		],
		diffs: [{path: '/x', diff: '+a\n'}],
		notes: [],
	};
	const texts = (budget: number) => compactPlanLines(planLines(plan, 40), budget).shown.map((line) => line.text);
	assert.deepEqual(texts(4), ['~ /x', '+a'], 'the umount alone would fit: it gives way with the mount');
	assert.equal(expandDiffTabs('+\tlisten 80;'), '+    listen 80;');
	assert.equal(expandDiffTabs('+ab\tc'), '+ab  c');
	assert.equal(expandDiffTabs('-x'), '-x');
});

test('before the first stage the screen says which preflight checks still run, then run-start moves on', () => {
	let state = initialRunState({farm: 'gallifrey-dev', stages});
	assert.equal(preflightLine(state.preflight), 'starting…');
	state = runReducer(state, {type: 'preflight', done: 4, total: 6, running: ['firewall', 'nginx']});
	assert.equal(preflightLine(state.preflight), 'preflight 4/6 done, checking firewall, nginx…');
	state = runReducer(state, {type: 'preflight', done: 6, total: 6, running: []});
	assert.equal(preflightLine(state.preflight), 'preflight: 6 checks done');
});

test("no spinner tick while the copy's progress bar shows the work: only its updates repaint the screen", async () => {
	const {ticking} = await import('../source/components/run-app.js');
	let state = initialRunState({farm: 'gallifrey-dev', stages});
	state = runReducer(state, {type: 'stage-start', stage: stages[0]!.id, title: stages[0]!.title});
	assert.equal(ticking(state), true, 'a running stage without progress shows a spinner');
	const progress = {bytes: 1, total: 4, rate: 1, etaSeconds: 3};
	state = runReducer(state, {type: 'progress', stage: stages[0]!.id, progress});
	assert.equal(ticking(state), false);
});

test('the stage window keeps the focus in view within its line budget', () => {
	for (const count of [5, 14, 15, 30]) {
		for (const maxLines of [3, 4, 7, 9]) {
			for (let focus = 0; focus < count; focus++) {
				const window = stageWindow(count, focus, maxLines);
				const lines = window.end - window.start + (window.hiddenBefore > 0 ? 1 : 0) + (window.hiddenAfter > 0 ? 1 : 0);
				assert.ok(lines <= Math.max(maxLines, 3), `${count}/${maxLines}/${focus}: ${lines} lines`);
				assert.ok(focus >= window.start && focus < window.end, `${count}/${maxLines}/${focus} out of view`);
				assert.equal(window.hiddenBefore + (window.end - window.start) + window.hiddenAfter, count);
				if (count <= maxLines) assert.equal(window.end - window.start, count);
			}
		}
	}
});

const gateFor = (id: string): GateQuestion => ({
	kind: 'gate',
	stage: fakeStage(id, {skippable: true}),
	index: 0,
	plan,
	check: {status: 'pending', detail: ''},
});

test('the TUI prompt shows one request at a time and ignores stale answers', async () => {
	const shown: Array<PromptRequest | undefined> = [];
	const tui = createTuiPrompt((request) => shown.push(request));
	const first = tui.ask(gateFor('snapshot'));
	const second = promptFrom(tui.ask).confirm('Extend the snapshot?');
	assert.equal(shown.length, 1, 'the second waits for the first');
	const firstRequest = shown[0];
	assert.ok(firstRequest?.kind === 'gate');
	assert.equal(tui.answer(firstRequest.id, 'confirm', true), false, 'wrong kind');
	assert.equal(tui.answer(firstRequest.id + 100, 'gate', 'run'), false, 'wrong id');
	assert.equal(tui.answer(firstRequest.id, 'gate', 'skip'), true);
	assert.equal(await first, 'skip');
	const secondRequest = shown[1];
	assert.ok(secondRequest?.kind === 'confirm');
	assert.equal(tui.answer(firstRequest.id, 'gate', 'run'), false, 'already answered');
	tui.answer(secondRequest.id, 'confirm', true);
	assert.equal(await second, true);
	assert.equal(shown.at(-1), undefined, 'nothing left to show');

	const choice = promptFrom(tui.ask).choose('node?', [
		{label: 'one', value: 'n1'},
		{label: 'two', value: 'n2'},
	]);
	const choose = shown.at(-1);
	assert.ok(choose?.kind === 'choose');
	tui.answer(choose.id, 'choose', 'n2');
	assert.equal(await choice, 'n2');
});

test('stopping the TUI prompt: the gate answers quit, prompts reject, later calls too', async () => {
	const tui = createTuiPrompt(() => {});
	const waitingGate = tui.ask(gateFor('copy'));
	const waitingTyped = promptFrom(tui.ask).typed('Type it', 'gallifrey-dev');
	tui.stop();
	assert.equal(await waitingGate, 'quit');
	await assert.rejects(waitingTyped, AbortedError);
	assert.equal(await tui.ask(gateFor('proxy')), 'quit');
	await assert.rejects(promptFrom(tui.ask).confirm('more?'), AbortedError);
});

test('a day and a time a person reads: the day, then the one clock format', async () => {
	const {formatWhen, formatClock} = await import('../source/ui/format.js');
	const at = '2026-12-03T09:05:07.000Z';
	const when = formatWhen(at);
	assert.match(when, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
	assert.ok(when.endsWith(formatClock(at)), when);
	assert.doesNotMatch(when, /T\d\d:|Z$|AM|PM/);
});

test('states tell the truth: a stage the journal left running does not spin, a stage a rollback undid is not done', () => {
	const resumed = initialRunState({farm: 'gallifrey-dev', stages, initialStates: {snapshot: 'done', copy: 'running'}});
	assert.equal(resumed.stages.find((stage) => stage.id === 'copy')?.state, 'pending', 'nothing runs yet');
	const state = reduce(
		fresh(),
		{type: 'stage-failed', stage: 'copy', title: 'copy the disk', error: 'rolled back'},
		{type: 'stage-reopened', stage: 'snapshot', title: 'snapshot the source disk', detail: 'no snapshot'},
	);
	assert.equal(state.stages.find((stage) => stage.id === 'snapshot')?.state, 'pending');
	assert.equal(state.stages.find((stage) => stage.id === 'copy')?.state, 'failed');
	const note = state.log.at(-1);
	assert.ok(note?.kind === 'note');
	assert.equal(note.text, '· 1 snapshot the source disk is no longer done: no snapshot');
});
