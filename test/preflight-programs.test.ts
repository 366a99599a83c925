import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {preflight} from '../source/engine/preflight.js';
import {Host} from '../source/host/host.js';
import {defaultSettings} from '../source/settings/schema.js';

// Found on the real farm host (test/host/): Debian's ganeti pulls libcurl, not curl, and the reverse
// proxy stage, the last one, failed with "curl is not installed" after the firewall restart.
test('the preflight names curl, which the reverse proxy stage needs, when it is not installed', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-programs-'));
	t.after(async () => fs.rm(dir, {recursive: true, force: true}));
	const bin = path.join(dir, 'bin');
	await fs.mkdir(bin);
	await fs.writeFile(path.join(bin, 'nginx'), '#!/bin/sh\necho "nginx: configuration file test is successful" >&2\n', {
		mode: 0o755,
	});
	await fs.writeFile(path.join(dir, 'nginx.conf'), 'events {}\n');
	const settings = defaultSettings('gallifrey-dev', {
		sourceLv: 'f3e8d23f-21c0-417d-9b5e-91bb4da9b926.disk0',
		nginxConf: path.join(dir, 'nginx.conf'),
		sitesAvailable: path.join(dir, 'sites-available'),
		sitesEnabled: path.join(dir, 'sites-enabled'),
	});
	const findings = async (withCurl: boolean) => {
		if (withCurl) await fs.writeFile(path.join(bin, 'curl'), '#!/bin/sh\n', {mode: 0o755});
		const saved = process.env['PATH'];
		process.env['PATH'] = bin;
		try {
			const host = new Host({backupDir: path.join(dir, 'backups')});
			return await preflight(host, settings, {}, ['reverse-proxy']);
		} finally {
			process.env['PATH'] = saved;
		}
	};

	const without = await findings(false);
	assert.deepEqual(
		without.map((finding) => [finding.field, finding.reason]),
		[
			[
				'serverName',
				'curl is not installed (not found on PATH): apt-get install curl: the reverse proxy stage asks the site with it',
			],
		],
	);
	assert.deepEqual(await findings(true), []);
});

test('a missing checker is named with its package, not blamed on the file it would check', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-programs-'));
	t.after(async () => fs.rm(dir, {recursive: true, force: true}));
	await fs.mkdir(path.join(dir, 'bin'));
	await fs.writeFile(path.join(dir, 'db.farm'), '$TTL 3600\n');
	const settings = defaultSettings('gallifrey-dev', {
		sourceLv: 'f3e8d23f-21c0-417d-9b5e-91bb4da9b926.disk0',
		zoneFile: path.join(dir, 'db.farm'),
	});
	const saved = process.env['PATH'];
	process.env['PATH'] = path.join(dir, 'bin');
	try {
		const host = new Host({backupDir: path.join(dir, 'backups')});
		const findings = await preflight(host, settings, {}, ['dns-record']);
		// named-checkzone lives in /usr/bin, which this PATH lacks (sbin is always searched: nginx would be found).
		const zone = findings.find((finding) => finding.field === 'zoneFile' && /cannot be checked/.test(finding.reason));
		assert.match(
			zone?.reason ?? '',
			/^cannot be checked: named-checkzone is not installed \(not found on PATH\): apt-get install/,
		);
		assert.ok(!findings.some((finding) => /named-checkzone refuses it/.test(finding.reason)), JSON.stringify(findings));
	} finally {
		process.env['PATH'] = saved;
	}
});
