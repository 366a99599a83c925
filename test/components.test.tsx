import assert from 'node:assert/strict';
import {promptFrom} from '../source/engine/engine.js';
import {test} from 'node:test';
import {stripVTControlCharacters} from 'node:util';
import React from 'react';
import type {StageInfo, StartRun} from '../source/engine/api.js';
import type {GateQuestion} from './kit/stage.js';
import type {EngineEvent} from '../source/engine/events.js';
import type {CheckResult, Plan, Stage} from '../source/stages/types.js';
import type {RunOutcome} from '../source/ui/run-state.js';

// The test runner sets FORCE_COLOR=0; colour has to be possible for the NO_COLOR test to mean anything,
// and chalk reads this once, when Ink first loads it.
process.env['FORCE_COLOR'] = '1';
const {render, cleanup} = await import('ink-testing-library');
const {RunApp} = await import('../source/components/run-app.js');
const {createRunStore} = await import('../source/ui/run-store.js');
const {FarmPicker} = await import('../source/components/farm-picker.js');
const {colorWanted} = await import('../source/components/theme.js');
const {onCopyRateNudge} = await import('../source/host/copy-rate.js');

const farm = 'gallifrey-dev';

const stageInfos: StageInfo[] = [
	['snapshot', 'snapshot the source disk', 'none', false],
	['target', 'create the target volume', 'none', false],
	['copy', 'copy the disk', 'typed', false],
	['drop-snapshot', 'drop the snapshot', 'none', true],
	['dns', 'DNS record', 'none', false],
	['mac', 'MAC address', 'none', false],
	['dhcp', 'DHCP host', 'none', false],
	['reload', 'reload DNS and DHCP', 'confirm', false],
	['ganeti', 'Ganeti instance', 'none', false],
	['own-machine', 'make the clone its own machine', 'none', true],
	['firewall-rule', 'firewall rule', 'none', false],
	['firewall-restart', 'firewall restart', 'typed', false],
	['start', 'start the VM', 'none', false],
	['balloon', 'balloon memory down', 'none', true],
	['proxy', 'reverse proxy', 'none', true],
].map(([id, title, danger, skippable]) => ({
	id: String(id),
	title: String(title),
	summary: `seed step of ${String(id)}`,
	danger: danger as StageInfo['danger'],
	skippable: skippable === true,
}));

function info(id: string): StageInfo {
	const found = stageInfos.find((stage) => stage.id === id);
	assert.ok(found, id);
	return found;
}

const refuse = async (): Promise<never> => {
	throw new Error('the screen must not call the stage itself');
};

function gateRequest(id: string, plan: Plan, check: CheckResult): GateQuestion {
	const stage: Stage = {...info(id), check: refuse, plan: refuse, apply: refuse, verify: refuse, undo: refuse};
	return {kind: 'gate', stage, index: stageInfos.indexOf(info(id)), plan, check};
}

const pending: CheckResult = {status: 'pending', detail: 'not there yet'};

const snapshotPlan: Plan = {
	commands: [['lvcreate', '--snapshot', '--size', '1G', '--name', 'gallifrey-dev-snap', '/dev/all/source.disk0']],
	diffs: [],
	notes: [],
};

/** A plan longer and wider than any 80x24 screen: long commands, a long diff with tabs. */
const bigPlan: Plan = {
	commands: [
		[
			'ionice',
			'-c3',
			'dd',
			'if=/dev/all/gallifrey-dev-snap',
			'of=/dev/all/gallifrey-dev',
			'bs=1048576',
			'iflag=direct',
		],
		['lvs', '--noheadings', '-o', 'snap_percent', 'all/gallifrey-dev-snap-with-a-name-long-enough-to-wrap-twice'],
	],
	diffs: [
		{
			path: '/etc/bind/db.farm',
			diff: [
				'@@ -1,3 +1,4 @@',
				' $TTL\t1h',
				'-@\tIN\tSOA\tns.farm. root.farm. 2011072501 1h 15m 1w 1h',
				'+@\tIN\tSOA\tns.farm. root.farm. 2011072502 1h 15m 1w 1h',
				...Array.from({length: 40}, (_, line) => `+host-${line}.xivo.vm\tIN\tA\t10.0.${line}.1 ; ${'x'.repeat(60)}`),
			].join('\n'),
		},
	],
	notes: ['dd runs detached: it keeps copying when the SSH connection drops'],
};

type Harness = {
	lastFrame: () => string;
	frames: string[];
	press: (keys: string, until: (frame: string) => boolean, what: string) => Promise<string>;
	waitFor: (until: (frame: string) => boolean, what: string) => Promise<string>;
	/** Writes keys without waiting for anything. */
	write: (keys: string) => void;
	outcome: () => RunOutcome | undefined;
	describe: () => string;
};

function plain(frame: string | undefined): string {
	return stripVTControlCharacters(frame ?? '');
}

async function poll<T>(check: () => T | undefined, what: string, describe: () => string, timeoutMs = 3000): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = check();
		if (value !== undefined) return value;
		if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last frame:\n${describe()}`);
		await new Promise((resolve) => setTimeout(resolve, 5));
	}
}

function mount(
	start: StartRun,
	options: {columns?: number; rows?: number; color?: boolean; progressIntervalMs?: number} = {},
): Harness {
	let outcome: RunOutcome | undefined;
	const store = createRunStore({farm, stages: stageInfos, progressIntervalMs: options.progressIntervalMs ?? 0});
	const app = render(
		<RunApp
			store={store}
			onExit={(result) => {
				outcome = result;
			}}
			columns={options.columns ?? 80}
			rows={options.rows ?? 24}
			color={options.color ?? true}
		/>,
	);
	void store.start(start);
	const lastFrame = () => app.lastFrame() ?? '';
	const waitFor = (until: (frame: string) => boolean, what: string) =>
		poll(
			() => (until(plain(lastFrame())) ? plain(lastFrame()) : undefined),
			what,
			() => plain(lastFrame()),
		);
	return {
		lastFrame,
		frames: app.frames,
		waitFor,
		async press(keys, until, what) {
			// Ink subscribes a newly shown field to the keys after the frame is out; a person is never that fast.
			await new Promise((resolve) => setTimeout(resolve, 10));
			const before = lastFrame();
			app.stdin.write(keys);
			// The frame must change first: a key that did nothing cannot pass by matching the old frame.
			await poll(
				() => (lastFrame() === before ? undefined : true),
				`a new frame after ${JSON.stringify(keys)}`,
				() => plain(before),
			);
			return waitFor(until, what);
		},
		write(keys) {
			app.stdin.write(keys);
		},
		outcome: () => outcome,
		describe: () => plain(lastFrame()),
	};
}

/** The live region: from the header down. Everything above it is the log, which may scroll away. */
function liveRegion(frame: string): string[] {
	const lines = frame.split('\n');
	let header = lines.length - 1;
	while (header >= 0 && !lines[header]?.startsWith(`farmclone ${farm} ·`)) header--;
	assert.ok(header >= 0, `no header in:\n${frame}`);
	return lines.slice(header).filter((line, index, all) => index < all.length - 1 || line !== '');
}

/** A fake engine: its steps run in order, each after the previous was answered. */
function scripted(
	body: (drivers: Parameters<StartRun>[0], emit: (event: EngineEvent) => void) => Promise<RunOutcome>,
): {start: StartRun; finished: Promise<RunOutcome>} {
	let settle: (outcome: RunOutcome) => void = () => {};
	const finished = new Promise<RunOutcome>((resolve) => {
		settle = resolve;
	});
	const start: StartRun = async (drivers) => {
		drivers.onEvent({type: 'run-start', farm, resumed: false, at: new Date().toISOString()});
		const outcome = await body(drivers, drivers.onEvent);
		drivers.onEvent({type: 'run-end', farm, outcome});
		settle(outcome);
		return outcome;
	};

	return {start, finished};
}

async function showGate(
	drivers: Parameters<StartRun>[0],
	id: string,
	plan: Plan,
	check: CheckResult = pending,
): Promise<'run' | 'skip' | 'quit'> {
	drivers.onEvent({type: 'check', stage: id, result: check});
	drivers.onEvent({type: 'plan', stage: id, plan});
	return drivers.ask(gateRequest(id, plan, check));
}

test.afterEach(() => {
	cleanup();
});

test('the plan is shown before a stage runs, Enter runs it, and a finished run waits for a key', async () => {
	const answers: string[] = [];
	const engine = scripted(async (drivers, emit) => {
		const answer = await showGate(drivers, 'snapshot', snapshotPlan);
		answers.push(answer);
		emit({type: 'stage-start', stage: 'snapshot', title: 'snapshot the source disk'});
		emit({
			type: 'command',
			stage: 'snapshot',
			command: {
				argv: snapshotPlan.commands[0] ?? [],
				exitCode: 0,
				stdout: '  Logical volume "gallifrey-dev-snap" created.\n',
				stderr: '',
				durationMs: 120,
			},
		});
		emit({
			type: 'command',
			stage: 'snapshot',
			command: {
				argv: ['lvs', '--reportformat', 'json', 'all'],
				exitCode: 0,
				stdout: '{\n  "report": [\n    {"lv": []}\n  ]\n}\n',
				stderr: '',
				durationMs: 80,
			},
		});
		emit({type: 'stage-done', stage: 'snapshot', title: 'snapshot the source disk', seconds: 2.1});
		return 'done';
	});
	const screen = mount(engine.start);
	const gate = await screen.waitFor((frame) => frame.includes('Enter run'), 'the key line');
	assert.match(gate, /\$ lvcreate --snapshot --size 1G --name gallifrey-dev-snap \/dev\/all\/source\.disk0/);
	assert.match(gate, /1\/15 snapshot the source disk/);
	assert.doesNotMatch(gate, /s skip/, 'the snapshot stage cannot be skipped');

	const end = await screen.press('\r', (frame) => frame.includes('press any key'), 'the end of the run');
	assert.deepEqual(answers, ['run']);
	assert.match(end, /✔ 1 snapshot the source disk \(2\.1 s\)/);
	assert.match(end, /\$ lvcreate [\s\S]* → exit 0/);
	assert.match(end, /Logical volume "gallifrey-dev-snap" created\./);
	assert.match(end, /\$ lvs --reportformat json all → exit 0 \(0\.1 s\)\n {6}\(5 lines of JSON\)/);
	assert.equal(screen.outcome(), undefined, 'the screen stays until a key is pressed');
	screen.write('x');
	assert.equal(await poll(screen.outcome, 'the outcome', screen.describe), 'done');
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('the first gate shown while the preflight still checks says Enter runs once it passes, then says Enter run', async () => {
	let passed: () => void = () => undefined;
	const preflightDone = new Promise<void>((resolve) => {
		passed = resolve;
	});
	let narrowed: () => void = () => undefined;
	const oneLeft = new Promise<void>((resolve) => {
		narrowed = resolve;
	});
	const engine = scripted(async (drivers, emit) => {
		emit({type: 'preflight', done: 2, total: 6, running: ['cluster', 'firewall', 'proxy', 'volumes']});
		const answer = drivers.ask(gateRequest('snapshot', snapshotPlan, pending));
		drivers.onEvent({type: 'check', stage: 'snapshot', result: pending});
		drivers.onEvent({type: 'plan', stage: 'snapshot', plan: snapshotPlan});
		await oneLeft;
		emit({type: 'preflight', done: 5, total: 6, running: ['firewall']});
		await preflightDone;
		emit({type: 'preflight', done: 6, total: 6, running: []});
		await answer;
		return 'done';
	});
	const screen = mount(engine.start);
	const early = await screen.waitFor((frame) => frame.includes('waits for you'), 'the gate');
	// Four names and the keys do not fit in 80 columns: how many are left, and every key.
	assert.match(early, /^Enter: run once the preflight passes \(4 checks left\) · d whole plan · q quit$/m);
	assert.doesNotMatch(early, /⠋|⠙|⠹|⠸|⠼|⠴|⠦|⠧|⠇|⠏/, 'no spinner at a gate');
	narrowed();
	const last = await screen.waitFor((frame) => frame.includes('(checking firewall)'), 'the last check by name');
	assert.match(last, /^Enter: run once the preflight passes \(checking firewall\) · d whole plan · q quit$/m);
	passed();
	const ready = await screen.waitFor(
		(frame) => frame.includes('Enter run · d whole plan · q quit'),
		'the plain key line',
	);
	assert.doesNotMatch(ready, /once the preflight passes/);
	await screen.press('\r', (frame) => frame.includes('press any key'), 'the end');
});

test('s skips a skippable stage and does nothing on one that is not', async () => {
	const answers: string[] = [];
	const engine = scripted(async (drivers, emit) => {
		answers.push(await showGate(drivers, 'snapshot', snapshotPlan));
		emit({type: 'stage-done', stage: 'snapshot', title: 'snapshot the source disk', seconds: 1});
		const answer = await showGate(drivers, 'drop-snapshot', snapshotPlan);
		answers.push(answer);
		if (answer === 'skip') {
			emit({type: 'stage-skipped', stage: 'drop-snapshot', title: 'drop the snapshot', reason: 'skipped by the admin'});
		}

		return 'done';
	});
	const screen = mount(engine.start);
	await screen.waitFor((frame) => frame.includes('Enter run · d whole plan · q quit'), 'the snapshot gate');
	screen.write('s');
	await sleep(50);
	assert.deepEqual(answers, [], 's must not answer the gate of a stage that cannot be skipped');

	await screen.press(
		'\r',
		(frame) => frame.includes('Enter run · s skip · d whole plan · q quit'),
		'the skippable gate',
	);
	const end = await screen.press('s', (frame) => frame.includes('press any key'), 'the end');
	assert.deepEqual(answers, ['run', 'skip']);
	assert.match(end, /↷ 4 drop the snapshot skipped: skipped by the admin/);
	assert.ok(end.includes(' ↷  4 drop the snapshot'), 'the list marks it skipped');
});

test('q at a gate answers quit and leaves without another key', async () => {
	const answers: string[] = [];
	const engine = scripted(async (drivers) => {
		const answer = await showGate(drivers, 'snapshot', snapshotPlan);
		answers.push(answer);
		return answer === 'quit' ? 'stopped' : 'done';
	});
	const screen = mount(engine.start);
	await screen.waitFor((frame) => frame.includes('Enter run'), 'the gate');
	screen.write('q');
	assert.equal(await poll(screen.outcome, 'the outcome', screen.describe), 'stopped');
	assert.deepEqual(answers, ['quit']);
	assert.match(screen.describe(), /stopped \(0\/15 done\)\nresume with: farmclone run gallifrey-dev/);
	assert.doesNotMatch(screen.describe(), /press any key/);
});

test('a dangerous stage runs only once the farm name is typed; a wrong name is refused, Esc goes back', async () => {
	const answers: string[] = [];
	const engine = scripted(async (drivers) => {
		answers.push(await showGate(drivers, 'copy', snapshotPlan));
		return 'done';
	});
	const screen = mount(engine.start);
	await screen.waitFor((frame) => frame.includes('Enter run'), 'the copy gate');
	await screen.press('\r', (frame) => frame.includes("Type the farm's name to run copy the disk"), 'the typed field');
	assert.deepEqual(answers, [], 'Enter alone must not run a dangerous stage');

	await screen.press('gallifrey', (frame) => frame.includes('> gallifrey'), 'the typed text');
	const refused = await screen.press('\r', (frame) => frame.includes('does not match'), 'the refusal');
	assert.match(refused, /"gallifrey" does not match: type gallifrey-dev exactly/);
	await sleep(20);
	assert.deepEqual(answers, []);

	const back = await screen.press(
		'\u001B',
		(frame) => frame.includes('Enter run · d whole plan · q quit'),
		'the key line again',
	);
	assert.doesNotMatch(back, /Type the farm's name/);
	await screen.press('\r', (frame) => frame.includes("Type the farm's name"), 'the typed field again');
	// A slow link delivers the name and Enter in one read.
	await screen.press(`${farm}\r`, (frame) => frame.includes('press any key'), 'the end');
	assert.deepEqual(answers, ['run']);
});

test('Ctrl+C asks before quitting; n carries on, y aborts the engine and leaves with stopped', async () => {
	let signal: AbortSignal | undefined;
	const engine = scripted(async (drivers, emit) => {
		signal = drivers.signal;
		emit({type: 'stage-start', stage: 'copy', title: 'copy the disk'});
		await new Promise((resolve) => drivers.signal.addEventListener('abort', resolve));
		return 'stopped';
	});
	const screen = mount(engine.start);
	await screen.waitFor((frame) => frame.includes('3/15 copy the disk running'), 'the running stage');
	const asked = await screen.press('\u0003', (frame) => frame.includes('Quit farmclone?'), 'the question');
	assert.match(asked, /Quit farmclone\? The run stays resumable\. \(y\/n\)/);
	await screen.press('n', (frame) => !frame.includes('Quit farmclone?'), 'the question to go');
	assert.equal(signal?.aborted, false);

	await screen.press('\u0003', (frame) => frame.includes('Quit farmclone?'), 'the question again');
	screen.write('y');
	assert.equal(await poll(screen.outcome, 'the outcome', screen.describe), 'stopped');
	assert.equal(signal?.aborted, true);
	assert.equal(await engine.finished, 'stopped');
});

const gib = 1024 ** 3;
const yellow = 33;

/** Colour codes set on the line of `needle`, before it. */
function coloursBefore(frame: string, needle: string): number[] {
	const line = frame.split('\n').find((candidate) => candidate.includes(needle)) ?? '';
	return colorCodes(line.slice(0, line.indexOf(needle)));
}
const copying = {bytes: Math.round(gib * 0.48), total: gib, rate: 180 * 1024 ** 2, etaSeconds: 3};

test('the copy shows a bar, bytes done and total, rate, ETA and the snapshot fill', async () => {
	let release: () => void = () => {};
	const engine = scripted(async (_drivers, emit) => {
		emit({type: 'stage-start', stage: 'copy', title: 'copy the disk'});
		emit({type: 'progress', stage: 'copy', progress: {...copying, snapshotPercent: 12}});
		await new Promise<void>((resolve) => {
			release = resolve;
		});
		emit({type: 'progress', stage: 'copy', progress: {...copying, snapshotPercent: 85}});
		await new Promise<void>((resolve) => {
			release = resolve;
		});
		return 'done';
	});
	const screen = mount(engine.start);
	const frame = await screen.waitFor((text) => text.includes('snapshot 12%'), 'the progress');
	assert.match(frame, /█+░+ +48%/);
	assert.match(frame, /492 MiB \/ 1\.0 GiB · 180 MiB\/s · ETA 3s · snapshot 12% full/);
	assert.ok(!coloursBefore(screen.lastFrame(), 'snapshot 12%').includes(yellow), 'a low fill is not a warning');

	release();
	await screen.waitFor((text) => text.includes('snapshot 85%'), 'the fuller snapshot');
	assert.ok(coloursBefore(screen.lastFrame(), 'snapshot 85% full').includes(yellow), 'yellow from 80%');
	release();
	await screen.waitFor((text) => text.includes('press any key'), 'the end');
});

test('the copy shows its rate mode, limit and disk latency beside idle; + and - reach the rate keeper', async () => {
	const nudges: number[] = [];
	const unsubscribe = onCopyRateNudge((delta) => nudges.push(delta));
	let release: () => void = () => {};
	const engine = scripted(async (_drivers, emit) => {
		emit({type: 'stage-start', stage: 'copy', title: 'copy the disk'});
		const rate = {
			rateMode: 'auto',
			rateLimit: 16 * 1024 ** 2,
			otherRequestsPerSecond: 7240,
			diskLatencyMs: 0.94,
			idleLatencyMs: 0.4,
		};
		emit({type: 'progress', stage: 'copy', progress: {...copying, ...rate}});
		await new Promise<void>((resolve) => {
			release = resolve;
		});
		return 'done';
	});
	try {
		const screen = mount(engine.start);
		const frame = await screen.waitFor((text) => text.includes('disk latency'), 'the rate line');
		assert.match(frame, /auto, limit 16 MiB\/s, 7\.2k other io\/s · disk latency 0\.9 ms, 0\.4 idle · \+\/- rate/);
		screen.write('+');
		await poll(
			() => (nudges.length === 1 ? true : undefined),
			'the + nudge',
			() => String(nudges),
		);
		screen.write('-');
		await poll(
			() => (nudges.length === 2 ? true : undefined),
			'the - nudge',
			() => String(nudges),
		);
		assert.deepEqual(nudges, [1, -1]);
		release();
		await screen.waitFor((text) => text.includes('press any key'), 'the end');
	} finally {
		unsubscribe();
	}
});

test('a burst of progress events is coalesced into one repaint per interval', async () => {
	let release: () => void = () => {};
	const engine = scripted(async (_drivers, emit) => {
		emit({type: 'stage-start', stage: 'copy', title: 'copy the disk'});
		for (let step = 1; step <= 200; step++) {
			emit({type: 'progress', stage: 'copy', progress: {...copying, bytes: step * 1024 ** 2, etaSeconds: 1000 - step}});
		}

		await new Promise<void>((resolve) => {
			release = resolve;
		});
		return 'done';
	});
	const screen = mount(engine.start, {progressIntervalMs: 200});
	await screen.waitFor((text) => text.includes('200 MiB / 1.0 GiB'), 'the last progress');
	await sleep(300);
	const shown = new Set(
		screen.frames
			.map((frame) => /(\d+) MiB \/ 1\.0 GiB/.exec(plain(frame))?.[1])
			.filter((value) => value !== undefined),
	);
	assert.ok(shown.size <= 2, `progress repainted ${shown.size} times: ${[...shown].join(', ')}`);
	assert.ok(shown.has('200'));
	release();
	await screen.waitFor((text) => text.includes('press any key'), 'the end');
});

test('prompts: confirm with y, a choice with the arrows, a typed answer refused then accepted', async () => {
	const answers: unknown[] = [];
	const engine = scripted(async (drivers, emit) => {
		emit({type: 'stage-start', stage: 'mac', title: 'MAC address'});
		answers.push(await promptFrom(drivers.ask).confirm('Reuse the MAC 52:54:00:12:34:56 from the last run?'));
		answers.push(await promptFrom(drivers.ask).confirm('Extend the snapshot by 1G?'));
		answers.push(
			await promptFrom(drivers.ask).choose('Which Ganeti node?', [
				{label: 'node1.farm (12 GiB free)', value: 'node1'},
				{label: 'node2.farm (30 GiB free)', value: 'node2'},
			]),
		);
		answers.push(await promptFrom(drivers.ask).typed('Type gallifrey-dev to keep the new firewall:', farm));
		answers.push(await promptFrom(drivers.ask).typed('Type gallifrey-dev once more:', farm));
		return 'done';
	});
	const screen = mount(engine.start);
	await screen.waitFor(
		(frame) => frame.includes('Reuse the MAC 52:54:00:12:34:56 from the last run? (y/n)'),
		'confirm',
	);
	await screen.press('y', (frame) => frame.includes('Extend the snapshot by 1G? (y/n)'), 'the second confirm');
	const choice = await screen.press('n', (frame) => frame.includes('Which Ganeti node?'), 'the choice');
	assert.match(choice, /node1\.farm \(12 GiB free\)/);
	assert.match(choice, /node2\.farm \(30 GiB free\)/);
	await screen.press('\u001B[B', (frame) => /❯ node2/.test(frame), 'the second option focused');
	await screen.press('\r', (frame) => frame.includes('Type gallifrey-dev to keep the new firewall:'), 'typed');
	await screen.press('nope', (frame) => frame.includes('> nope'), 'the typed text');
	await screen.press('\r', (frame) => frame.includes('"nope" does not match'), 'the refusal');
	assert.equal(answers.length, 3, 'a wrong answer does not resolve the typed prompt');
	await screen.press(farm, (frame) => frame.includes(`> ${farm}`), 'the right text');
	await screen.press('\r', (frame) => frame.includes('once more'), 'the last prompt');
	screen.write('\u001B');
	await screen.waitFor((frame) => frame.includes('press any key'), 'the end');
	assert.deepEqual(answers, [true, false, 'node2', true, false]);
});

test('an engine that throws is shown as a failure, not a crash', async () => {
	const start: StartRun = async () => {
		throw new Error('gallifrey-dev is locked by farmclone run (pid 4242)');
	};
	const screen = mount(start);
	const frame = await screen.waitFor((text) => text.includes('press any key'), 'the end');
	assert.match(frame, /gallifrey-dev is locked by farmclone run \(pid 4242\)/);
	screen.write(' ');
	assert.equal(await poll(screen.outcome, 'the outcome', screen.describe), 'failed');
});

/** Every state with something to show at once, for the size and colour checks. */
async function busyScreen(options: {color: boolean}): Promise<{frames: string[]}> {
	let release: () => void = () => {};
	const waitRelease = () =>
		new Promise<void>((resolve) => {
			release = resolve;
		});
	const engine = scripted(async (drivers, emit) => {
		emit({type: 'stage-done', stage: 'snapshot', title: 'snapshot the source disk', seconds: 2.1});
		emit({
			type: 'command',
			stage: 'target',
			command: {
				argv: [
					'lvcreate',
					'--size',
					'32212254720b',
					'--name',
					'gallifrey-dev',
					'all',
					...Array<string>(12).fill('--yes'),
				],
				exitCode: 5,
				stdout: '',
				stderr: `\tLogical volume "gallifrey-dev" already exists in volume group "all" ${'and more '.repeat(12)}\n`,
				durationMs: 300,
			},
		});
		emit({type: 'log', stage: 'copy', text: 'warning: the snapshot is 85% full'});
		emit({
			type: 'stage-failed',
			stage: 'target',
			title: 'create the target volume',
			error: 'lvcreate exited 5\nLogical volume exists',
			hint: 'remove it with lvremove all/gallifrey-dev if it is a leftover',
		});
		await drivers.ask(gateRequest('copy', bigPlan, pending));
		emit({type: 'stage-start', stage: 'copy', title: 'copy the disk'});
		emit({type: 'progress', stage: 'copy', progress: {...copying, snapshotPercent: 85}});
		await waitRelease();
		await promptFrom(drivers.ask).choose(
			'Pick one of many nodes, each with a long label that will not fit on one line of an 80-column screen',
			Array.from({length: 30}, (_, node) => ({label: `node${node}.farm ${'-'.repeat(90)}`, value: `node${node}`})),
		);
		return 'failed';
	});
	const screen = mount(engine.start, {color: options.color});
	await screen.waitFor((text) => text.includes('d shows the whole plan'), 'the big plan');
	await screen.press('d', (text) => /lines 1-\d+ of/.test(text), 'the whole plan paged');
	await screen.press('\u001B[6~', (text) => !/lines 1-\d+ of/.test(text), 'its next page');
	await screen.press('d', (text) => text.includes('d whole plan'), 'the plan cut to its changes');
	await screen.press('\r', (text) => text.includes("Type the farm's name"), 'the typed field');
	await screen.press('x'.repeat(100), (text) => text.includes('xxxx'), 'a long wrong name');
	await screen.press('\r', (text) => text.includes('does not match'), 'the refusal');
	await screen.press(farm, (text) => text.includes(`> ${farm}`), 'the name');
	await screen.press('\r', (text) => text.includes('snapshot 85% full'), 'the progress');
	await screen.press('\u0003', (text) => text.includes('Quit farmclone?'), 'the quit question');
	await screen.press('n', (text) => !text.includes('Quit farmclone?'), 'no quit');
	release();
	await screen.waitFor((text) => text.includes('Pick one of many nodes'), 'the long choice');
	await screen.press('\r', (text) => text.includes('press any key'), 'the end');
	return {frames: screen.frames.slice()};
}

test('every frame fits 80 columns and the live region fits 24 rows', async () => {
	const {frames} = await busyScreen({color: true});
	assert.ok(frames.length > 5);
	for (const frame of frames) {
		const text = plain(frame);
		for (const line of text.split('\n')) {
			assert.ok(Array.from(line).length <= 80, `a line of ${Array.from(line).length} columns:\n${line}\nin:\n${text}`);
		}

		const live = liveRegion(text);
		assert.ok(live.length <= 23, `a live region of ${live.length} rows (the terminal has 24):\n${live.join('\n')}`);
	}
});

const escape = '\u001B';

/** Select Graphic Rendition sequences (`ESC [ … m`) in `text`, with where they start and their parameters. */
function sgrSequences(text: string): Array<{index: number; codes: number[]}> {
	const found: Array<{index: number; codes: number[]}> = [];
	for (let index = text.indexOf(`${escape}[`); index !== -1; index = text.indexOf(`${escape}[`, index + 2)) {
		const end = text.indexOf('m', index);
		const body = text.slice(index + 2, end);
		if (end !== -1 && /^[0-9;]*$/.test(body)) found.push({index, codes: body.split(';').map(Number)});
	}

	return found;
}

/** SGR colour parameters: 30-39, 40-49, 90-97, 100-107. Bold, dim and reverse video are not colours. */
const isColour = (code: number) => (code >= 30 && code <= 49) || (code >= 90 && code <= 107);

function colorCodes(frame: string): number[] {
	return sgrSequences(frame).flatMap((sequence) => sequence.codes.filter(isColour));
}

test('without colour (NO_COLOR) no frame has a colour code; with it, the same screen has some', async () => {
	assert.equal(colorWanted({NO_COLOR: '1'}), false);
	assert.equal(colorWanted({NO_COLOR: ''}), false, 'any value counts, even empty');
	assert.equal(colorWanted({}), true);

	const coloured = await busyScreen({color: true});
	assert.ok(
		coloured.frames.some((frame) => colorCodes(frame).length > 0),
		'the check itself must be able to fail',
	);
	cleanup();
	const colourless = await busyScreen({color: false});
	for (const frame of colourless.frames) assert.deepEqual(colorCodes(frame), [], plain(frame));
});

test('the farm picker returns the farm picked, or nothing on q', async () => {
	const farms = [
		{name: 'gallifrey-dev', summary: '7/14 done, copy running'},
		{name: 'skaro-dev', summary: 'ready'},
	];
	const open = (onDone: (farm: string | undefined) => void) => {
		const picker = render(<FarmPicker farms={farms} columns={80} rows={24} onDone={onDone} />);
		const shows = (pattern: RegExp, what: string) =>
			poll(
				() => (pattern.test(plain(picker.lastFrame())) ? true : undefined),
				what,
				() => plain(picker.lastFrame()),
			);
		return {picker, shows};
	};

	let picked: string | undefined = 'not yet';
	const first = open((farm) => {
		picked = farm;
	});
	await first.shows(/gallifrey-dev +7\/14 done, copy running/, 'the list');
	first.picker.stdin.write('\u001B[B');
	await first.shows(/❯ skaro-dev/, 'the second farm focused');
	first.picker.stdin.write('\r');
	await poll(
		() => (picked === 'not yet' ? undefined : true),
		'a pick',
		() => plain(first.picker.lastFrame()),
	);
	assert.equal(picked, 'skaro-dev');

	let quitPick: string | undefined = 'not yet';
	const second = open((farm) => {
		quitPick = farm;
	});
	await second.shows(/skaro-dev/, 'the list');
	second.picker.stdin.write('q');
	await poll(
		() => (quitPick === 'not yet' ? undefined : true),
		'the quit',
		() => plain(second.picker.lastFrame()),
	);
	assert.equal(quitPick, undefined);
});

test('the end of a done run says what it made, a line each, and the ssh command stays on screen', async () => {
	const made = {
		name: farm,
		fqdn: 'gallifrey-dev.xivo.vm.farm',
		ip: '10.10.60.6',
		mac: '52:54:53:90:3d:9f',
		ssh: 'ssh -p 22006 root@gallifrey-dev.dachary.org',
		url: 'http://gallifrey-dev.dachary.org/',
		memory: '4G (balloon 1G)',
		sshHostKeys: ['SHA256:OuyYgJ9+QFHvFxkrckbVGAk0HWzguOBOzFMY8LvLHMU'],
		backups: ['/var/lib/farmclone/gallifrey-dev/backups/db.farm.1'],
	};
	const start: StartRun = async (drivers) => {
		drivers.onEvent({type: 'run-start', farm, resumed: false, at: new Date().toISOString()});
		drivers.onEvent({type: 'run-end', farm, outcome: 'done', made});
		return 'done';
	};
	const screen = mount(start);
	const end = await screen.waitFor((frame) => frame.includes('press any key'), 'the end');
	assert.match(
		end,
		/^gallifrey-dev \(gallifrey-dev\.xivo\.vm\.farm\): 10\.10\.60\.6, MAC 52:54:53:90:3d:9f$/m,
		'a line that fits 80 columns',
	);
	assert.match(end, /^ {2}memory: 4G/m);
	assert.match(end, /^ {2}ssh: ssh -p 22006 root@gallifrey-dev\.dachary\.org$/m, 'a line of its own in the log');
	assert.match(end, /^ {4}SHA256:OuyYgJ9/m);
	assert.match(end, /^ {2}backups in \/var\/lib\/farmclone\/gallifrey-dev\/backups\/:\n {4}db\.farm\.1$/m);
	assert.match(end, /is ready \(0\/15 done\)\nssh: ssh -p 22006 root@gallifrey-dev\.dachary\.org\nurl: http:/);
});
