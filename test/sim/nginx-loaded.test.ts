import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {execa} from 'execa';
import {siteAnswer, siteProbe} from '../../source/host/nginx-site.js';
import {fqdn, type FarmSettings} from '../../source/settings/schema.js';
import {createSimFarm} from '../../source/sim/farm.js';
import {reverseProxyStage} from '../../source/stages/reverse-proxy.js';
import {refuses, stageContext} from '../kit/stage.js';

const contextFor = (settings: FarmSettings, stateDir: string) => stageContext(settings, stateDir).context;

/**
 * The reverse-proxy stage against the real nginx of a simulated farm: after
 * each reload it asks nginx, over HTTP inside the sim's namespace, for the
 * site's own answer, so a reload that exits 0 but leaves the old
 * configuration loaded fails the stage.
 */

function siteRequestOf(settings: FarmSettings) {
	return {
		serverName: settings.serverName,
		listen: settings.listen,
		upstream: fqdn(settings),
		logDir: settings.nginxLogDir,
		farm: settings.name,
	};
}

test('nginx, asked over HTTP after each reload, proves which site it loaded', {timeout: 300_000}, async (t) => {
	const work = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-nginx-loaded-'));
	const farm = await createSimFarm({root: path.join(work, 'farm'), sourceSize: 16 * 1024 ** 2, startSource: false});
	t.after(async () => {
		await farm.stop();
		await fs.rm(work, {recursive: true, force: true});
	});
	// A name the sim's zone already has (its VM is down): nginx -t resolves it without the DNS stages.
	const settings: FarmSettings = {...farm.settings, record: 'mondas.xivo.vm'};
	const realReload = settings.nginxReload;
	const context = contextFor(settings, path.join(work, 'state'));
	await fs.mkdir(context.stateDir, {recursive: true});
	const file = path.join(settings.sitesAvailable, settings.serverName);
	const link = path.join(settings.sitesEnabled, settings.serverName);
	const errorLog = path.join(settings.nginxLogDir, 'error.log');
	const url = `http://127.0.0.1/.farmclone-${settings.name}`;
	/** What nginx answers, asked with the sim's curl wrapper (the real curl inside the namespace), apart from the stage's code. */
	const ask = async (host = settings.serverName) => {
		const curl = path.join(farm.root, 'bin', 'curl');
		const {stdout} = await execa(curl, [
			'-q',
			'--silent',
			'--header',
			`Host: ${host}`,
			'--write-out',
			'\n%{http_code}',
			url,
		]);
		const split = stdout.lastIndexOf('\n');
		return {body: stdout.slice(0, split), status: stdout.slice(split + 1)};
	};

	await t.test('apply: the probe answers with the site, verify passes; undo: the answer is gone', async () => {
		assert.equal((await reverseProxyStage.check(context)).status, 'pending');
		const plan = await reverseProxyStage.plan(context);
		const probe = siteProbe(siteRequestOf(settings)).argv;
		assert.deepEqual(plan.commands.at(-1), probe);
		assert.equal(probe.at(-1), url);

		await reverseProxyStage.apply(context);
		const check = await reverseProxyStage.check(context);
		assert.equal(check.status, 'done', check.detail);
		await reverseProxyStage.verify(context);
		const answer = await ask();
		assert.deepEqual(answer, {body: `${siteAnswer(siteRequestOf(settings))}\n`, status: '200'});
		assert.notEqual((await ask('someone-else.example')).body, answer.body, 'only the site’s own name gets it');

		assert.deepEqual((await reverseProxyStage.undoPlan!(context)).commands.at(-1), probe);
		await reverseProxyStage.undo(context);
		await assert.rejects(fs.access(file));
		const after = await ask();
		assert.equal(after.status, '404', JSON.stringify(after));
		assert.doesNotMatch(after.body, /farmclone/);
		assert.equal((await reverseProxyStage.check(context)).status, 'pending');
	});

	await t.test('a reload that exits 0 but loads nothing fails the stage; resuming reloads again', async () => {
		settings.nginxReload = ['true'];
		try {
			await refuses(
				reverseProxyStage.apply(context),
				new RegExp(
					`true exited 0, but nginx has not loaded the site: asked ${url.replaceAll('.', '\\.')} \\(Host: ${settings.serverName.replaceAll('.', '\\.')}\\), it answered HTTP 404 `,
				),
				new RegExp(errorLog.replaceAll('.', '\\.')),
			);
			// nginx -t accepted it: it stays for the next reload, and check says it is still to do.
			assert.equal(
				await fs.readFile(file, 'utf8'),
				await fs.readFile(path.resolve(settings.sitesEnabled, await fs.readlink(link)), 'utf8'),
			);
			const check = await reverseProxyStage.check(context);
			assert.equal(check.status, 'pending');
			assert.match(check.detail, /written and enabled but nginx has not loaded it \(it answered HTTP 404/);
			await refuses(reverseProxyStage.verify(context), /nginx has not loaded the site/);
		} finally {
			settings.nginxReload = realReload;
		}

		await reverseProxyStage.apply(context);
		assert.equal((await reverseProxyStage.check(context)).status, 'done');
		assert.equal((await ask()).body, `${siteAnswer(siteRequestOf(settings))}\n`);
	});

	await t.test('a no-op reload after the site changed: the answer names the upstream still loaded', async () => {
		const loaded = siteAnswer(siteRequestOf(settings));
		const realRecord = settings.record;
		settings.record = 'skaro.xivo.vm';
		settings.nginxReload = ['true'];
		try {
			assert.notEqual(siteAnswer(siteRequestOf(settings)), loaded);
			assert.equal((await reverseProxyStage.check(context)).status, 'pending');
			await refuses(
				reverseProxyStage.apply(context),
				new RegExp(`it answered HTTP 200 "${loaded.replaceAll('.', '\\.')}", not ".*skaro`),
			);
		} finally {
			settings.record = realRecord;
			settings.nginxReload = realReload;
		}

		await reverseProxyStage.apply(context);
		assert.equal((await ask()).body, `${loaded}\n`);
	});

	await t.test('nginx cannot apply the new configuration (a port it cannot bind): the stage says so', async () => {
		const realListen = settings.listen;
		// named holds 127.0.0.1:53 in the namespace: nginx -t passes (it binds nothing), the reload cannot bind.
		settings.listen = '127.0.0.1:53';
		try {
			await refuses(
				reverseProxyStage.apply(context),
				/systemctl reload nginx exited 0, but nginx has not loaded the site: asked http:\/\/127\.0\.0\.1:53\/\S+ .*, it answered nothing \(curl: \(\d+\)/,
				/error\.log/,
			);
			assert.match(await fs.readFile(errorLog, 'utf8'), /bind\(\) to 127\.0\.0\.1:53 failed/);
		} finally {
			settings.listen = realListen;
		}

		await reverseProxyStage.apply(context);
		assert.equal((await reverseProxyStage.check(context)).status, 'done');
	});

	await t.test('an undo whose reload loads nothing fails; the undo run again reloads and proves it', async () => {
		settings.nginxReload = ['true'];
		try {
			await refuses(
				reverseProxyStage.undo(context),
				/nginx still serves the removed site: .*it answered HTTP 200 "farmclone /,
			);
		} finally {
			settings.nginxReload = realReload;
		}

		await assert.rejects(fs.access(file));
		assert.equal((await ask()).status, '200', 'still loaded');
		await reverseProxyStage.undo(context);
		assert.equal((await ask()).status, '404');
		assert.deepEqual(await fs.readdir(settings.sitesEnabled), ['default']);
	});
});
