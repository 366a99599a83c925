import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test, type TestContext} from 'node:test';
import {execa} from 'execa';
import {fileSha256, writeSimDisk} from '../source/sim/disk.js';
import {defaultUnits, displaySize, parseUnits} from '../source/sim/lvm-format.js';
import {
	defaultExtentSize,
	lvDevicePath,
	newLvmUuid,
	readLvmState,
	renameLv,
	withLvmState,
} from '../source/sim/lvm-state.js';
import {simPaths} from '../source/sim/paths.js';
import {writeShim} from '../source/sim/shim.js';
import {lvmCommands} from '../source/sim/tree.js';
import {readRealFixture, readRealIndex} from './kit/real-fixtures.js';

const MiB = 1024 * 1024;
const vgSize = 64 * MiB;
const sourceSize = 8 * MiB;

type Farm = {
	root: string;
	run: (argv: string[], input?: string) => Promise<{stdout: string; stderr: string; exitCode: number}>;
	lvs: (...args: string[]) => Promise<Array<Record<string, string>>>;
	vg: () => Promise<Record<string, string>>;
};

/** A VG `all` of 64 MiB holding an 8 MiB volume `src` with the sim's disk pattern, and the LVM shims. */
async function lvmFarm(t: TestContext): Promise<Farm> {
	const root = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-sim-lvm-'));
	t.after(() => fs.rm(root, {recursive: true, force: true}));
	await withLvmState(root, async (state) => {
		state.vgs.push({name: 'all', size: vgSize, extentSize: defaultExtentSize, uuid: newLvmUuid()});
		const device = lvDevicePath(root, 'all', 'src');
		await fs.mkdir(path.dirname(device), {recursive: true});
		await writeSimDisk(device, sourceSize);
		state.lvs.push({name: 'src', vg: 'all', uuid: newLvmUuid(), size: sourceSize, tags: ['farm']});
	});
	for (const command of lvmCommands) await writeShim(root, command, 'lvm');
	const env = {PATH: `${simPaths(root).bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, LC_ALL: 'C'};
	const run: Farm['run'] = async (argv, input) => {
		const [command, ...args] = argv;
		const result = await execa(command!, args, {env, input: input ?? '', reject: false});
		return {stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1};
	};

	const report = async (command: string, kind: string, args: string[]) => {
		const result = await run([command, '--reportformat', 'json', '--units', 'b', '--nosuffix', ...args]);
		assert.equal(result.exitCode, 0, result.stderr);
		const parsed = JSON.parse(result.stdout) as {report: Array<Record<string, Array<Record<string, string>>>>};
		return parsed.report.flatMap((section) => section[kind] ?? []);
	};

	return {
		root,
		run,
		lvs: (...args) =>
			report('lvs', 'lv', ['-o', 'lv_name,lv_size,lv_path,lv_attr,origin,snap_percent,lv_uuid', ...args]),
		vg: async () => {
			const rows = await report('vgs', 'vg', [
				'-o',
				'vg_name,vg_size,vg_free,vg_extent_size,vg_extent_count,vg_free_count',
			]);
			assert.equal(rows.length, 1);
			return rows[0]!;
		},
	};
}

function byName(rows: Array<Record<string, string>>, name: string): Record<string, string> {
	const row = rows.find((candidate) => candidate['lv_name'] === name);
	assert.ok(row, `no LV ${name} in ${JSON.stringify(rows)}`);
	return row;
}

test('lvcreate makes a sparse device file that lvs reports in JSON, every value a string', async (t) => {
	const farm = await lvmFarm(t);
	const created = await farm.run(['lvcreate', '--yes', '--size', `${12 * MiB}b`, '--name', 'dev', 'all']);
	assert.equal(created.exitCode, 0, created.stderr);
	assert.match(created.stdout, /^ {2}Logical volume "dev" created\.$/m);
	const dev = byName(await farm.lvs('all'), 'dev');
	assert.equal(Number(dev['lv_size']), 12 * MiB);
	assert.equal(dev['lv_path'], lvDevicePath(farm.root, 'all', 'dev'));
	assert.equal(dev['lv_attr'], '-wi-a-----');
	assert.equal(dev['origin'], '');
	assert.equal(dev['snap_percent'], '');
	assert.match(dev['lv_uuid']!, /^\w{6}(-\w{4}){5}-\w{6}$/);
	const stat = await fs.stat(dev['lv_path']!);
	assert.equal(stat.size, 12 * MiB);
	assert.ok(stat.blocks * 512 < MiB, 'a new volume takes no space until written');
	for (const row of await farm.lvs()) for (const value of Object.values(row)) assert.equal(typeof value, 'string');
});

test('column output: headings, two-space prefix, aligned columns and units', async (t) => {
	const farm = await lvmFarm(t);
	await farm.run(['lvcreate', '-L', '12m', '-n', 'dev', 'all']);
	const table = await farm.run(['lvs', 'all']);
	assert.equal(table.exitCode, 0, table.stderr);
	const lines = table.stdout.split('\n').filter(Boolean);
	assert.deepEqual(lines[0]!.trim().split(/\s+/), [
		'LV',
		'VG',
		'Attr',
		'LSize',
		'Pool',
		'Origin',
		'Data%',
		'Meta%',
		'Move',
		'Log',
		'Cpy%Sync',
		'Convert',
	]);
	assert.equal(lines.length, 3);
	for (const line of lines) {
		assert.ok(line.startsWith('  '), line);
		assert.equal(line.length, lines[0]!.length, 'every column is padded to its width');
	}

	// Sizes are right-aligned: every LSize value ends at the same column.
	const sizeEnds = lines.slice(1).map((line) => {
		const size = /\d+\.\d\dm/.exec(line);
		assert.ok(size, line);
		return size.index + size[0].length;
	});
	assert.equal(new Set(sizeEnds).size, 1, `size columns end at ${sizeEnds.join(', ')}`);
	const plain = await farm.run([
		'lvs',
		'--noheadings',
		'-o',
		'lv_name,lv_size',
		'--units',
		'm',
		'--nosuffix',
		'all/dev',
	]);
	assert.equal(plain.stdout, '  dev  12.00', 'LV is at least 4 wide, as libdm pads it');
	const bytes = await farm.run(['lvs', '--noheadings', '-o', 'size', '--units', 'b', 'all/dev']);
	assert.equal(bytes.stdout.trim(), `${12 * MiB}B`);
	const json = await farm.run(['vgs', '--reportformat', 'json', 'all']);
	assert.equal(JSON.parse(json.stdout).report[0].vg[0].vg_name, 'all');
	assert.ok(json.stdout.startsWith('  {\n      "report": [\n'), 'JSON is indented like LVM prints it');
});

test('vgs accounts every extent', async (t) => {
	const farm = await lvmFarm(t);
	await farm.run(['lvcreate', '-L', '20M', '-n', 'dev', 'all']);
	const vg = await farm.vg();
	assert.equal(Number(vg['vg_size']), vgSize);
	assert.equal(Number(vg['vg_extent_size']), defaultExtentSize);
	assert.equal(Number(vg['vg_extent_count']) * defaultExtentSize, vgSize);
	assert.equal(Number(vg['vg_free']), vgSize - sourceSize - 20 * MiB);
	assert.equal(Number(vg['vg_free_count']) * defaultExtentSize, Number(vg['vg_free']));
	const plus = await farm.run(['vgs', '--noheadings', '-o', '+vg_extent_count', 'all']);
	assert.equal(plus.stdout.trim().split(/\s+/).length, 8, 'default columns plus one');
});

test('sizes are rounded up to whole extents, and said so', async (t) => {
	const farm = await lvmFarm(t);
	const rounded = await farm.run(['lvcreate', '-L', '10M', '-n', 'odd', 'all']);
	assert.equal(rounded.exitCode, 0, rounded.stderr);
	assert.match(rounded.stdout, /Rounding up size to full physical extent 12\.00 MiB\n/);
	assert.equal(Number(byName(await farm.lvs('all/odd'), 'odd')['lv_size']), 12 * MiB);
	const unaligned = await farm.run(['lvcreate', '-L', '1000b', '-n', 'bytes', 'all']);
	assert.equal(unaligned.exitCode, 3);
	assert.match(unaligned.stderr, /Size is not a multiple of 512\. Try using 512 or 1024\./);
	assert.match(unaligned.stderr, /Invalid argument for --size: 1000b/);
});

test('lvcreate refuses an existing name, a full VG and bad names', async (t) => {
	const farm = await lvmFarm(t);
	const existing = await farm.run(['lvcreate', '-L', '4M', '-n', 'src', 'all']);
	assert.equal(existing.exitCode, 5);
	assert.equal(existing.stderr, '  Logical Volume "src" already exists in volume group "all"');
	const free = Number((await farm.vg())['vg_free_count']);
	const full = await farm.run(['lvcreate', '-L', `${(free + 1) * defaultExtentSize}b`, '-n', 'big', 'all']);
	assert.equal(full.exitCode, 5);
	assert.equal(
		full.stderr,
		`  Volume group "all" has insufficient free space (${free} extents): ${free + 1} required.`,
	);
	for (const name of ['a b', '-dash', '..', 'x/y/z']) {
		const bad = await farm.run(['lvcreate', '-L', '4M', '-n', name, 'all']);
		assert.equal(bad.exitCode, 3, `${name}: ${bad.stderr}`);
	}

	const spaced = await farm.run(['lvcreate', '-L', '4M', '-n', 'a b', 'all']);
	assert.equal(spaced.stderr, '  Logical volume name "a b" is invalid.');
	const reserved = await farm.run(['lvcreate', '-L', '4M', '-n', 'snapshot0', 'all']);
	assert.match(reserved.stderr, /Names starting "snapshot" are reserved/);
	const noVg = await farm.run(['lvcreate', '-L', '4M', '-n', 'x', 'nope']);
	assert.equal(noVg.exitCode, 5);
	assert.match(noVg.stderr, /Volume group "nope" not found/);
	assert.deepEqual(
		(await farm.lvs()).map((row) => row['lv_name']),
		['src'],
		'nothing was created by the refused commands',
	);
});

test('a snapshot is a point-in-time copy of its origin, counted against the VG', async (t) => {
	const farm = await lvmFarm(t);
	const origin = lvDevicePath(farm.root, 'all', 'src');
	const before = await fileSha256(origin);
	const free = Number((await farm.vg())['vg_free']);
	const created = await farm.run(['lvcreate', '--snapshot', '--size', '8M', '--name', 'snap', origin]);
	assert.equal(created.exitCode, 0, created.stderr);
	const rows = await farm.lvs('all');
	const snap = byName(rows, 'snap');
	assert.equal(snap['lv_attr'], 'swi-a-s---');
	assert.equal(snap['origin'], 'src');
	assert.equal(snap['snap_percent'], '0.00');
	assert.equal(Number(snap['lv_size']), 8 * MiB);
	assert.equal(byName(rows, 'src')['lv_attr'], 'owi-a-s---');
	assert.equal(Number((await farm.vg())['vg_free']), free - 8 * MiB);
	assert.equal(await fileSha256(snap['lv_path']!), before);
	// The origin changes; the snapshot keeps what it had.
	const handle = await fs.open(origin, 'r+');
	await handle.write(Buffer.alloc(4096, 0xab), 0, 4096, MiB);
	await handle.close();
	assert.notEqual(await fileSha256(origin), before);
	assert.equal(await fileSha256(snap['lv_path']!), before);
	const nested = await farm.run(['lvcreate', '-s', '-L', '4M', '-n', 'snap2', 'all/snap']);
	assert.equal(nested.exitCode, 5);
	assert.match(nested.stderr, /Snapshots of snapshots are not supported\./);
	const missing = await farm.run(['lvcreate', '-s', '-L', '4M', '-n', 'snap3', 'all/nope']);
	assert.equal(missing.exitCode, 5);
	assert.match(missing.stderr, /Snapshot origin LV nope not found in Volume group all\./);
});

test('a snapshot larger than its origin can use is reduced', async (t) => {
	const farm = await lvmFarm(t);
	const created = await farm.run(['lvcreate', '-s', '-L', '1G', '-n', 'snap', 'all/src']);
	assert.equal(created.exitCode, 0, created.stderr);
	assert.match(created.stdout, /Reducing COW size 1\.00 GiB down to maximum usable size/);
	const size = Number(byName(await farm.lvs('all'), 'snap')['lv_size']);
	assert.ok(size > sourceSize && size < 2 * sourceSize, `COW of ${size} for an ${sourceSize}-byte origin`);
	assert.equal(size % defaultExtentSize, 0);
});

test('lvremove refuses an open volume until it is closed', async (t) => {
	const farm = await lvmFarm(t);
	await farm.run(['lvcreate', '-L', '4M', '-n', 'dev', 'all']);
	const device = lvDevicePath(farm.root, 'all', 'dev');
	const handle = await fs.open(device, 'r');
	let closed = false;
	t.after(async () => {
		if (!closed) await handle.close();
	});
	assert.equal(byName(await farm.lvs('all/dev'), 'dev')['lv_attr'], '-wi-ao----');
	const refused = await farm.run(['lvremove', '-f', 'all/dev']);
	assert.equal(refused.exitCode, 5);
	assert.equal(refused.stderr, '  Logical volume all/dev in use.');
	await fs.access(device);
	await handle.close();
	closed = true;
	const removed = await farm.run(['lvremove', '--yes', device]);
	assert.equal(removed.exitCode, 0, removed.stderr);
	assert.equal(removed.stdout, '  Logical volume "dev" successfully removed.');
	await assert.rejects(fs.access(device), {code: 'ENOENT'});
	assert.deepEqual(
		(await farm.lvs()).map((row) => row['lv_name']),
		['src'],
	);
});

test('lvremove asks first, and an origin takes its snapshots with it only when confirmed', async (t) => {
	const farm = await lvmFarm(t);
	await farm.run(['lvcreate', '-s', '-L', '4M', '-n', 'snap', 'all/src']);
	for (const input of ['', 'n\n']) {
		const refused = await farm.run(['lvremove', 'all/src'], input);
		assert.equal(refused.exitCode, 5);
		assert.match(
			refused.stderr,
			/Do you really want to remove active origin logical volume all\/src with 1 snapshots\(s\)\? \[y\/n\]: /,
		);
		assert.match(refused.stderr, /Logical volume all\/src not removed\./);
		assert.deepEqual((await farm.lvs()).map((row) => row['lv_name']).sort(), ['snap', 'src']);
	}

	const snapshotOnly = await farm.run(['lvremove', 'all/snap'], 'yes\n');
	assert.equal(snapshotOnly.exitCode, 0, snapshotOnly.stderr);
	assert.match(snapshotOnly.stderr, /remove active logical volume all\/snap\? \[y\/n\]: /);
	assert.equal(byName(await farm.lvs(), 'src')['lv_attr'], '-wi-a-----', 'no snapshot left: no longer an origin');
	await farm.run(['lvcreate', '-s', '-L', '4M', '-n', 'snap', 'all/src']);
	const forced = await farm.run(['lvremove', '-f', 'all/src']);
	assert.equal(forced.exitCode, 0, forced.stderr);
	assert.match(forced.stdout, /"snap" successfully removed\.\n {2}Logical volume "src" successfully removed\./);
	assert.deepEqual(await farm.lvs(), []);
	const missing = await farm.run(['lvremove', '-f', 'all/src']);
	assert.equal(missing.exitCode, 5);
	assert.equal(missing.stderr, '  Failed to find logical volume "all/src"');
});

test('lvextend grows a snapshot up to what its origin can fill, and a plain volume with its file', async (t) => {
	const farm = await lvmFarm(t);
	await farm.run(['lvcreate', '-s', '-L', '4M', '-n', 'snap', 'all/src']);
	const set = await farm.run(['lvm-sim', 'set-snap-percent', 'all/snap', '50']);
	assert.equal(set.exitCode, 0, set.stderr);
	assert.equal(byName(await farm.lvs('all/snap'), 'snap')['snap_percent'], '50.00');
	const grown = await farm.run(['lvextend', '-L', '+4M', 'all/snap']);
	assert.equal(grown.exitCode, 0, grown.stderr);
	assert.match(
		grown.stdout,
		/Size of logical volume all\/snap changed from 4\.00 MiB \(1 extents\) to 8\.00 MiB \(2 extents\)\./,
	);
	assert.match(grown.stdout, /Logical volume all\/snap successfully resized\./);
	const snap = byName(await farm.lvs('all/snap'), 'snap');
	assert.equal(Number(snap['lv_size']), 8 * MiB);
	assert.equal(snap['snap_percent'], '25.00', 'the same used chunks fill half as much of twice the space');
	const capped = await farm.run(['lvextend', '-L', '+1G', 'all/snap']);
	assert.equal(capped.exitCode, 0, capped.stderr);
	assert.match(capped.stdout, /Reached maximum COW size/);
	const smaller = await farm.run(['lvextend', '-L', '4M', 'all/snap']);
	assert.equal(smaller.exitCode, 5);
	assert.match(smaller.stderr, /not larger than existing size/);
	const origin = await farm.run(['lvextend', '-L', '+4M', 'all/src']);
	assert.equal(origin.exitCode, 5);
	assert.match(origin.stderr, /Snapshot origin volumes can be resized only while inactive/);
	await farm.run(['lvcreate', '-L', '4M', '-n', 'plain', 'all']);
	const plain = await farm.run(['lvextend', '--size', '+6M', 'all/plain']);
	assert.equal(plain.exitCode, 0, plain.stderr);
	assert.match(plain.stdout, /Rounding size to boundary between physical extents: 8\.00 MiB\./);
	assert.equal((await fs.stat(lvDevicePath(farm.root, 'all', 'plain'))).size, 12 * MiB);
	const free = Number((await farm.vg())['vg_free_count']);
	const tooBig = await farm.run(['lvextend', '-L', `+${(free + 1) * defaultExtentSize}b`, 'all/plain']);
	assert.equal(tooBig.exitCode, 5);
	assert.equal(tooBig.stderr, `  Insufficient free space: ${free + 1} extents needed, but only ${free} available`);
});

test('a snapshot that overflows becomes invalid and its device can no longer be read', async (t) => {
	const farm = await lvmFarm(t);
	await farm.run(['lvcreate', '-s', '-L', '4M', '-n', 'snap', 'all/src']);
	const device = lvDevicePath(farm.root, 'all', 'snap');
	const reader = await fs.open(device, 'r');
	t.after(() => reader.close().catch(() => undefined));
	const overflow = await farm.run(['lvm-sim', 'set-snap-percent', 'all/snap', '100']);
	assert.equal(overflow.exitCode, 0, overflow.stderr);
	const snap = byName(await farm.lvs('all/snap'), 'snap');
	assert.equal(snap['lv_attr'], 'swi-I-s---');
	assert.equal(snap['snap_percent'], '100.00');
	// A reader that had it open finds nothing more; a new one cannot read at all.
	const {bytesRead} = await reader.read(Buffer.alloc(4096), 0, 4096, 0);
	assert.equal(bytesRead, 0);
	const copy = await execa('dd', [`if=${device}`, 'of=/dev/null', 'bs=1M'], {reject: false});
	assert.notEqual(copy.exitCode, 0);
	assert.match(copy.stderr, /dd: error reading/);
	await reader.close();
	const removed = await farm.run(['lvremove', '-f', 'all/snap']);
	assert.equal(removed.exitCode, 0, removed.stderr);
	await assert.rejects(fs.access(device), {code: 'ENOENT'});
	const notSnapshot = await farm.run(['lvm-sim', 'set-snap-percent', 'all/src', '10']);
	assert.equal(notSnapshot.exitCode, 5);
});

test('missing volumes and groups, bad paths and bad options fail like LVM', async (t) => {
	const farm = await lvmFarm(t);
	const lv = await farm.run(['lvs', 'all/nope']);
	assert.equal(lv.exitCode, 5);
	assert.equal(lv.stderr, '  Failed to find logical volume "all/nope"');
	assert.equal(lv.stdout, '');
	const vg = await farm.run(['vgs', 'nope']);
	assert.equal(vg.exitCode, 5);
	assert.equal(vg.stderr, '  Volume group "nope" not found\n  Cannot process volume group nope');
	const handBuilt = await farm.run(['lvs', '/dev/all/src']);
	assert.equal(handBuilt.exitCode, 5, 'a device path outside the farm is not an LV');
	assert.match(handBuilt.stderr, /Invalid path for Logical Volume/);
	const option = await farm.run(['lvs', '--no-such-option']);
	assert.equal(option.exitCode, 3);
	assert.match(option.stderr, /unrecognized option '--no-such-option'\n {2}Error during parsing of command line\./);
	const field = await farm.run(['lvs', '-o', 'lv_nonsense']);
	assert.equal(field.exitCode, 5);
	assert.match(field.stderr, /Unrecognised field: lv_nonsense/);
});

test('default order and field aliases', async (t) => {
	const farm = await lvmFarm(t);
	await farm.run(['lvcreate', '-L', '4M', '-n', 'b', 'all']);
	await farm.run(['lvcreate', '-L', '8M', '-n', 'a', 'all']);
	const names = async (...args: string[]) =>
		(await farm.run(['lvs', '--noheadings', '-o', 'name', ...args])).stdout
			.split('\n')
			.map((line) => line.trim())
			.filter(Boolean);
	assert.deepEqual(await names(), ['a', 'b', 'src']);
});

test('what farmclone never runs is refused as LVM refuses an unknown option, changing nothing', async (t) => {
	const farm = await lvmFarm(t);
	for (const argv of [
		['lvs', '-S', 'lv_name=src'],
		['lvs', '--nameprefixes', 'all'],
		['lvcreate', '-l', '2', '-n', 'two', 'all'],
		['lvcreate', '-L', '4M', '-n', 'tagged', '--addtag', 'farm', 'all'],
		['lvextend', '--extents', '+1', 'all/src'],
		['lvremove', '--nohistory', '-f', 'all/src'],
	]) {
		const refused = await farm.run(argv);
		assert.equal(refused.exitCode, 3, argv.join(' '));
		assert.match(
			refused.stderr,
			/^(?:\S+: unrecognized option '--\w+'|\S+: invalid option -- '\w')\n {2}Error during parsing of command line\.$/,
		);
	}

	assert.deepEqual(
		(await farm.lvs()).map((row) => [row['lv_name'], Number(row['lv_size'])]),
		[['src', sourceSize]],
	);
	// No lvrename nor lvm on the path: farmclone runs neither.
	for (const command of ['lvrename', 'lvm']) {
		await assert.rejects(fs.access(path.join(simPaths(farm.root).bin, command)), {code: 'ENOENT'});
	}
});

test("concurrent commands do not lose each other's changes", async (t) => {
	const farm = await lvmFarm(t);
	const names = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
	const results = await Promise.all(names.map((name) => farm.run(['lvcreate', '-L', '4M', '-n', name, 'all'])));
	for (const result of results) assert.equal(result.exitCode, 0, result.stderr);
	const state = await readLvmState(farm.root);
	assert.deepEqual(state.lvs.map((lv) => lv.name).sort(), [...names, 'src'].sort());
});

test("renameLv (Ganeti's adoption) moves the device with the name", async (t) => {
	const farm = await lvmFarm(t);
	await farm.run(['lvcreate', '-s', '-L', '4M', '-n', 'snap', 'all/src']);
	await renameLv(farm.root, 'all', 'src', 'disk0');
	assert.equal(byName(await farm.lvs('all'), 'snap')['origin'], 'disk0');
	await fs.access(lvDevicePath(farm.root, 'all', 'disk0'));
	await renameLv(farm.root, 'all', 'disk0', 'src');
	assert.equal(byName(await farm.lvs('all/src'), 'src')['lv_path'], lvDevicePath(farm.root, 'all', 'src'));
	await assert.rejects(renameLv(farm.root, 'all', 'src', 'snap'), /already exists in volume group "all"/);
});

test('sizes display like libdm: two decimals, < when rounded up, exact bytes', () => {
	const GiB = 1024 * MiB;
	assert.equal(displaySize(30 * GiB, defaultUnits), '30.00g');
	assert.equal(displaySize(2832 * MiB, defaultUnits), '<2.77g', '2.765625 GiB shows as less than 2.77');
	assert.equal(displaySize(2832 * MiB, parseUnits('h', true)!), '2.77g');
	assert.equal(displaySize(1152 * MiB, defaultUnits), '1.12g', 'an exact half rounds to even, as printf does');
	assert.equal(displaySize(1 * GiB, defaultUnits, 'short'), '1.00 GiB');
	assert.equal(displaySize(0, defaultUnits), '0 ');
	assert.equal(displaySize(12 * MiB, parseUnits('b', false)!), String(12 * MiB));
	assert.equal(displaySize(12 * MiB, parseUnits('k', true)!), '12288.00k');
	assert.equal(displaySize(12 * MiB, parseUnits('M', true)!), '12.58M', 'capitals are powers of 1000');
});

/** A report with its values blanked: what is left is the shape lvs prints (indents, one row a line, key order). */
function reportShape(text: string): string {
	return text.replaceAll(/"([a-z_]+)":"[^"]*"/g, '"$1":""').trimEnd();
}

/** The stand-in answers each fixture's argv in the shape the real program printed. */
async function assertRealShape(farm: Farm, names: string[]): Promise<void> {
	const index = await readRealIndex();
	for (const name of names) {
		const argv = index.fixtures[name]!.argv;
		const real = await readRealFixture(name);
		const standIn = await farm.run(argv);
		assert.equal(standIn.exitCode, 0, standIn.stderr);
		assert.equal(reportShape(standIn.stdout), reportShape(real), `${argv.join(' ')}`);
	}
}

test('the stand-in prints lvs and vgs JSON in the shape real LVM 2.03 printed (test/fixtures/real/)', async (t) => {
	const farm = await lvmFarm(t);
	await assertRealShape(farm, ['before.lvs', 'before.vgs', 'before.lvs-name-attr']);
});

test('with a second volume, the stand-in prints lvs JSON in the shape real LVM printed after the clone', async (t) => {
	const farm = await lvmFarm(t);
	const created = await farm.run(['lvcreate', '-L', '8M', '-n', 'clone', 'all']);
	assert.equal(created.exitCode, 0, created.stderr);
	await assertRealShape(farm, ['cloned.lvs', 'cloned.lvs-name-attr', 'cloned.vgs']);
});
