import assert from 'node:assert/strict';
import {createHash} from 'node:crypto';
import {createReadStream} from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {execa} from 'execa';
import {stopSimServices} from '../source/sim/services.js';

const cli = path.resolve('dist/cli.js');

async function sha256(file: string): Promise<string> {
	const hash = createHash('sha256');
	for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
	return hash.digest('hex');
}

test('farmclone demo --yes runs all 14 stages against the simulated farm', {timeout: 600_000}, async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-demo-e2e-'));
	t.after(async () => {
		await stopSimServices(dir).catch(() => undefined);
		await fs.rm(dir, {recursive: true, force: true});
	});
	const env = {...process.env, CI: 'true', FARMCLONE_CONFIG_DIR: '', FARMCLONE_STATE_DIR: ''};
	const result = await execa(process.execPath, [cli, 'demo', '--yes', '--json', '--size', '64M', '--dir', dir], {
		env,
		reject: false,
	});
	assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`);
	const events = result.stdout
		.split('\n')
		.filter((line) => line.startsWith('{'))
		.map((line) => JSON.parse(line) as {type: string; stage?: string});
	const done = events.filter((event) => event.type === 'stage-done').map((event) => event.stage);
	assert.equal(new Set(done).size, 14, `stages done: ${done.join(', ')}`);

	const journal = JSON.parse(
		await fs.readFile(path.join(dir, 'farmclone', 'state', 'gallifrey-dev', 'journal.json'), 'utf8'),
	) as {outcome: string; facts: Record<string, unknown>; stages: Record<string, {state: string}>};
	assert.equal(journal.outcome, 'done');
	assert.ok(Object.values(journal.stages).every((stage) => stage.state === 'done'));

	const adopted = journal.facts['ganeti-instance.disk'];
	assert.equal(typeof adopted, 'string');
	const source = path.join(dir, 'dev', 'all', 'f3e8d23f-21c0-417d-9b5e-91bb4da9b926.disk0');
	assert.equal(await sha256(path.join(dir, 'dev', 'all', adopted as string)), await sha256(source));

	await execa('named-checkzone', ['farm', path.join(dir, 'etc/bind/db.farm')]);
	await execa('dhcpd', ['-t', '-cf', path.join(dir, 'etc/dhcp/dhcpd.conf')]);
	const zone = await fs.readFile(path.join(dir, 'etc/bind/db.farm'), 'utf8');
	assert.match(zone, /gallifrey-dev\.xivo\.vm\s+(\d+\s+)?(IN\s+)?A\s+10\.10\.60\.6/);
	const link = await fs.readlink(path.join(dir, 'etc/nginx/sites-enabled/gallifrey-dev.dachary.org'));
	assert.match(link, /sites-available\/gallifrey-dev\.dachary\.org$/);
});
