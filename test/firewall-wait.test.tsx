import assert from 'node:assert/strict';
import {promptFrom} from '../source/engine/engine.js';
import {test} from 'node:test';
import {stripVTControlCharacters} from 'node:util';
import React from 'react';
import type {StageInfo, StartRun} from '../source/engine/api.js';
import type {FirewallWaitAnswer, FirewallWaitRequest} from '../source/stages/types.js';

const {render, cleanup} = await import('ink-testing-library');
const {RunApp} = await import('../source/components/run-app.js');
const {createRunStore} = await import('../source/ui/run-store.js');

const farm = 'gallifrey-dev';
const stages: StageInfo[] = ['firewall-rule', 'firewall-restart', 'start-vm'].map((id) => ({
	id,
	title: id,
	summary: id,
	danger: 'none',
	skippable: false,
}));

const plain = (frame: string | undefined) => stripVTControlCharacters(frame ?? '');

async function poll(check: () => boolean, what: string, frame: () => string): Promise<void> {
	const deadline = Date.now() + 3000;
	while (!check()) {
		if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last frame:\n${frame()}`);
		await new Promise((resolve) => setTimeout(resolve, 5));
	}
}

/** The engine's side: one firewall wait, its confirmation released by the test. */
function mount() {
	let confirm: (value: Awaited<FirewallWaitRequest['confirmed']>) => void = () => undefined;
	const confirmed = new Promise<Awaited<FirewallWaitRequest['confirmed']>>((resolve) => {
		confirm = resolve;
	});
	const answers: FirewallWaitAnswer[] = [];
	const deadline = Date.now() + 600_000;
	const start: StartRun = async (drivers) => {
		drivers.onEvent({type: 'run-start', farm, resumed: false, at: new Date().toISOString()});
		drivers.onEvent({type: 'stage-start', stage: 'firewall-restart', title: 'firewall-restart'});
		const firewallWait = promptFrom(drivers.ask).firewallWait;
		assert.ok(firewallWait, 'the TUI has the waiting screen');
		answers.push(await firewallWait({farm, command: `farmclone confirm ${farm}`, deadline, confirmed}));
		drivers.onEvent({type: 'run-end', farm, outcome: 'done'});
		return 'done';
	};

	const store = createRunStore({farm, stages, progressIntervalMs: 0});
	const app = render(<RunApp store={store} onExit={() => undefined} columns={80} rows={24} color={false} />);
	void store.start(start);
	const frame = () => plain(app.lastFrame());
	const waitFor = async (pattern: RegExp, what: string) => poll(() => pattern.test(frame()), what, frame);
	const press = async (keys: string, pattern: RegExp, what: string) => {
		await new Promise((resolve) => setTimeout(resolve, 10));
		const before = app.lastFrame();
		app.stdin.write(keys);
		await poll(() => app.lastFrame() !== before, `a new frame after ${JSON.stringify(keys)}`, frame);
		await waitFor(pattern, what);
	};

	return {frame, waitFor, press, confirm, answers, deadline};
}

test.afterEach(() => {
	cleanup();
});

test('firewall wait at 80x24: the command, the countdown, then who confirmed from where', async () => {
	const screen = mount();
	await screen.waitFor(/farmclone confirm gallifrey-dev/, 'the command to run');
	const waiting = screen.frame();
	assert.match(waiting, /From a NEW ssh session to this host, run:/);
	assert.match(waiting, /\d+ s left · then the previous firewall comes back \(\d\d:\d\d:\d\d [A-Z+\-\d]+\)/);
	assert.match(waiting, /r roll back now · k keep without proof \(typed\)/);
	const lines = waiting.split('\n');
	assert.ok(lines.length <= 24, `${lines.length} rows:\n${waiting}`);
	for (const line of lines) assert.ok(Array.from(line).length <= 80, `a line wider than 80:\n${line}`);
	// A plain y from this session keeps nothing: it is not a key of this screen.
	await new Promise((resolve) => setTimeout(resolve, 20));
	assert.deepEqual(screen.answers, []);

	const at = new Date('2026-12-02T21:00:05Z').toISOString();
	screen.confirm({proof: 'new-connection', at, client: '192.0.2.20', detail: 'confirmed from 192.0.2.20'});
	await screen.waitFor(/✔ confirmed from 192\.0\.2\.20 at \d\d:\d\d:05 /, 'who confirmed from where');
	assert.doesNotMatch(screen.frame(), /s left/, 'no countdown once kept');
	await screen.press('\r', /press any key|✔/, 'the end');
	await poll(() => screen.answers.length === 1, 'the answer', screen.frame);
	assert.deepEqual(screen.answers, ['confirmed']);
});

test('firewall wait: keep without proof is typed, a wrong text is refused', async () => {
	const screen = mount();
	await screen.waitFor(/farmclone confirm gallifrey-dev/, 'the waiting screen');
	await screen.press('k', /Type "keep without proof":/, 'the typed field');
	await screen.press('yes', /> yes/, 'the text');
	await screen.press('\r', /"yes" is not "keep without proof"/, 'the refusal');
	assert.deepEqual(screen.answers, []);
	await screen.press('keep without proof', /> keep without proof/, 'the phrase');
	await screen.press('\r', /press any key/, 'the end');
	assert.deepEqual(screen.answers, ['keep-without-proof']);
});
