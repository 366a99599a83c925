/**
 * Each stage's typed state: kept in its own slot of the journal, read by
 * another stage only through the owner's readers, refused when a stage
 * writes a slot not its own, there again in a resumed run, and read from a
 * journal the previous format (flat `stage.key` facts) wrote.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {runEngine} from '../source/engine/engine.js';
import type {EngineEvent} from '../source/engine/events.js';
import {journalPath, readJournal, statesFromFacts} from '../source/engine/journal.js';
import {whatWasMade} from '../source/engine/made.js';
import {defaultSettings} from '../source/settings/schema.js';
import {cloneVolumeUuid, copyCompleted} from '../source/stages/copy.js';
import {adoptedVolumeName} from '../source/stages/ganeti-instance.js';
import {stageState, type StatesView} from '../source/stages/state.js';
import type {Stage} from '../source/stages/types.js';
import {askWith} from './kit/stage.js';

type MakerState = {uuid: string; bytes: number};
const maker = stageState<MakerState>('maker');
const madeUuid = (context: StatesView) => maker.of(context).uuid;

/** `maker` records a uuid in its apply; `user` is done once it reads that uuid through maker's reader. */
function stages(seen: Array<string | undefined>, options: {writeOthers?: boolean} = {}): Stage[] {
	const common = {
		summary: '',
		danger: 'none',
		skippable: false,
		verify: async () => undefined,
		undo: async () => undefined,
	} as const;
	const plan = async () => ({commands: [], diffs: [], notes: []});
	return [
		{
			...common,
			id: 'maker',
			title: 'maker',
			check: async (context) =>
				madeUuid(context) ? {status: 'done', detail: 'made'} : {status: 'pending', detail: 'not yet'},
			plan,
			async apply(context) {
				if (options.writeOthers) await context.saveState('user', {uuid: 'not mine to write'});
				await maker.save(context, {uuid: 'b2c5-made', bytes: 42});
			},
		},
		{
			...common,
			id: 'user',
			title: 'user',
			async check(context) {
				seen.push(madeUuid(context));
				return {status: 'pending', detail: 'reads the maker'};
			},
			plan,
			apply: async () => undefined,
		},
	];
}

async function stateDir(t: {after: (fn: () => Promise<void>) => void}) {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-state-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	return path.join(dir, 'state');
}

const run = async (dir: string, list: Stage[], gate: (id: string) => 'run' | 'quit', events: EngineEvent[] = []) =>
	runEngine({
		settings: defaultSettings('gallifrey-dev'),
		stages: list,
		ask: askWith(async ({stage}) => gate(stage.id)),
		onEvent: (event) => events.push(event),
		signal: new AbortController().signal,
		stateDir: dir,
	});

test("a stage's typed state survives a resume: the next session reads it back through the owner's reader", async (t) => {
	const dir = await stateDir(t);
	const seen: Array<string | undefined> = [];
	// First session: maker runs, then the admin quits at user's gate.
	assert.equal(await run(dir, stages(seen), (id) => (id === 'maker' ? 'run' : 'quit')), 'stopped');
	const written = JSON.parse(await fs.readFile(journalPath(dir), 'utf8')) as {version: number; states: unknown};
	assert.equal(written.version, 2);
	assert.deepEqual(written.states, {maker: {uuid: 'b2c5-made', bytes: 42}}, 'one slot, owned by maker');
	// Second session, a new process as far as the engine knows: only the journal on disk carries the state.
	const resumed: Array<string | undefined> = [];
	assert.equal(await run(dir, stages(resumed), () => 'run'), 'done');
	assert.deepEqual(resumed, ['b2c5-made']);
	assert.equal((await readJournal(dir))?.stages['maker']?.state, 'done', 'maker found done from its state');
});

test("a stage that writes another stage's slot fails, and the other slot is untouched", async (t) => {
	const dir = await stateDir(t);
	const events: EngineEvent[] = [];
	assert.equal(await run(dir, stages([], {writeOthers: true}), () => 'run', events), 'failed');
	const failure = events.find((event) => event.type === 'stage-failed');
	assert.match(failure?.type === 'stage-failed' ? failure.error : '', /stage maker cannot write the state of user/);
	assert.deepEqual((await readJournal(dir))?.states, {});
});

test('a journal of the previous format (flat facts) is read as slots, and written back as version 2', async (t) => {
	const dir = await stateDir(t);
	await fs.mkdir(dir, {recursive: true});
	const facts = {
		'copy.completed': true,
		'copy.targetUuid': 'tgt-uuid',
		'ganeti-instance.disk': 'f00d.disk0',
		'dhcp-host.mac': 'aa:00:00:00:00:06',
		'dns-record.backup': '/backups/db.farm',
		'firewall-rule.undo.watchdogPid': 4242,
		'maker.uuid': 'from-v1',
	};
	const v1 = {
		version: 1,
		farm: 'gallifrey-dev',
		startedAt: '2026-12-01T10:00:00.000Z',
		updatedAt: '2026-12-01T10:05:00.000Z',
		mode: 'run',
		stages: {maker: {state: 'done'}},
		facts,
	};
	await fs.writeFile(journalPath(dir), JSON.stringify(v1));
	const journal = await readJournal(dir);
	assert.equal(journal?.version, 2);
	const view = {states: journal!.states};
	assert.equal(copyCompleted(view), true);
	assert.equal(cloneVolumeUuid(view), 'tgt-uuid');
	assert.equal(adoptedVolumeName(view), 'f00d.disk0');
	assert.deepEqual(journal!.states['firewall-rule'], {undo: {watchdogPid: 4242}});
	const made = whatWasMade(defaultSettings('gallifrey-dev'), journal!.states);
	assert.equal(made.mac, 'aa:00:00:00:00:06');
	assert.deepEqual(made.backups, ['/backups/db.farm']);
	assert.deepEqual(statesFromFacts({'no-dot': 1}), {}, 'a fact without a stage is dropped');

	// A resumed run of the old journal: the state is there, and the journal is written back as version 2.
	const seen: Array<string | undefined> = [];
	assert.equal(await run(dir, stages(seen), () => 'run'), 'done');
	assert.deepEqual(seen, ['from-v1']);
	const rewritten = JSON.parse(await fs.readFile(journalPath(dir), 'utf8')) as Record<string, unknown>;
	assert.equal(rewritten['version'], 2);
	assert.equal(rewritten['facts'], undefined);
});

test('a journal of an unknown version is refused with what to do', async (t) => {
	const dir = await stateDir(t);
	await fs.mkdir(dir, {recursive: true});
	await fs.writeFile(journalPath(dir), JSON.stringify({version: 9, stages: {}, states: {}}));
	await assert.rejects(readJournal(dir), /journal version 9\); this one reads versions 1 and 2/);
});
