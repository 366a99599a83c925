import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import type {FarmSettings} from '../../source/settings/schema.js';
import {createSimFarm} from '../../source/sim/farm.js';
import {runInNamespace, simNamespace} from '../../source/sim/services.js';
import {dnsRecordStage} from '../../source/stages/dns-record.js';
import {firewallRestartStage} from '../../source/stages/firewall-restart.js';
import {reloadServicesStage} from '../../source/stages/reload-services.js';
import {reverseProxyStage} from '../../source/stages/reverse-proxy.js';
import {refuses, stageContext} from '../kit/stage.js';

const contextFor = (settings: FarmSettings, stateDir: string) => stageContext(settings, stateDir).context;

/**
 * The real checkers (named-checkzone, dhcpd -t, nginx -t, shorewall check)
 * against a simulated farm; the reload and restart commands are recording
 * wrappers around the sim's, so the test sees whether a reload was ever
 * attempted. A broken file stops each stage with the checker's words and no
 * reload; the same stages with the files mended do reload (the wrappers are
 * really in the path).
 */
test('a broken configuration never reaches a reload', {timeout: 300_000}, async (t) => {
	const work = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-reload-checks-'));
	const farm = await createSimFarm({root: path.join(work, 'farm'), sourceSize: 16 * 1024 ** 2, startSource: false});
	t.after(async () => {
		await farm.stop();
		await fs.rm(work, {recursive: true, force: true});
	});
	const simBin = farm.settings.commandPath[0]!;
	const recorders = path.join(work, 'recorders');
	await fs.mkdir(recorders);
	const log = path.join(work, 'reloads.log');
	const recorder = async (name: string, exec: string) => {
		const file = path.join(recorders, name);
		await fs.writeFile(file, `#!/bin/sh\necho "${name} $*" >> '${log}'\n${exec}\n`, {mode: 0o755});
		return file;
	};

	const settings: FarmSettings = {
		...farm.settings,
		commandPath: [recorders, ...farm.settings.commandPath],
		mac: '52:54:12:34:56:78',
		rndc: [await recorder('rndc', `exec '${simBin}/rndc' "$@"`), 'reload'],
		dhcpRestart: [await recorder('dhcp-restart', `exec '${simBin}/systemctl' restart isc-dhcp-server`)],
		nginxReload: [await recorder('nginx-reload', `exec '${simBin}/systemctl' reload nginx`)],
	};
	// The checkers are recorded too, to see they run before the reloads.
	for (const name of ['shorewall', 'dhcpd', 'nginx']) await recorder(name, `exec '${simBin}/${name}' "$@"`);
	const calls = async () =>
		(await fs.readFile(log, 'utf8').catch(() => ''))
			.split('\n')
			.map((line) => line.trim())
			.filter(Boolean);
	const checking = /^(dhcpd -t|nginx -t|shorewall (check|status))\b/;
	const reloads = async () => (await calls()).filter((line) => !checking.test(line));
	const context = contextFor(settings, path.join(work, 'state'));
	await fs.mkdir(context.stateDir, {recursive: true});
	const broken = async (file: string, line: string, body: () => Promise<void>) => {
		const before = await fs.readFile(file, 'utf8');
		await fs.writeFile(file, `${before}${line}\n`);
		try {
			await body();
			assert.equal(await fs.readFile(file, 'utf8'), `${before}${line}\n`, 'the broken file is left as it was');
		} finally {
			await fs.writeFile(file, before);
			await fs.rm(log, {force: true});
		}
	};

	await dnsRecordStage.apply(context);

	await t.test('zone file: named-checkzone refuses, rndc never runs', async () => {
		await broken(settings.zoneFile, 'broken\tIN\tA\t10.10.60.300', async () => {
			await refuses(reloadServicesStage.apply(context), /db\.farm does not load: [\s\S]*10\.10\.60\.300/);
			assert.deepEqual(await reloads(), []);
		});
	});

	await t.test('rndc exits 0 but the zone is not loaded: the served serial gives it away', async () => {
		const real = settings.rndc;
		settings.rndc = [await recorder('rndc-that-loads-nothing', 'exit 0')];
		try {
			await refuses(
				reloadServicesStage.apply(context),
				/after rndc reload: the DNS server serves serial \d+, the file has \d+/,
			);
			assert.deepEqual(await reloads(), ['rndc-that-loads-nothing farm'], 'and the DHCP server is not restarted');
		} finally {
			settings.rndc = real;
			await fs.rm(log, {force: true});
		}
	});

	await t.test('dhcpd.conf: dhcpd -t refuses, the DHCP server is not restarted', async () => {
		await broken(settings.dhcpdConf, 'host broken {', async () => {
			await refuses(reloadServicesStage.apply(context), /dhcpd -t refuses .*dhcpd\.conf/);
			assert.ok(!(await reloads()).some((line) => line.startsWith('dhcp-restart')));
		});
	});

	await t.test('nginx.conf: nginx -t refuses, the site is taken back, nginx is not reloaded', async () => {
		await broken(settings.nginxConf, 'no_such_directive on;', async () => {
			await refuses(reverseProxyStage.apply(context), /nginx -t refused the new site[\s\S]*no_such_directive/);
			assert.deepEqual(await reloads(), []);
			await assert.rejects(fs.access(path.join(settings.sitesAvailable, settings.serverName)));
			await assert.rejects(fs.lstat(path.join(settings.sitesEnabled, settings.serverName)));
		});
	});

	await t.test('Shorewall rules: shorewall check refuses, nothing is saved or restarted', async () => {
		const namespace = await simNamespace(farm.root);
		const rules = async () =>
			// Without its comment lines (they carry the time) and packet counters (traffic the test does not make).
			(await runInNamespace(namespace, ['iptables-save', '-t', 'nat'])).stdout
				.replaceAll(/^#.*$\n?/gm, '')
				.replaceAll(/\[\d+:\d+\]/g, '[0:0]');
		const before = await rules();
		await broken(
			path.join(settings.shorewallDir, 'rules'),
			'DNAT\tnet\tloc:$NOT_SET_ANYWHERE:22\ttcp\t22999',
			async () => {
				await refuses(firewallRestartStage.apply(context), /shorewall check refuses[\s\S]*NOT_SET_ANYWHERE/);
				assert.deepEqual(await reloads(), []);
				assert.ok((await calls()).some((line) => line.startsWith('shorewall check')));
				assert.equal(context.states['firewall-restart']?.['watchdogPid'], undefined, 'no watchdog was started');
			},
		);
		assert.equal(await rules(), before);
	});

	await t.test('the same stages with the files mended do reload', async () => {
		await reloadServicesStage.apply(context);
		await reloadServicesStage.verify(context);
		await reverseProxyStage.apply(context);
		const all = await calls();
		const at = (pattern: RegExp) => all.findIndex((line) => pattern.test(line));
		assert.ok(at(/^rndc reload farm$/) >= 0, all.join('\n'));
		assert.ok(at(/^dhcpd -t -cf /) >= 0 && at(/^dhcpd -t -cf /) < at(/^dhcp-restart$/), all.join('\n'));
		assert.ok(at(/^nginx -t -c /) >= 0 && at(/^nginx -t -c /) < at(/^nginx-reload$/), all.join('\n'));
	});
});
