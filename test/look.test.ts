import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test, type TestContext} from 'node:test';
import {Host, lookingHost, type ReadOnlyHost} from '../source/host/host.js';
import {defaultSettings} from '../source/settings/schema.js';
import type {Stage} from '../source/stages/types.js';
import {askWith, runStages} from './kit/stage.js';

/** A directory with a fake `lvs` (and `vgs`) that count their calls in `calls`, and fail when asked for VG `broken`. */
async function countingListings(t: TestContext) {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-look-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	const bin = path.join(dir, 'bin');
	const calls = path.join(dir, 'calls');
	await fs.mkdir(bin);
	for (const program of ['lvs', 'vgs']) {
		await fs.writeFile(
			path.join(bin, program),
			`#!/bin/sh\necho "${program} $*" >> '${calls}'\nif [ "$1" = broken ]; then echo 'Volume group "broken" not found' >&2; exit 5; fi\necho "${program} of $1"\n`,
			{mode: 0o755},
		);
	}

	const called = async () => (await fs.readFile(calls, 'utf8').catch(() => '')).split('\n').filter(Boolean);
	return {dir, bin, called, host: new Host({commandPath: [bin], backupDir: path.join(dir, 'backups')})};
}

test('a look reads a listing once, side by side too; other commands run each time; a failed listing still fails', async (t) => {
	const {dir, called, host} = await countingListings(t);
	const look = lookingHost(host);
	const [first, second] = await Promise.all([look.run(['lvs', 'all']), look.run(['lvs', 'all'])]);
	assert.equal(first.stdout, 'lvs of all\n');
	assert.deepEqual(second, first);
	assert.equal((await look.run(['lvs', 'all'])).stdout, 'lvs of all\n');
	assert.deepEqual(await called(), ['lvs all'], 'one lvs for three reads');
	await look.run(['vgs', 'all']);
	assert.deepEqual(await called(), ['lvs all', 'vgs all'], 'another listing is read');
	await look.run(['sh', '-c', `echo cat >> '${path.join(dir, 'calls')}'`]);
	await look.run(['sh', '-c', `echo cat >> '${path.join(dir, 'calls')}'`]);
	assert.deepEqual(await called(), ['lvs all', 'vgs all', 'cat', 'cat'], 'what is not a listing runs each time');
	await assert.rejects(look.run(['lvs', 'broken']), /exited 5: Volume group "broken" not found/);
	assert.equal((await look.run(['lvs', 'broken'], {reject: false})).exitCode, 5);
	assert.equal((await called()).filter((line) => line === 'lvs broken').length, 1);
	// Still a look: what changes the machine is refused before it starts.
	await assert.rejects(look.run(['lvremove', '-f', 'all/dev']), {name: 'ReadOnlyHostError'});
	// A new look reads afresh.
	await lookingHost(host).run(['lvs', 'all']);
	assert.equal((await called()).filter((line) => line === 'lvs all').length, 2);
});

/** A stage that lists the volumes in its preflight, check and plan, and changes nothing. */
function listingStage(id: string, reads: string[]): Stage {
	const list = async (host: ReadOnlyHost, when: string) => {
		reads.push(`${id} ${when}: ${(await host.run(['lvs', 'all'])).stdout.trim()}`);
	};

	return {
		id,
		title: id,
		summary: id,
		danger: 'none',
		skippable: false,
		preflight: [async ({host}) => list(host, 'preflight')],
		async check({host}) {
			await list(host, 'check');
			return {status: 'pending', detail: 'not yet'};
		},
		async plan({host}) {
			await list(host, 'plan');
			return {commands: [], diffs: [], notes: []};
		},
		apply: async () => undefined,
		verify: async () => undefined,
		undo: async () => undefined,
	};
}

test('the preflight and the first gate share one look; after a gate the engine reads afresh', async (t) => {
	const {dir, bin, called} = await countingListings(t);
	const reads: string[] = [];
	const callsAtGate: number[] = [];
	const {outcome} = await runStages(
		[listingStage('first', reads), listingStage('second', reads)],
		path.join(dir, 'state'),
		{
			settings: defaultSettings('gallifrey-dev', {sourceLv: 'source.disk0', commandPath: [bin]}),
			ask: askWith(async () => {
				callsAtGate.push((await called()).length);
				return 'run';
			}),
		},
	);
	assert.equal(outcome, 'done');
	// The first stage's check and plan run beside the preflight (its gate may show before the slowest check ends).
	const expected = ['first preflight', 'second preflight', 'first check', 'first plan', 'second check', 'second plan'];
	assert.deepEqual([...reads].sort(), expected.map((read) => `${read}: lvs of all`).sort());
	const at = (read: string) => reads.indexOf(`${read}: lvs of all`);
	assert.ok(at('first check') < at('first plan') && at('first plan') < at('second check'), reads.join('\n'));
	assert.ok(at('second preflight') < at('second check') && at('second check') < at('second plan'), reads.join('\n'));
	// The preflight (both stages' checks) and the first stage's check and plan: one lvs; the second gate's look: one more.
	assert.deepEqual(callsAtGate, [1, 2]);
});
