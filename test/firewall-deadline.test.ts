import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {Host} from '../source/host/host.js';
import {defaultSettings} from '../source/settings/schema.js';
import {firewallRestartStage} from '../source/stages/firewall-restart.js';
import {StageError, type FirewallWaitRequest, type StageContext} from '../source/stages/types.js';
import {statesInMemory} from '../source/stages/state.js';

/**
 * A stand-in shorewall whose restart takes as long as the test says (a file
 * holds the seconds) and writes when it returned: the watchdog's deadline
 * must start from there, whatever the restart cost.
 */
const fakeShorewall = `#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/calls"
case "$1" in
check) echo "Shorewall configuration verified" ;;
status) echo "Shorewall is running" ;;
restart)
	seconds=$(cat "$dir/restart-seconds")
	# A hang: the process itself sleeps, so that killing it ends it.
	[ "$seconds" -gt 100 ] && exec sleep "$seconds"
	sleep "$seconds"
	date +%s%3N > "$dir/restart-returned" ;;
*) ;;
esac
`;

async function setUp(t: {after: (fn: () => Promise<void>) => void}, restartSeconds: number, restartTimeout: number) {
	const work = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-fwdeadline-'));
	t.after(async () => {
		await fs.rm(work, {recursive: true, force: true});
	});
	const bin = path.join(work, 'bin');
	const shorewallDir = path.join(work, 'shorewall');
	const stateDir = path.join(work, 'state');
	await Promise.all([bin, shorewallDir, stateDir].map(async (dir) => fs.mkdir(dir, {recursive: true})));
	await fs.writeFile(path.join(bin, 'shorewall'), fakeShorewall, {mode: 0o755});
	await fs.writeFile(path.join(bin, 'restart-seconds'), String(restartSeconds));
	await fs.writeFile(path.join(shorewallDir, 'rules'), '#ACTION SOURCE DEST\n');
	await fs.writeFile(path.join(shorewallDir, 'params'), '');
	const settings = {
		...defaultSettings('gallifrey-dev', {sourceLv: 'source.disk0', ip: '10.10.60.6'}),
		commandPath: [bin],
		shorewallDir,
		firewallTimeout: 10,
		firewallRestartTimeout: restartTimeout,
	};
	const {states, saveState} = statesInMemory();
	const waits: FirewallWaitRequest[] = [];
	const context: StageContext = {
		settings,
		host: new Host({commandPath: [bin], backupDir: path.join(stateDir, 'backups')}),
		states,
		saveState,
		updateSettings: async () => undefined,
		stateDir,
		log: () => undefined,
		progress: () => undefined,
		prompt: {
			confirm: async () => false,
			choose: async (_message, choices) => choices[0]!.value,
			typed: async () => false,
			async firewallWait(request) {
				waits.push(request);
				return 'roll-back';
			},
		},
		signal: new AbortController().signal,
	};
	const calls = async () => (await fs.readFile(path.join(bin, 'calls'), 'utf8')).trim().split('\n');
	return {bin, context, states, waits, calls, stateDir};
}

test('a slow restart does not eat the confirmation time: the deadline starts when it returned', async (t) => {
	const {bin, context, waits, calls} = await setUp(t, 3, 60);
	const started = Date.now();
	await assert.rejects(firewallRestartStage.apply(context), StageError);
	const returned = Number(await fs.readFile(path.join(bin, 'restart-returned'), 'utf8'));
	assert.ok(returned - started >= 3000, 'the restart was slow');
	assert.equal(waits.length, 1, 'the admin was asked once the restart returned');
	assert.ok(
		waits[0]!.deadline >= returned + 10_000,
		`only ${waits[0]!.deadline - returned} ms of the 10 s left after the restart`,
	);
	assert.deepEqual(await calls(), [
		'check ' + context.settings.shorewallDir,
		'status',
		'save farmclone-gallifrey-dev',
		`restart ${context.settings.shorewallDir}`,
		'restore farmclone-gallifrey-dev',
	]);
});

test('a restart that hangs past firewallRestartTimeout is killed and rolled back, nobody is asked', async (t) => {
	const {context, states, waits, calls} = await setUp(t, 600, 5);
	await assert.rejects(firewallRestartStage.apply(context), (error: unknown) => {
		assert.ok(error instanceof StageError);
		assert.match(error.message, /not kept: the previous rules, params and firewall are back/);
		return true;
	});
	assert.equal(waits.length, 0);
	assert.equal(states['firewall-restart']?.['outcome'], 'rolled-back');
	assert.equal(states['firewall-restart']?.['deadline'], undefined, 'no deadline: the restart never returned');
	assert.equal((await calls()).at(-1), 'restore farmclone-gallifrey-dev');
});
