import {spawn, type ChildProcess} from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {execa} from 'execa';
import type {FarmSettings} from '../../source/settings/schema.js';
import {createSimFarm} from '../../source/sim/farm.js';
import {simServiceStatus} from '../../source/sim/services.js';
import {dhcpHostStage} from '../../source/stages/dhcp-host.js';
import {dnsRecordStage} from '../../source/stages/dns-record.js';
import {reloadServicesStage} from '../../source/stages/reload-services.js';
import {refuses, stageContext as harness} from '../kit/stage.js';

/**
 * The proof that the DHCP server loaded dhcpd.conf, against the simulated
 * farm's real dhcpd: its pid file, its /proc entry, its start time. Restart
 * commands that do nothing, a stopped dhcpd, and pid files naming other
 * processes must each be caught, with words saying which.
 */

const loadedLine = /^dhcpd pid (\d+) started \d\d:\d\d:\d\d reads (.+)$/;

function loggedPids(logs: string[]): number[] {
	return logs.flatMap((line) => {
		const pid = loadedLine.exec(line)?.[1];
		return pid ? [Number(pid)] : [];
	});
}

async function runningDhcpd(root: string): Promise<number> {
	const status = await simServiceStatus(root, 'dhcpd');
	assert.ok(status.active && status.pid, `the sim's dhcpd runs:\n${status.log}`);
	return status.pid;
}

/** A process started here, killed when the test ends whatever happens. */
function startProcess(t: {after: (fn: () => void) => void}, argv: string[], argv0?: string): ChildProcess {
	const child = spawn(argv[0]!, argv.slice(1), {stdio: 'ignore', ...(argv0 ? {argv0} : {})});
	t.after(() => {
		child.kill('SIGKILL');
	});
	return child;
}

test('after a DHCP restart, the running dhcpd is proved new and reading dhcpd.conf', {timeout: 300_000}, async (t) => {
	const work = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-dhcp-loaded-'));
	const farm = await createSimFarm({root: path.join(work, 'farm'), sourceSize: 16 * 1024 ** 2, startSource: false});
	t.after(async () => {
		await farm.stop();
		await fs.rm(work, {recursive: true, force: true});
	});
	const systemctl = path.join(farm.settings.commandPath[0]!, 'systemctl');
	const settings: FarmSettings = {...farm.settings, mac: '52:54:12:34:56:78'};
	const pidFile = settings.dhcpdPidFile;
	const stateDir = path.join(work, 'state');
	await fs.mkdir(stateDir, {recursive: true});
	const {context, states, logs} = harness(settings, stateDir);
	const realRestart = settings.dhcpRestart;
	const restartDoingNothing = async (body: () => Promise<void>) => {
		settings.dhcpRestart = ['true'];
		try {
			await body();
		} finally {
			settings.dhcpRestart = realRestart;
		}
	};

	assert.equal(pidFile, path.join(farm.root, 'run', 'dhcpd.pid'), "the sim farm's settings name the sim's pid file");
	assert.equal(Number((await fs.readFile(pidFile, 'utf8')).trim()), await runningDhcpd(farm.root));
	await dnsRecordStage.apply(context);
	await dhcpHostStage.apply(context);

	await t.test('apply: the restart is proved, the logged pid is the dhcpd running now', async () => {
		const before = await runningDhcpd(farm.root);
		const check = await reloadServicesStage.check(context);
		assert.equal(check.status, 'pending', check.detail);
		const plan = await reloadServicesStage.plan(context);
		assert.ok(
			plan.notes.some((note) => note.includes(pidFile)),
			`the plan says the pid file is checked:\n${plan.notes.join('\n')}`,
		);

		await reloadServicesStage.apply(context);
		const after = await runningDhcpd(farm.root);
		assert.notEqual(after, before, 'systemctl restart started a new dhcpd');
		assert.deepEqual(loggedPids(logs), [after]);
		assert.equal(loadedLine.exec(logs.find((line) => loadedLine.test(line))!)?.[2], settings.dhcpdConf);
		await reloadServicesStage.verify(context);
		const done = await reloadServicesStage.check(context);
		assert.equal(done.status, 'done', done.detail);
		assert.match(done.detail, new RegExp(`dhcpd pid ${after} started`));
	});

	await t.test('a restart command that restarts nothing: the old dhcpd started before the restart', async () => {
		const old = await runningDhcpd(farm.root);
		await restartDoingNothing(async () => {
			await refuses(
				reloadServicesStage.apply(context),
				new RegExp(`^after true: dhcpd pid ${old} started at [\\d:.]+, before the restart \\(`),
				/did not start a new dhcpd[\s\S]*journalctl -u isc-dhcp-server/,
			);
		});
		assert.equal(await runningDhcpd(farm.root), old);
	});

	await t.test('dhcpd.conf changed after dhcpd started: check says pending, a real restart makes it done', async () => {
		const later = new Date(Date.now() + 1000);
		await fs.utimes(settings.dhcpdConf, later, later);
		const stale = await reloadServicesStage.check(context);
		assert.equal(stale.status, 'pending');
		assert.match(stale.detail, /started at [\d:.]+, before .*dhcpd\.conf last changed/);
		const noRestartYet = harness(settings, stateDir).context;
		await refuses(reloadServicesStage.verify(noRestartYet), /before .*dhcpd\.conf last changed/);

		// A crash between the restart and its record: only `dhcpRestarting` was recorded.
		const resumed = harness(settings, stateDir, {'reload-services': {dhcpRestarting: true}}).context;
		await new Promise((resolve) => setTimeout(resolve, 1100));
		await execa(systemctl, ['restart', 'isc-dhcp-server']);
		const done = await reloadServicesStage.check(resumed);
		assert.equal(done.status, 'done', done.detail);
		const fresh = harness(settings, stateDir).context;
		assert.equal((await reloadServicesStage.check(fresh)).status, 'pending', "a run that never restarted isn't done");
	});

	await t.test('dhcpd stopped: the pid file is missing, or names a dead pid', async () => {
		await execa(systemctl, ['stop', 'isc-dhcp-server']);
		try {
			await fs.rm(pidFile, {force: true});
			await restartDoingNothing(async () => {
				await refuses(
					reloadServicesStage.apply(context),
					new RegExp(`dhcpd is not running \\(pid file ${pidFile} missing\\)`),
					/journalctl -u isc-dhcp-server[\s\S]*set dhcpdPidFile/,
				);
			});
			const missing = await reloadServicesStage.check(context);
			assert.equal(missing.status, 'pending');
			assert.match(missing.detail, /dhcpd is not running/);

			const exited = startProcess(t, ['true']);
			await new Promise((resolve) => exited.once('exit', resolve));
			await fs.writeFile(pidFile, `${exited.pid}\n`);
			await restartDoingNothing(async () => {
				await refuses(
					reloadServicesStage.apply(context),
					new RegExp(`dhcpd is not running \\(pid ${exited.pid} of ${pidFile} is gone\\)`),
				);
			});
		} finally {
			await execa(systemctl, ['start', 'isc-dhcp-server']);
		}

		await reloadServicesStage.apply(context);
	});

	await t.test('a pid file naming another program, or a dhcpd reading another file, is refused', async () => {
		const sleeper = startProcess(t, ['sleep', '60']);
		await fs.writeFile(pidFile, `${sleeper.pid}\n`);
		await restartDoingNothing(async () => {
			await refuses(
				reloadServicesStage.apply(context),
				new RegExp(`pid ${sleeper.pid} of ${pidFile} is not dhcpd: it runs sleep 60`),
			);
		});

		// Named dhcpd, given no -cf: it would read dhcpd's default file, not the farm's.
		const impostor = startProcess(t, ['sleep', '60'], '/usr/sbin/dhcpd');
		await fs.writeFile(pidFile, `${impostor.pid}\n`);
		const look = await reloadServicesStage.check({...context, states: {'reload-services': {dhcpRestarting: true}}});
		assert.equal(look.status, 'pending');
		assert.equal(look.detail, `dhcpd pid ${impostor.pid} reads /etc/dhcp/dhcpd.conf, not ${settings.dhcpdConf}`);
		await execa(systemctl, ['restart', 'isc-dhcp-server']);
		assert.equal(Number((await fs.readFile(pidFile, 'utf8')).trim()), await runningDhcpd(farm.root));
	});

	await t.test("dhcp-host's undo restarts the server and proves it", async () => {
		assert.equal(states['reload-services']?.['dhcpRestarting'], true);
		const plan = await dhcpHostStage.undoPlan!(context);
		assert.deepEqual(plan.commands.at(-1), realRestart);
		assert.ok(
			plan.notes.some((note) => note.includes(pidFile)),
			plan.notes.join('\n'),
		);
		const before = await runningDhcpd(farm.root);
		logs.length = 0;
		await dhcpHostStage.undo(context);
		const after = await runningDhcpd(farm.root);
		assert.notEqual(after, before);
		assert.deepEqual(loggedPids(logs), [after]);
	});
});
