import assert from 'node:assert/strict';
import {promptFrom} from '../../source/engine/engine.js';
import {randomBytes} from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {execa} from 'execa';
import type {WatchdogResult} from '../../source/host/firewall-watchdog.js';
import {isSameProcessAlive} from '../../source/host/proc.js';
import {Host} from '../../source/host/host.js';
import {SettingsStore} from '../../source/settings/store.js';
import {createSimFarm} from '../../source/sim/farm.js';
import {simNetwork, waitFor} from '../../source/sim/netns.js';
import {runInNamespace, simNamespace} from '../../source/sim/services.js';
import {firewallRestartStage} from '../../source/stages/firewall-restart.js';
import {StageError, type StageStates, type StageContext} from '../../source/stages/types.js';
import {statesInMemory} from '../../source/stages/state.js';
import {createTuiPrompt, type PromptRequest} from '../../source/ui/tui-prompt.js';
import {killSession, tmux} from '../kit/tmux.js';

const cli = path.resolve('dist/cli.js');
const ip = '/usr/sbin/ip';

test('the TUI counts a timed question down and answers no when the time is up', async () => {
	const shown: Array<PromptRequest | undefined> = [];
	const tui = createTuiPrompt((request) => shown.push(request));
	const started = Date.now();
	const answer = await promptFrom(tui.ask).confirm('Keep the new firewall?', {timeoutSeconds: 1});
	assert.equal(answer, false);
	assert.ok(Date.now() - started >= 900, 'answered before the time was up');
	const asked = shown[0];
	assert.equal(asked?.kind, 'confirm');
	assert.ok(asked?.kind === 'confirm' && asked.deadline !== undefined && asked.deadline - started >= 900);
	assert.equal(shown.at(-1), undefined, 'the question is taken off the screen');

	const keep = promptFrom(tui.ask).confirm('Keep it?', {timeoutSeconds: 5});
	const request = shown.at(-1);
	assert.ok(request?.kind === 'confirm');
	assert.ok(tui.answer(request.id, 'confirm', true));
	assert.equal(await keep, true);
});

/** The namespace's ruleset without counters and comments (they hold dates): equal when the rules are. */
async function ruleset(namespace: string): Promise<string> {
	const saved = await runInNamespace(namespace, ['iptables-save']);
	assert.equal(saved.exitCode, 0, saved.stderr);
	return saved.stdout
		.split('\n')
		.filter((line) => !line.startsWith('#'))
		.map((line) => line.replace(/\s\[\d+:\d+\]$/, ''))
		.join('\n');
}

async function run(argv: string[], options: {env?: Record<string, string>} = {}) {
	const [command, ...args] = argv;
	const result = await execa(command!, args, {reject: false, env: options.env, timeout: 300_000});
	return {exitCode: result.exitCode ?? -1, output: `${result.stdout}\n${result.stderr}`};
}

/** A TCP connection from the "internet" namespace to the host's public address and the clone's port. */
async function connect(internet: string, port: number): Promise<string> {
	const result = await execa(
		ip,
		[
			'netns',
			'exec',
			internet,
			'socat',
			'-t',
			'2',
			'-T',
			'3',
			'-',
			`TCP:${simNetwork.externalAddress}:${port},connect-timeout=3`,
		],
		{reject: false, input: '', timeout: 10_000},
	);
	return String(result.stdout).trim();
}

const marked = (text: string) => text.includes('farmclone:gallifrey-dev');

/**
 * Real Shorewall in the simulated host's namespace. Two more namespaces
 * stand for the clone (10.10.60.6, on the farm's bridge, with a listener on
 * port 22) and the internet (on the far end of the host's external
 * interface). Not kept: the restart rolls back and the ruleset is the one from
 * before, with a "no" and with farmclone killed by SIGKILL; kept: the DNAT
 * forwards a connection, and stays past the deadline.
 */
test('dead-man firewall restart, for real in a namespace', {timeout: 600_000}, async (t) => {
	const work = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-firewall-'));
	const farm = await createSimFarm({root: path.join(work, 'farm'), sourceSize: 32 * 1024 ** 2});
	const namespace = await simNamespace(farm.root);
	const suffix = randomBytes(3).toString('hex');
	const clone = `fctest-vm-${suffix}`;
	const internet = `fctest-net-${suffix}`;
	const session = `farmclone-fw-${process.pid}`;
	const env = {
		FARMCLONE_CONFIG_DIR: path.join(work, 'config'),
		FARMCLONE_STATE_DIR: path.join(work, 'state'),
		NO_COLOR: '1',
	};
	const stateDir = path.join(env.FARMCLONE_STATE_DIR, farm.settings.name);
	const watchdogs: Array<{pid: number; start?: number}> = [];
	t.after(async () => {
		await killSession(session);
		for (const watchdog of watchdogs) {
			if (await isSameProcessAlive(watchdog.pid, watchdog.start)) process.kill(watchdog.pid, 'SIGKILL');
		}

		for (const name of [clone, internet]) {
			await execa(ip, ['netns', 'pids', name], {reject: false}).then(async ({stdout}) => {
				for (const pid of String(stdout).split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
			});
			await execa(ip, ['netns', 'delete', name], {reject: false});
			await fs.rm(path.join('/etc/netns', name), {recursive: true, force: true});
		}

		await farm.stop();
		await fs.rm(work, {recursive: true, force: true});
	});

	const settings = {...farm.settings, firewallTimeout: 10};
	new SettingsStore(env.FARMCLONE_CONFIG_DIR).save(settings);
	const rulesPath = path.join(settings.shorewallDir, 'rules');
	const paramsPath = path.join(settings.shorewallDir, 'params');
	const status = await runInNamespace(namespace, ['shorewall', 'status']);
	assert.match(status.stdout, /Shorewall is running/, 'the sim starts its firewall with the services');

	// The clone: a veth end on the farm's bridge, 10.10.60.6, something answering on port 22.
	const sh = async (...args: string[]) => {
		const result = await execa(ip, args, {reject: false});
		assert.equal(result.exitCode, 0, `ip ${args.join(' ')}: ${result.stderr}`);
	};

	await sh('netns', 'add', clone);
	await sh('-n', namespace, 'link', 'add', `vm${suffix}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', clone);
	await sh('-n', namespace, 'link', 'set', `vm${suffix}`, 'master', simNetwork.bridge, 'up');
	await sh('-n', clone, 'address', 'add', `${settings.ip}/24`, 'dev', 'eth0');
	await sh('-n', clone, 'link', 'set', 'eth0', 'up');
	await sh('-n', clone, 'link', 'set', 'lo', 'up');
	await sh('-n', clone, 'route', 'add', 'default', 'via', simNetwork.bridgeAddress);
	const listener = execa(
		ip,
		['netns', 'exec', clone, 'socat', `TCP-LISTEN:22,bind=${settings.ip},reuseaddr,fork`, 'EXEC:echo clone-sshd'],
		{reject: false},
	);
	listener.catch(() => undefined);
	// The internet: the far end of the host's external interface, moved into a namespace of its own.
	await sh('netns', 'add', internet);
	await sh('-n', namespace, 'link', 'set', `${simNetwork.external}-peer`, 'netns', internet);
	await sh('-n', internet, 'address', 'add', '192.0.2.20/24', 'dev', `${simNetwork.external}-peer`);
	await sh('-n', internet, 'link', 'set', `${simNetwork.external}-peer`, 'up');
	await sh('-n', internet, 'link', 'set', 'lo', 'up');
	// Debian's shorewall.conf keeps the kernel's forwarding setting: a farm host forwards.
	assert.equal((await runInNamespace(namespace, ['sysctl', '-w', 'net.ipv4.ip_forward=1'])).exitCode, 0);
	await waitFor(async () => (await runInNamespace(clone, ['ss', '-ltn'])).stdout.includes(':22 '), 5000);

	const original = await ruleset(namespace);
	assert.equal(await connect(internet, settings.sshPort), '', 'the original firewall forwards nothing on 22006');

	await t.test('headless, without --restart-firewall: stops before the restart, naming the flag', async () => {
		const result = await run([process.execPath, cli, 'run', settings.name, '--yes', '--confirm', settings.name], {
			env,
		});
		assert.equal(result.exitCode, 1, result.output);
		assert.match(result.output, /stopping before firewall-restart: .*--restart-firewall/);
		assert.doesNotMatch(result.output, /firewall-restart: started/);
		assert.ok(marked(await fs.readFile(rulesPath, 'utf8')), 'the firewall-rule stage added its rule');
		assert.equal(await ruleset(namespace), original);
	});

	await t.test('answered no: the previous files and firewall are back at once', async () => {
		const {states, saveState} = statesInMemory();
		const dir = path.join(work, 'stage-state');
		await fs.mkdir(dir, {recursive: true});
		const asked: Array<number | undefined> = [];
		const context: StageContext = {
			settings,
			host: new Host({commandPath: settings.commandPath, backupDir: path.join(dir, 'backups')}),
			states,
			saveState,
			updateSettings: async () => undefined,
			stateDir: dir,
			log: () => undefined,
			progress: () => undefined,
			prompt: {
				confirm: async (_message, options) => {
					asked.push(options?.timeoutSeconds);
					// The new firewall is running while the question is asked.
					assert.notEqual(await ruleset(namespace), original);
					return false;
				},
				choose: async (_message, choices) => choices[0]!.value,
				typed: async () => false,
			},
			signal: new AbortController().signal,
		};
		const plan = await firewallRestartStage.plan(context);
		assert.match(plan.notes.join('\n'), /shorewall restore farmclone-gallifrey-dev.*never runs shorewall clear/);
		assert.deepEqual(
			plan.commands.map((argv) => argv[1]),
			['check', 'save', 'restart'],
		);
		await assert.rejects(firewallRestartStage.apply(context), (error: unknown) => {
			assert.ok(error instanceof StageError);
			assert.match(error.message, /not kept: the previous rules, params and firewall are back/);
			return true;
		});
		watchdogs.push({pid: Number(states['firewall-restart']?.['watchdogPid'])});
		assert.ok(asked[0] !== undefined && asked[0] > 0 && asked[0] <= 10);
		assert.equal(states['firewall-restart']?.['outcome'], 'rolled-back');
		assert.equal(await ruleset(namespace), original);
		assert.ok(!marked(await fs.readFile(rulesPath, 'utf8')), 'the rule is taken out of rules again');
		assert.ok(!marked(await fs.readFile(paramsPath, 'utf8')), 'and the param out of params');
		const check = await firewallRestartStage.check(context);
		assert.equal(check.status, 'pending');
		assert.match(check.detail, /the last restart was rolled back at/);
	});

	await t.test('farmclone killed with SIGKILL during the countdown: the watchdog rolls back', async () => {
		const script = path.join(work, 'tui.sh');
		const words = ['env', ...Object.entries(env).map(([key, value]) => `${key}=${value}`), 'CI=false'];
		await fs.writeFile(
			script,
			`#!/bin/sh\n${[...words, 'TERM=xterm-256color', process.execPath, cli, 'run', settings.name].map((word) => `'${word}'`).join(' ')}\nsleep 600\n`,
			{mode: 0o755},
		);
		await tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', script);
		let typed = false;
		let screen = '';
		const journalStates = async () =>
			(
				JSON.parse(await fs.readFile(path.join(stateDir, 'journal.json'), 'utf8').catch(() => '{}')) as {
					states?: StageStates;
				}
			).states ?? {};
		const deadline = Date.now() + 120_000;
		for (;;) {
			assert.ok(Date.now() < deadline, `no countdown in time; screen:\n${screen}`);
			const states = await journalStates();
			screen = await tmux('capture-pane', '-p', '-t', session);
			if (/\d+ s left · then the previous firewall comes back/.test(screen) && states['firewall-restart']?.['deadline'])
				break;
			if (/Type the farm's name/.test(screen) && !typed) {
				typed = true;
				await tmux('send-keys', '-t', session, '-l', settings.name);
				await tmux('send-keys', '-t', session, 'Enter');
			} else if (/Enter run/.test(screen) && !/Type the farm's name/.test(screen)) {
				await tmux('send-keys', '-t', session, 'Enter');
			}

			await new Promise((resolve) => setTimeout(resolve, 300));
		}

		assert.match(screen, /From a NEW ssh session to this host, run:/);
		// The command as this session would run it (its settings and state directories first), over as many lines as it takes.
		assert.match(screen.replaceAll(/\s*\n\s*/g, ' '), /FARMCLONE_STATE_DIR=\S+ \S+ confirm gallifrey-dev\b/);
		assert.notEqual(await ruleset(namespace), original, 'the new firewall runs during the countdown');
		const states = await journalStates();
		const watchdog = {
			pid: Number(states['firewall-restart']?.['watchdogPid']),
			start: Number(states['firewall-restart']?.['watchdogStart']),
		};
		watchdogs.push(watchdog);
		const lock = JSON.parse(await fs.readFile(path.join(stateDir, 'lock'), 'utf8')) as {pid: number};
		process.kill(lock.pid, 'SIGKILL');
		await waitFor(async () => !(await isSameProcessAlive(lock.pid, undefined)), 5000);
		assert.ok(await isSameProcessAlive(watchdog.pid, watchdog.start), 'the watchdog outlives farmclone');

		const resultFile = path.join(stateDir, 'firewall.result.json');
		assert.ok(
			await waitFor(
				async () =>
					fs.access(resultFile).then(
						() => true,
						() => false,
					),
				40_000,
				250,
			),
		);
		const result = JSON.parse(await fs.readFile(resultFile, 'utf8')) as WatchdogResult;
		assert.equal(result.outcome, 'rolled-back', result.detail);
		assert.match(result.detail, /not confirmed before the deadline/);
		assert.equal(await ruleset(namespace), original);
		assert.ok(!marked(await fs.readFile(rulesPath, 'utf8')));
	});

	await t.test('resumed with --restart-firewall: shows the rollback, adds the rule again, keeps it', async () => {
		const result = await run(
			[process.execPath, cli, 'run', settings.name, '--yes', '--confirm', settings.name, '--restart-firewall'],
			{env},
		);
		assert.equal(result.exitCode, 0, result.output);
		assert.match(result.output, /firewall-restart: check: pending \(the last restart was rolled back at /);
		assert.match(result.output, /firewall-rule: added: DNAT/);
		assert.ok(marked(await fs.readFile(rulesPath, 'utf8')));
		const journal = JSON.parse(await fs.readFile(path.join(stateDir, 'journal.json'), 'utf8')) as {states: StageStates};
		assert.equal(journal.states['firewall-restart']?.['outcome'], 'confirmed');
		watchdogs.push({pid: Number(journal.states['firewall-restart']?.['watchdogPid'])});

		const kept = await ruleset(namespace);
		assert.notEqual(kept, original);
		assert.match(kept, /--dport 22006 .*DNAT --to-destination 10\.10\.60\.6:22/);
		assert.equal(await connect(internet, settings.sshPort), 'clone-sshd', 'the DNAT forwards to the clone');
		// Past the deadline the watchdog has stood down: the new firewall stays.
		await new Promise((resolve) => setTimeout(resolve, (settings.firewallTimeout + 3) * 1000));
		assert.equal(await ruleset(namespace), kept);
		assert.equal(await connect(internet, settings.sshPort), 'clone-sshd');
	});
});
