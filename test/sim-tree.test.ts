import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test, type TestContext} from 'node:test';
import {execa} from 'execa';
import {chunkKind, fileSha256, simDiskChunkSize, writeSimDisk, type ChunkKind} from '../source/sim/disk.js';
import {buildSimTree, simFarm} from '../source/sim/tree.js';

const MiB = 1024 * 1024;
const sbinPath = `${process.env['PATH'] ?? '/usr/bin:/bin'}:/usr/local/sbin:/usr/sbin:/sbin`;

async function temporaryDirectory(t: TestContext, prefix: string): Promise<string> {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	return dir;
}

async function tree(t: TestContext, sourceSize = 8 * MiB) {
	const root = path.join(await temporaryDirectory(t, 'farmclone-sim-tree-'), 'farm');
	return buildSimTree({root, sourceSize});
}

function run(command: string, args: string[], env: Record<string, string> = {}) {
	return execa(command, args, {reject: false, env: {PATH: sbinPath, LC_ALL: 'C', ...env}});
}

test('the tree passes the real checkers: named-checkzone, named-checkconf, dhcpd -t, nginx -t', async (t) => {
	const {settings} = await tree(t);
	const zone = await run('named-checkzone', [settings.zone!, settings.zoneFile!]);
	assert.equal(zone.exitCode, 0, zone.stdout + zone.stderr);
	assert.match(zone.stdout, /loaded serial \d{10}/);
	const namedConf = path.join(path.dirname(settings.zoneFile!), 'named.conf');
	const conf = await run('named-checkconf', ['-z', namedConf]);
	assert.equal(conf.exitCode, 0, conf.stdout + conf.stderr);
	const dhcpd = await run('dhcpd', ['-t', '-cf', settings.dhcpdConf!]);
	assert.equal(dhcpd.exitCode, 0, dhcpd.stderr);
	if (process.getuid?.() !== 0) return t.skip('nginx -t needs root');
	const nginx = await run('nginx', ['-t', '-c', settings.nginxConf!]);
	assert.equal(nginx.exitCode, 0, nginx.stderr);
	assert.match(nginx.stderr, /test is successful/);
});

test('the zone has the farm but not the clone, and named.conf and rndc.conf share one key', async (t) => {
	const {settings} = await tree(t);
	const zone = await fs.readFile(settings.zoneFile!, 'utf8');
	assert.match(zone, /^gallifrey\.xivo\.vm\tIN\tA\t10\.10\.60\.5$/m);
	assert.doesNotMatch(zone, /\b10\.10\.60\.6\b/, 'the clone address is free');
	assert.doesNotMatch(zone, new RegExp(`^${settings.record!.replaceAll('.', '\\.')}\\b`, 'm'));
	assert.match(zone, /SOA[^(]*\(\s*\d{10}\s*; serial/);
	const bind = path.dirname(settings.zoneFile!);
	const secret = (text: string) => /secret "([^"]+)"/.exec(text)?.[1];
	const key = secret(await fs.readFile(path.join(bind, 'rndc.key'), 'utf8'));
	assert.ok(key);
	assert.equal(secret(await fs.readFile(path.join(bind, 'rndc.conf'), 'utf8')), key);
	const named = await fs.readFile(path.join(bind, 'named.conf'), 'utf8');
	assert.match(named, /listen-on port 53 \{ 127\.0\.0\.1; \};/);
	assert.match(named, /inet 127\.0\.0\.1 port 953 allow \{ 127\.0\.0\.1; \} keys \{ "rndc-key"; \};/);
	assert.deepEqual(settings.rndc, ['rndc', '-c', path.join(bind, 'rndc.conf'), 'reload']);
	const root = path.dirname(path.dirname(bind));
	for (const quoted of named.matchAll(/"(\/[^"]+)"/g))
		assert.ok(quoted[1]!.startsWith(root), `${quoted[1]} is under the root`);
});

test('dhcpd.conf knows the farm machines by MAC and IP literal, and nginx is wired like Debian', async (t) => {
	const {root, settings} = await tree(t);
	const dhcpd = await fs.readFile(settings.dhcpdConf!, 'utf8');
	assert.match(dhcpd, /subnet 10\.10\.60\.0 netmask 255\.255\.255\.0 \{/);
	for (const host of simFarm.hosts.filter((candidate) => candidate.mac)) {
		assert.match(
			dhcpd,
			new RegExp(`hardware ethernet ${host.mac};\\s*fixed-address ${host.ip.replaceAll('.', '\\.')};`),
		);
	}

	await fs.access(path.join(root, 'var', 'lib', 'dhcp', 'dhcpd.leases'));
	const link = path.join(settings.sitesEnabled!, 'default');
	assert.equal(await fs.readlink(link), '../sites-available/default');
	assert.match(await fs.readFile(link, 'utf8'), /listen 80 default_server;/);
	const nginx = await fs.readFile(settings.nginxConf!, 'utf8');
	assert.ok(nginx.includes(`include ${settings.sitesEnabled}/*;`));
	for (const directive of nginx.matchAll(/^\s*(?:pid|error_log|access_log|\w+_temp_path)\s+(\S+);/gm)) {
		assert.ok(directive[1]!.startsWith(root), `${directive[0].trim()} is under the root`);
	}

	assert.ok((await fs.stat(settings.nginxLogDir!)).isDirectory());
	assert.ok((await fs.stat(path.dirname(settings.monitorSocket!))).isDirectory());
	assert.ok(settings.monitorSocket!.endsWith('/{instance}.monitor'));
});

test('the LVM stand-ins on the command path list the source disk the settings name', async (t) => {
	const {settings} = await tree(t, 10 * MiB);
	const env = {PATH: `${settings.commandPath!.join(':')}:${sbinPath}`};
	const lvs = await run(
		'lvs',
		['--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'lv_name,lv_size,lv_path', settings.vg!],
		env,
	);
	assert.equal(lvs.exitCode, 0, lvs.stderr);
	const rows = JSON.parse(lvs.stdout).report[0].lv as Array<Record<string, string>>;
	assert.ok(rows.length >= 2, 'other volumes besides the source');
	const source = rows.find((row) => row['lv_name'] === settings.sourceLv);
	assert.ok(source);
	assert.equal(Number(source['lv_size']), 12 * MiB, '10 MiB rounded up to whole 4 MiB extents');
	assert.equal((await fs.stat(source['lv_path']!)).size, 12 * MiB);
	const vgs = await run(
		'vgs',
		['--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'vg_free', settings.vg!],
		env,
	);
	const free = Number(JSON.parse(vgs.stdout).report[0].vg[0].vg_free);
	assert.ok(free >= 2 * 12 * MiB + 1024 * MiB, `room for a snapshot, a copy and headroom: ${free} bytes free`);
});

test('the source disk is deterministic, sparse and varied', async (t) => {
	const first = await tree(t);
	const second = await tree(t);
	const lv = (root: string) => path.join(root, 'dev', simFarm.vg, simFarm.sourceLv);
	assert.equal(await fileSha256(lv(first.root)), await fileSha256(lv(second.root)));
	const dir = await temporaryDirectory(t, 'farmclone-sim-disk-');
	const size = 64 * MiB;
	const file = path.join(dir, 'disk');
	await writeSimDisk(file, size);
	const kinds = Array.from({length: size / simDiskChunkSize}, (_, index) => chunkKind(index, 0xf3e8d23f));
	const kindSet = new Set<ChunkKind>(kinds);
	for (const kind of ['random', 'hole', 'zero', 'repeat-previous', 'repeat-block'] as const)
		assert.ok(kindSet.has(kind), kind);
	const holes = kinds.filter((kind) => kind === 'hole').length;
	const stat = await fs.stat(file);
	assert.equal(stat.size, size);
	assert.ok(stat.blocks * 512 <= size - holes * simDiskChunkSize, 'holes are left unallocated');
	const handle = await fs.open(file, 'r');
	try {
		const chunk = async (index: number) => {
			const buffer = Buffer.alloc(simDiskChunkSize);
			await handle.read(buffer, 0, simDiskChunkSize, index * simDiskChunkSize);
			return buffer;
		};

		const zero = Buffer.alloc(simDiskChunkSize);
		const hole = kinds.indexOf('hole');
		assert.ok((await chunk(hole)).equals(zero));
		const random = kinds.indexOf('random', 1);
		assert.ok(!(await chunk(random)).equals(zero));
		assert.ok(!(await chunk(random)).equals(await chunk(random + 1)) || kinds[random + 1] === 'repeat-previous');
		const repeat = kinds.indexOf('repeat-previous');
		assert.ok((await chunk(repeat)).equals(await chunk(repeat - 1)));
	} finally {
		await handle.close();
	}
});

test('buildSimTree refuses a directory that is not empty', async (t) => {
	const root = await temporaryDirectory(t, 'farmclone-sim-tree-');
	await fs.writeFile(path.join(root, 'something'), 'keep me\n');
	await assert.rejects(buildSimTree({root, sourceSize: 4 * MiB}), (error: Error) => {
		assert.match(
			error.message,
			/is not empty .*: a simulated host is built in a new or empty directory; give another --dir/,
		);
		assert.doesNotMatch(error.message, /buildSimTree/, 'no function name reaches the admin');
		return true;
	});
	assert.deepEqual(await fs.readdir(root), ['something']);
});
