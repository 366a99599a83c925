import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {formatPlan, nowLine, planFarm, type PlannedStage} from '../source/commands/plan.js';
import {defaultSettings} from '../source/settings/schema.js';
import {SettingsStore} from '../source/settings/store.js';
import {buildSimTree} from '../source/sim/tree.js';

const stage = (id: string, check: PlannedStage['check']): PlannedStage => ({
	id,
	title: id,
	danger: 'none',
	...(check ? {check} : {}),
});

test('plan says "not yet" for what an earlier stage of the plan makes, "conflict" once that stage is done', () => {
	const missing = {status: 'conflict', detail: 'volume all/dev to adopt is missing', awaits: 'create-volume'} as const;
	const pending = [stage('create-volume', {status: 'pending', detail: 'will create'}), stage('ganeti', missing)];
	assert.equal(
		nowLine(pending[1]!, pending),
		'not yet: volume all/dev to adopt is missing (stage 1, create-volume, comes first)',
	);
	const done = [stage('create-volume', {status: 'done', detail: 'created'}), stage('ganeti', missing)];
	assert.equal(nowLine(done[1]!, done), 'conflict: volume all/dev to adopt is missing');
	const inTheWay = [
		stage('create-volume', {status: 'pending', detail: 'will create'}),
		stage('ganeti', {status: 'conflict', detail: 'an instance exists with another MAC'}),
	];
	assert.equal(nowLine(inTheWay[1]!, inTheWay), 'conflict: an instance exists with another MAC');
});

test('the plan of a fresh sim tree: what the snapshot and the copy make is "not yet"; argv is quoted', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-plan-'));
	const saved = process.env['FARMCLONE_STATE_DIR'];
	t.after(async () => {
		if (saved === undefined) delete process.env['FARMCLONE_STATE_DIR'];
		else process.env['FARMCLONE_STATE_DIR'] = saved;
		await fs.rm(dir, {recursive: true, force: true});
	});
	process.env['FARMCLONE_STATE_DIR'] = path.join(dir, 'state');
	// The sim tree has LVM, BIND, DHCP and nginx (no Ganeti nor Shorewall: test/sim/plan-command.test.ts has them).
	const tree = await buildSimTree({root: path.join(dir, 'farm'), sourceSize: 16 * 1024 * 1024});
	const store = new SettingsStore(path.join(dir, 'config'));
	store.save(defaultSettings('gallifrey-dev', tree.settings));
	const text = formatPlan(await planFarm(store, 'gallifrey-dev'));
	assert.match(
		text,
		/4\. Drop the snapshot.*\n {3}now: not yet: no snapshot made yet \(stage 1, Snapshot the source disk/,
	);
	assert.match(text, /5\. Make the clone its own machine.*\n {3}now: not yet: the copy has not completed \(stage 3,/);
	assert.doesNotMatch(text, /it stops here/, 'waiting for the copy is no dead end');
	assert.match(text, /--noproxy '\*'/, 'argv quoted as a shell takes it');
});
