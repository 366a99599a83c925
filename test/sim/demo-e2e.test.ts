import assert from 'node:assert/strict';
import {createHash} from 'node:crypto';
import {createReadStream} from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {execa} from 'execa';
import {Host} from '../../source/host/host.js';
import {readPartitionTable} from '../../source/host/image.js';
import {stopSimServices} from '../../source/sim/services.js';

const cli = path.resolve('dist/cli.js');
const sbin = {PATH: `${process.env['PATH'] ?? '/usr/bin:/bin'}:/usr/local/sbin:/usr/sbin:/sbin`};

/** SHA-256 of bytes [start, end) of a file, to its end when `end` is left out. */
async function sha256(file: string, start = 0, end?: number): Promise<string> {
	const hash = createHash('sha256');
	const range = end === undefined ? {start} : {start, end: end - 1};
	for await (const chunk of createReadStream(file, range)) hash.update(chunk as Buffer);
	return hash.digest('hex');
}

test('farmclone demo --yes runs all 15 stages against the simulated farm', {timeout: 600_000}, async (t) => {
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
	assert.equal(new Set(done).size, 15, `stages done: ${done.join(', ')}`);
	// What it made lists the backup of every host file it edited: zone, dhcpd.conf, Shorewall's params and rules.
	const runEnd = events.find((event) => event.type === 'run-end') as {made?: {backups: string[]}} | undefined;
	const backedUp = (runEnd?.made?.backups ?? []).map((file) => path.basename(file));
	for (const name of ['db.farm', 'dhcpd.conf', 'params', 'rules']) {
		assert.ok(
			backedUp.some((file) => file.startsWith(name)),
			`a backup of ${name} in ${backedUp.join(', ')}`,
		);
	}

	const journal = JSON.parse(
		await fs.readFile(path.join(dir, 'farmclone', 'state', 'gallifrey-dev', 'journal.json'), 'utf8'),
	) as {
		outcome: string;
		states: Record<string, Record<string, unknown> | undefined>;
		stages: Record<string, {state: string}>;
	};
	assert.equal(journal.outcome, 'done');
	assert.ok(Object.values(journal.stages).every((stage) => stage.state === 'done'));

	const adopted = journal.states['ganeti-instance']?.['disk'];
	assert.equal(typeof adopted, 'string');
	const source = path.join(dir, 'dev', 'all', 'f3e8d23f-21c0-417d-9b5e-91bb4da9b926.disk0');
	const clone = path.join(dir, 'dev', 'all', adopted as string);
	// The copy stage verified the whole clone byte for byte; the identity stage then changed its root
	// filesystem only. Everything outside that partition is still the source's, byte for byte.
	const partition = (await readPartitionTable(new Host({backupDir: dir}), source))?.partitions[0];
	assert.ok(partition, 'the source disk has a root partition');
	const end = partition.offset + partition.size;
	assert.equal(await sha256(clone, 0, partition.offset), await sha256(source, 0, partition.offset));
	assert.equal(await sha256(clone, end), await sha256(source, end));
	assert.notEqual(await sha256(clone, partition.offset, end), await sha256(source, partition.offset, end));
	const guest = async (file: string, disk = clone) =>
		(
			await execa('debugfs', ['-R', `cat ${file}`, `${disk}?offset=${partition.offset}`], {
				env: sbin,
				stripFinalNewline: false,
			})
		).stdout;
	assert.equal(await guest('/etc/hostname'), 'gallifrey-dev\n');
	assert.equal(await guest('/etc/hostname', source), 'gallifrey\n');
	assert.match(await guest('/etc/packaging-farm/packaging-farm.conf'), /^GIT_REVISION=master$/m);
	assert.equal(await guest('/etc/machine-id'), '');
	const loops = await execa('losetup', ['-J', '-l', '-O', 'NAME,BACK-FILE'], {env: sbin});
	assert.ok(!loops.stdout.includes(dir), `no loop device left: ${loops.stdout}`);
	assert.ok(!(await fs.readFile('/proc/self/mountinfo', 'utf8')).includes(dir), 'nothing left mounted');

	await execa('named-checkzone', ['farm', path.join(dir, 'etc/bind/db.farm')]);
	await execa('dhcpd', ['-t', '-cf', path.join(dir, 'etc/dhcp/dhcpd.conf')]);
	const zone = await fs.readFile(path.join(dir, 'etc/bind/db.farm'), 'utf8');
	assert.match(zone, /gallifrey-dev\.xivo\.vm\s+(\d+\s+)?(IN\s+)?A\s+10\.10\.60\.6/);
	const link = await fs.readlink(path.join(dir, 'etc/nginx/sites-enabled/gallifrey-dev.dachary.org'));
	assert.match(link, /sites-available\/gallifrey-dev\.dachary\.org$/);
});
