import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {changesTheMachine, Host, readOnlyHost} from '../source/host/host.js';
import type {Stage} from '../source/stages/types.js';
import {runStages} from './kit/stage.js';

test('the read-only host reads like the host and refuses every file write', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-look-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	const file = path.join(dir, 'zone');
	await fs.writeFile(file, 'before\n');
	// The type has no write methods; the cast is what a sloppy stage would do, and the view still refuses.
	const host = readOnlyHost(new Host({backupDir: path.join(dir, 'backups')})) as Host;
	assert.equal(await host.readFile(file), 'before\n');
	assert.equal((await host.run(['cat', file])).stdout, 'before\n');
	await assert.rejects(host.writeFile(file, 'after\n'), {name: 'ReadOnlyHostError'});
	await assert.rejects(host.remove(file), {name: 'ReadOnlyHostError'});
	await assert.rejects(host.symlink(file, path.join(dir, 'link')), {name: 'ReadOnlyHostError'});
	await assert.rejects(host.writeStateFile(path.join(dir, 'state'), 'x'), {name: 'ReadOnlyHostError'});
	// Commands that change the machine are refused before they start; looking ones run.
	await assert.rejects(host.run(['losetup', '--find', '--show', file]), {name: 'ReadOnlyHostError'});
	await assert.rejects(host.run(['/usr/sbin/lvremove', '-f', 'all/dev']), {name: 'ReadOnlyHostError'});
	await assert.rejects(host.run(['shorewall', 'restart', dir]), {name: 'ReadOnlyHostError'});
	await assert.rejects(host.run(['gnt-instance', 'add', 'x']), {name: 'ReadOnlyHostError'});
	await assert.rejects(host.run(['umount', dir]), {name: 'ReadOnlyHostError'});
	assert.equal(changesTheMachine(['losetup', '-J', '-l', '-O', 'NAME']), false);
	assert.equal(changesTheMachine(['gnt-instance', 'list', '--no-headers', '-o', 'name']), false);
	assert.equal(changesTheMachine(['shorewall', 'check', dir]), false);
	assert.equal(changesTheMachine(['gnt-cluster', '--version']), false);
	assert.equal(changesTheMachine(['dd', `if=${file}`, `of=${file}.copy`]), true);
	assert.equal(changesTheMachine(['dd', `if=${file}`, 'count=0', 'status=none']), false);
	assert.equal(changesTheMachine(['debugfs', '-R', 'stat /etc/hostname', file]), false);
	assert.equal(await fs.readFile(file, 'utf8'), 'before\n');
	assert.deepEqual(await fs.readdir(dir), ['zone']);
});

test('a stage writing while it looks fails in the engine, and its file is untouched', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-look-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	const file = path.join(dir, 'host-file');
	await fs.writeFile(file, 'as it was\n');
	const sloppy: Stage = {
		id: 'sloppy',
		title: 'sloppy',
		summary: 'writes in its check',
		danger: 'none',
		skippable: true,
		async check(context) {
			await (context.host as Host).writeFile(file, 'changed by looking\n');
			return {status: 'pending', detail: 'wrote while looking'};
		},
		plan: async () => ({commands: [], diffs: [], notes: []}),
		apply: async () => undefined,
		verify: async () => undefined,
		undo: async () => undefined,
	};
	const {outcome, events} = await runStages([sloppy], path.join(dir, 'state'));
	assert.equal(outcome, 'failed');
	const failed = events.find((event) => event.type === 'stage-failed');
	assert.match(failed && 'error' in failed ? failed.error : '', /looking never changes the host/);
	assert.equal(await fs.readFile(file, 'utf8'), 'as it was\n');
});
