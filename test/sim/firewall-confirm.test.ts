import assert from 'node:assert/strict';
import {randomBytes} from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {execa, type ResultPromise} from 'execa';
import {Host} from '../../source/host/host.js';
import {createSimFarm} from '../../source/sim/farm.js';
import {simNetwork, waitFor} from '../../source/sim/netns.js';
import {runInNamespace, simNamespace} from '../../source/sim/services.js';
import {SettingsStore} from '../../source/settings/store.js';
import {firewallRestartStage} from '../../source/stages/firewall-restart.js';
import {firewallRuleStage} from '../../source/stages/firewall-rule.js';
import {
	StageError,
	type FirewallWaitAnswer,
	type FirewallWaitRequest,
	type StageContext,
} from '../../source/stages/types.js';
import {statesInMemory} from '../../source/stages/state.js';

const cli = path.resolve('dist/cli.js');
const ip = '/usr/sbin/ip';
const client = '192.0.2.20';

async function ruleset(namespace: string): Promise<string> {
	const saved = await runInNamespace(namespace, ['iptables-save']);
	assert.equal(saved.exitCode, 0, saved.stderr);
	return saved.stdout
		.split('\n')
		.filter((line) => !line.startsWith('#'))
		.map((line) => line.replace(/\s\[\d+:\d+\]$/, ''))
		.join('\n');
}

/**
 * A real sshd (its own config, host key and authorized key) in the simulated
 * host's namespace, whose Shorewall farmclone restarts, and a client
 * namespace on the far end of its external interface that reaches it with a
 * real ssh. farmclone confirm runs through those connections.
 */
test(
	'farmclone confirm: only a connection opened after the restart keeps the firewall',
	{timeout: 900_000},
	async (t) => {
		if (process.getuid?.() !== 0) {
			t.skip('needs root: network namespaces, sshd and Shorewall');
			return;
		}

		const work = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-confirm-'));
		const farm = await createSimFarm({root: path.join(work, 'farm'), sourceSize: 32 * 1024 ** 2});
		const namespace = await simNamespace(farm.root);
		const outside = `fctest-cli-${randomBytes(3).toString('hex')}`;
		const env = {FARMCLONE_CONFIG_DIR: path.join(work, 'config'), FARMCLONE_STATE_DIR: path.join(work, 'state')};
		const stateDir = path.join(env.FARMCLONE_STATE_DIR, farm.settings.name);
		const children: ResultPromise[] = [];
		t.after(async () => {
			for (const child of children) child.kill('SIGKILL');
			const pidFile = await fs.readFile(path.join(work, 'sshd.pid'), 'utf8').catch(() => '');
			// The sshd and the namespace's processes may be gone already.
			const kill = (pid: number) => {
				try {
					process.kill(pid, 'SIGKILL');
				} catch {}
			};

			if (Number(pidFile) > 0) kill(Number(pidFile));
			const {stdout} = await execa(ip, ['netns', 'pids', outside], {reject: false});
			for (const pid of String(stdout).split('\n').filter(Boolean)) kill(Number(pid));
			await execa(ip, ['netns', 'delete', outside], {reject: false});
			await farm.stop();
			await fs.rm(work, {recursive: true, force: true});
		});

		const settings = {...farm.settings, firewallTimeout: 20};
		new SettingsStore(env.FARMCLONE_CONFIG_DIR).save(settings);
		await fs.mkdir(stateDir, {recursive: true});
		const sh = async (...args: string[]) => {
			const result = await execa(ip, args, {reject: false});
			assert.equal(result.exitCode, 0, `ip ${args.join(' ')}: ${result.stderr}`);
		};

		await sh('netns', 'add', outside);
		await sh('-n', namespace, 'link', 'set', `${simNetwork.external}-peer`, 'netns', outside);
		await sh('-n', outside, 'address', 'add', `${client}/24`, 'dev', `${simNetwork.external}-peer`);
		await sh('-n', outside, 'link', 'set', `${simNetwork.external}-peer`, 'up');
		await sh('-n', outside, 'link', 'set', 'lo', 'up');

		// sshd of the test's own: keys, config and pid file in the work dir, listening on the host's public address only.
		const hostKey = path.join(work, 'ssh_host_ed25519_key');
		const userKey = path.join(work, 'id_ed25519');
		await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
		await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', userKey]);
		await fs.copyFile(`${userKey}.pub`, path.join(work, 'authorized_keys'));
		const config = [
			`ListenAddress ${simNetwork.externalAddress}`,
			'Port 22',
			`HostKey ${hostKey}`,
			`AuthorizedKeysFile ${path.join(work, 'authorized_keys')}`,
			`PidFile ${path.join(work, 'sshd.pid')}`,
			'PermitRootLogin prohibit-password',
			'PasswordAuthentication no',
			'KbdInteractiveAuthentication no',
			'UsePAM no',
			'StrictModes no',
		].join('\n');
		await fs.writeFile(path.join(work, 'sshd_config'), `${config}\n`);
		await fs.mkdir('/run/sshd', {recursive: true});
		const sshd = execa(
			ip,
			['netns', 'exec', namespace, '/usr/sbin/sshd', '-D', '-e', '-f', path.join(work, 'sshd_config')],
			{
				reject: false,
			},
		);
		children.push(sshd);
		assert.ok(
			await waitFor(
				async () =>
					(await runInNamespace(namespace, ['ss', '-ltn'])).stdout.includes(`${simNetwork.externalAddress}:22 `),
				10_000,
			),
			'sshd listens',
		);

		const remote = [
			'env',
			...Object.entries(env).map(([key, value]) => `${key}=${value}`),
			process.execPath,
			cli,
			'confirm',
			settings.name,
		].join(' ');
		const ssh = (command: string, options: {input?: string} = {}) =>
			execa(
				ip,
				[
					'netns',
					'exec',
					outside,
					'ssh',
					'-F',
					'/dev/null',
					'-i',
					userKey,
					'-o',
					'BatchMode=yes',
					'-o',
					`UserKnownHostsFile=${path.join(work, 'known_hosts')}`,
					'-o',
					'StrictHostKeyChecking=accept-new',
					'-o',
					'ConnectTimeout=5',
					`root@${simNetwork.externalAddress}`,
					command,
				],
				{reject: false, timeout: 60_000, ...options},
			);
		assert.equal((await ssh('true')).exitCode, 0, 'the client gets in before any restart');

		const rulesPath = path.join(settings.shorewallDir, 'rules');
		const goodRules = await fs.readFile(rulesPath, 'utf8');

		/** The stage with a waiting screen that runs `during` while it waits, then answers as `during` says. */
		const contextFor = (during: (request: FirewallWaitRequest) => Promise<FirewallWaitAnswer>) => {
			const {states, saveState} = statesInMemory();
			const context: StageContext = {
				settings,
				host: new Host({commandPath: settings.commandPath, backupDir: path.join(stateDir, 'backups')}),
				states,
				saveState,
				updateSettings: async () => undefined,
				stateDir,
				log: () => undefined,
				progress: () => undefined,
				prompt: {
					confirm: async () => true,
					choose: async (_message, choices) => choices[0]!.value,
					typed: async () => false,
					firewallWait: during,
				},
				signal: new AbortController().signal,
			};
			return {context, states};
		};

		await t.test('(c) and (a): an older connection is refused, a new one confirms, the firewall is kept', async () => {
			// (c): a connection opened before the restart; it runs farmclone confirm once told to.
			const old = ssh(`read go; ${remote}`, {input: undefined});
			children.push(old);
			await new Promise((resolve) => setTimeout(resolve, 0));
			let refusal = '';
			let confirmation = '';
			const {context, states} = contextFor(async (request) => {
				old.stdin?.write('go\n');
				old.stdin?.end();
				const oldResult = await old;
				refusal = `${String(oldResult.stdout)}${String(oldResult.stderr)}`;
				assert.equal(oldResult.exitCode, 1, refusal);
				const fresh = await ssh(remote);
				confirmation = `${String(fresh.stdout)}${String(fresh.stderr)}`;
				assert.equal(fresh.exitCode, 0, confirmation);
				await request.confirmed;
				return 'confirmed';
			});
			// The sim's own rules, unchanged, restarted: good rules.
			await firewallRestartStage.apply(context);
			assert.match(
				refusal,
				/refused: this SSH connection \(from 192\.0\.2\.20, sshd pid \d+\) started .* before the firewall restart returned, so it proves nothing/,
			);
			assert.match(confirmation, /confirmed from 192\.0\.2\.20 at .*the new firewall is kept/);
			assert.equal(states['firewall-restart']?.['outcome'], 'confirmed');
			assert.match(String(states['firewall-restart']?.['proof']), /confirmed from 192\.0\.2\.20 at /);
			assert.equal((await ssh('true')).exitCode, 0, 'the kept firewall lets new connections in');
		});

		await t.test('(b): rules that drop NEW ssh: the old session cannot keep them, the watchdog restores', async () => {
			const before = await ruleset(namespace);
			await fs.writeFile(rulesPath, goodRules.replace('SSH(ACCEPT)\tnet\t\t$FW', 'SSH(DROP)\tnet\t\t$FW'));
			let tried = '';
			const {context, states} = contextFor(async () => {
				// A new connection cannot get in to confirm.
				const fresh = await ssh(remote);
				tried = `${fresh.exitCode} ${String(fresh.stderr)}`;
				assert.notEqual(fresh.exitCode, 0, 'a new connection got in through rules that drop it');
				// The old session's plain answer: wait; it is no proof.
				return 'expired';
			});
			await assert.rejects(firewallRestartStage.apply(context), StageError);
			assert.match(tried, /^255 /, tried);
			assert.equal(states['firewall-restart']?.['outcome'], 'rolled-back');
			assert.equal(await ruleset(namespace), before, 'iptables-save before == after');
			await fs.writeFile(rulesPath, goodRules);
			assert.equal((await ssh('true')).exitCode, 0, 'new connections get in again');
		});

		await t.test('(d): the firewall-rule undo restarts with the same watchdog; bad rules are rolled back', async () => {
			const {context, states} = contextFor(async () => {
				const fresh = await ssh(remote);
				assert.notEqual(fresh.exitCode, 0, 'a new connection got in through rules that drop it');
				return 'expired';
			});
			await firewallRuleStage.apply(context);
			const restarted = await runInNamespace(namespace, ['shorewall', 'restart', settings.shorewallDir]);
			assert.equal(restarted.exitCode, 0, restarted.stderr);
			states['firewall-restart'] = {...states['firewall-restart'], watchdogPid: 1};
			const withRule = await ruleset(namespace);
			assert.match(withRule, /DNAT --to-destination 10\.10\.60\.6:22/);
			// Bad rules outside farmclone's lines: the undo's restart would lock new connections out.
			const bad = (await fs.readFile(rulesPath, 'utf8')).replace('SSH(ACCEPT)\tnet\t\t$FW', 'SSH(DROP)\tnet\t\t$FW');
			await fs.writeFile(rulesPath, bad);
			await assert.rejects(firewallRuleStage.undo(context), StageError);
			assert.equal((states['firewall-rule']?.['undo'] as {outcome?: string} | undefined)?.outcome, 'rolled-back');
			assert.equal(await ruleset(namespace), withRule, 'iptables-save before == after');
			assert.equal(await fs.readFile(rulesPath, 'utf8'), bad, 'the rules file is back as it was before the undo');
		});
	},
);
