import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import type {EngineEvent} from '../source/engine/events.js';
import type {CommandRecord} from '../source/host/host.js';
import {createHeadlessPrinter} from '../source/headless.js';
import type {Stage} from '../source/stages/types.js';
import {commandOutputLines} from '../source/ui/format.js';
import {initialRunState, runReducer, type RunState} from '../source/ui/run-state.js';
import {runStages} from './kit/stage.js';

const lvsRecord = (exitCode = 0, stdout = '{}'): CommandRecord => ({
	argv: ['lvs', '--reportformat', 'json', 'all'],
	exitCode,
	stdout,
	stderr: '',
	durationMs: 5,
});
const lvs = (exitCode = 0, stdout = '{}'): EngineEvent => ({
	type: 'command',
	stage: 'copy',
	command: lvsRecord(exitCode, stdout),
});
const log = (text: string): EngineEvent => ({type: 'log', stage: 'copy', text});

test('identical commands in a row fold into one line of the TUI log, with their count', () => {
	let state: RunState = initialRunState({
		farm: 'gallifrey-dev',
		stages: [{id: 'copy', title: 'Copy', summary: 'copy', danger: 'none', skippable: false}],
	});
	for (const event of [lvs(), lvs(), lvs(), log('dd started'), lvs(), lvs(5, ''), log('end')])
		state = runReducer(state, event);
	const shown = state.log.map((entry) =>
		entry.kind === 'command' ? `lvs exit ${entry.command.exitCode} x${entry.repeats ?? 1}` : entry.kind,
	);
	assert.deepEqual(shown, ['lvs exit 0 x3', 'log', 'lvs exit 0 x1', 'lvs exit 5 x1', 'log']);
});

test('identical commands in a row fold into one headless line "(×N)"; the last one is printed at the end', () => {
	const lines: string[] = [];
	const printer = createHeadlessPrinter({json: false, write: (line) => lines.push(line)});
	for (const event of [lvs(), lvs(), lvs(), log('dd started'), lvs(), lvs()]) printer(event);
	assert.deepEqual(lines, ['$ lvs --reportformat json all -> exit 0 (×3)', 'copy: dd started']);
	printer.flush();
	assert.equal(lines.at(-1), '$ lvs --reportformat json all -> exit 0 (×2)');
});

test('cut output says how much was cut and where the whole of it is', () => {
	const output = Array.from({length: 10}, (_, index) => `line ${index + 1}`).join('\n');
	assert.deepEqual(commandOutputLines(output, 2, '/var/lib/farmclone/x/commands.log'), [
		'… 8 more lines: full output in /var/lib/farmclone/x/commands.log',
		'line 9',
		'line 10',
	]);
	assert.deepEqual(commandOutputLines('one\ntwo\n', 2, '/x'), ['one', 'two'], 'nothing cut, no marker');
	const lines: string[] = [];
	const printer = createHeadlessPrinter({json: false, write: (line) => lines.push(line)});
	printer({type: 'command', stage: 'copy', command: {...lvsRecord(3, ''), stderr: output, log: '/x/commands.log'}});
	assert.deepEqual(lines.slice(1), [
		'    … 7 more lines: full output in /x/commands.log',
		'    line 8',
		'    line 9',
		'    line 10',
	]);
});

test('the engine keeps every command whole in commands.log of the run state, and each command event names it', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-command-log-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	const stage: Stage = {
		id: 'count',
		title: 'count',
		summary: 'count',
		danger: 'none',
		skippable: true,
		check: async (context) =>
			context.states['count']?.['done'] ? {status: 'done', detail: 'counted'} : {status: 'pending', detail: 'not yet'},
		plan: async () => ({commands: [['seq', '1', '40']], diffs: [], notes: []}),
		async apply(context) {
			await context.host.run(['seq', '1', '40']);
			await context.saveState('count', {done: true});
		},
		verify: async () => undefined,
		undo: async () => undefined,
	};
	const stateDir = path.join(dir, 'state');
	const {outcome, events} = await runStages([stage], stateDir);
	assert.equal(outcome, 'done');
	const seq = events.find((event) => event.type === 'command' && event.command.argv[0] === 'seq');
	assert.ok(seq?.type === 'command');
	assert.equal(seq.command.log, path.join(stateDir, 'commands.log'));
	const kept = await fs.readFile(seq.command.log, 'utf8');
	assert.match(kept, /\$ seq 1 40 -> exit 0/);
	assert.match(kept, /\n1\n2\n(?:\d+\n)+40\n/, 'the whole output, not its tail');
});
