/**
 * The parsers read what the real programs printed on a real farm host
 * (test/fixtures/real/, captured by test/host/ on Debian 12 with LVM2 2.03,
 * Ganeti 3.0.2, util-linux 2.38, Shorewall 5.2.8, QEMU 7.2; versions in
 * index.json).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import {ganetiVersion, instanceVolumes, listInstances} from '../source/host/ganeti.js';
import {probeRegion, readPartitionTable} from '../source/host/image.js';
import {getVg, listLvs} from '../source/host/lvm.js';
import {monitorCommand, parseBalloon} from '../source/host/qemu-monitor.js';
import {candidateMacs} from '../source/stages/mac.js';
import {hostAnswering, readRealFixture, readRealIndex} from './kit/real-fixtures.js';

const MiB = 1024 * 1024;

test('every real fixture says which command printed it, and the versions are recorded', async () => {
	const index = await readRealIndex();
	for (const program of ['lvm', 'ganeti', 'sfdisk', 'blkid', 'shorewall', 'qemu']) {
		assert.ok(index.versions[program], `version of ${program}`);
	}

	for (const [name, fixture] of Object.entries(index.fixtures)) {
		assert.ok(fixture.argv.length > 0, name);
		assert.ok((await readRealFixture(name)).length > 0, `${name} is not empty`);
	}
});

test("real lvs JSON: the source instance's LV as Ganeti named it, sizes in bytes", async (t) => {
	const host = await hostAnswering(t, {lvs: 'before.lvs'});
	const [lv, ...others] = await listLvs(host, 'all');
	assert.equal(others.length, 0);
	assert.match(lv!.name, /^[\da-f-]{36}\.disk0$/);
	assert.equal(lv!.path, `/dev/all/${lv!.name}`);
	assert.equal(lv!.size, 1024 * MiB);
	assert.deepEqual([lv!.snapshot, lv!.active, lv!.open, lv!.invalid], [false, true, false, false]);
	assert.equal(lv!.snapPercent, undefined);
	assert.deepEqual(lv!.tags, []);
});

test('real vgs JSON: the VG in bytes, 4 MiB extents', async (t) => {
	const host = await hostAnswering(t, {vgs: 'before.vgs'});
	const vg = await getVg(host, 'all');
	assert.equal(vg.extentSize, 4 * MiB);
	assert.ok(vg.size > 20 * 1024 * MiB && vg.free < vg.size, JSON.stringify(vg));
});

test('real gnt-instance list: "None" for no IP, memory in MiB', async (t) => {
	const host = await hostAnswering(t, {'gnt-instance': 'before.gnt-instance-list'});
	assert.deepEqual(await listInstances(host), [
		{
			name: 'gallifrey.xivo.vm.farm',
			status: 'ADMIN_down',
			pnode: 'host01.farm',
			macs: ['52:54:a1:3c:5e:01'],
			ips: [],
			maxmem: 1024,
			minmem: 512,
		},
	]);
});

test('real gnt-instance info --static --all: the plain disk is the LV lvs lists', async (t) => {
	const host = await hostAnswering(t, {'gnt-instance': 'before.gnt-instance-info-static-all', lvs: 'before.lvs'});
	const [lv] = await listLvs(host, 'all');
	const volumes = await instanceVolumes(host);
	assert.deepEqual([...volumes.entries()], [['gallifrey.xivo.vm.farm', [{vg: 'all', lv: lv!.name}]]]);
});

test('real gnt-cluster --version: 3.0.2, with maxmem/minmem', async (t) => {
	const host = await hostAnswering(t, {'gnt-cluster': 'before.gnt-cluster-version'});
	assert.deepEqual(await ganetiVersion(host), [3, 0, 2]);
});

test('real sfdisk -J on an LV whose name ends in a digit: partition node "…disk0p1", still partition 1', async (t) => {
	const host = await hostAnswering(t, {sfdisk: 'before.sfdisk-json'});
	const table = await readPartitionTable(host, '/dev/all/x.disk0');
	assert.equal(table?.label, 'dos');
	assert.deepEqual(
		table?.partitions.map(({number, offset, size, type}) => ({number, offset, size, type})),
		[{number: 1, offset: MiB, size: 8 * MiB, type: '83'}],
	);
});

test('real blkid -p of the partition: the ext4 root', async (t) => {
	const host = await hostAnswering(t, {blkid: 'before.blkid-partition'});
	const probe = await probeRegion(host, '/dev/all/x.disk0', {offset: MiB, size: 8 * MiB, where: 'partition 1'});
	assert.equal(probe.type, 'ext4');
	assert.equal(probe.label, 'root');
	assert.equal(probe.usage, 'filesystem');
});

test('real shorewall status says it is running the way the stages look for', async () => {
	assert.match(await readRealFixture('before.shorewall-status'), /^Shorewall is running$/m);
});

test('real lvs JSON after the clone: Ganeti renamed the adopted clone to <uuid>.disk0, open by the running VM; the snapshot is gone', async (t) => {
	const host = await hostAnswering(t, {lvs: 'cloned.lvs'});
	const lvs = await listLvs(host, 'all');
	assert.equal(lvs.length, 2, 'the source and its clone, no snapshot left');
	const before = await listLvs(await hostAnswering(t, {lvs: 'before.lvs'}), 'all');
	const source = lvs.find((lv) => lv.name === before[0]!.name);
	const clone = lvs.find((lv) => lv !== source);
	assert.ok(source && clone, lvs.map((lv) => lv.name).join(', '));
	assert.match(clone.name, /^[\da-f-]{36}\.disk0$/);
	assert.equal(clone.size, source.size);
	assert.deepEqual([clone.snapshot, clone.active, clone.open], [false, true, true], 'the clone VM holds its disk open');
	assert.deepEqual([source.snapshot, source.active, source.open], [false, true, false]);
	assert.ok(
		lvs.every((lv) => lv.origin === ''),
		'no snapshot of anything',
	);
});

test('real gnt-instance list with the clone running: status running, its MAC, memory as set', async (t) => {
	const host = await hostAnswering(t, {'gnt-instance': 'cloned.gnt-instance-list'});
	const instances = await listInstances(host);
	assert.deepEqual(
		instances.map(({name, status, ips, maxmem, minmem}) => ({name, status, ips, maxmem, minmem})),
		[
			{name: 'gallifrey-dev.xivo.vm.farm', status: 'running', ips: [], maxmem: 512, minmem: 256},
			{name: 'gallifrey.xivo.vm.farm', status: 'ADMIN_down', ips: [], maxmem: 1024, minmem: 512},
		],
	);
	const [clone] = instances;
	assert.deepEqual(clone!.macs, [candidateMacs('gallifrey-dev')[0]], "the MAC drawn from the farm's name");
});

test('real gnt-instance info --static --all after the clone: each instance owns the LV lvs lists', async (t) => {
	const host = await hostAnswering(t, {'gnt-instance': 'cloned.gnt-instance-info-static-all', lvs: 'cloned.lvs'});
	const names = new Set((await listLvs(host, 'all')).map((lv) => lv.name));
	const volumes = await instanceVolumes(host);
	assert.deepEqual([...volumes.keys()].sort(), ['gallifrey-dev.xivo.vm.farm', 'gallifrey.xivo.vm.farm']);
	for (const [instance, disks] of volumes) {
		assert.equal(disks.length, 1, instance);
		assert.equal(disks[0]!.vg, 'all');
		assert.ok(names.has(disks[0]!.lv), `${instance}'s ${disks[0]!.lv} is an LV lvs lists`);
	}
});

test('real QEMU monitor, `info balloon` of the running clone: monitorCommand reads the answer, parseBalloon the guest size', async (t) => {
	// What socat printed: the monitor's greeting and prompt, the echo of the command, the answer, the next prompt.
	const transcript = await readRealFixture('cloned.info-balloon');
	const greeting = transcript.indexOf('(qemu) ') + '(qemu) '.length;
	assert.ok(greeting > 0, `the transcript starts with the prompt: ${JSON.stringify(transcript)}`);
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-monitor-'));
	const socket = path.join(dir, 'monitor');
	// The real session, replayed: the greeting on connection, the rest once the command came.
	const server = net.createServer((connection) => {
		connection.write(transcript.slice(0, greeting));
		connection.once('data', () => {
			const rest = transcript.slice(greeting);
			connection.write(rest.includes('(qemu) ') ? rest : `${rest}(qemu) `);
		});
	});
	await new Promise<void>((resolve) => server.listen(socket, resolve));
	t.after(async () => {
		server.close();
		await fs.rm(dir, {recursive: true, force: true});
	});
	const answer = await monitorCommand(socket, 'info balloon');
	assert.match(answer, /^balloon: actual=\d+\s*$/);
	// Not the 256 MiB asked for: the clone boots the sim's disk, no OS and so no balloon driver to give memory back.
	// QEMU then reports all of maxmem, and the balloon stage says the guest shrinks at its driver's pace.
	assert.equal(parseBalloon(answer), 512, "all of maxmem (512M): the clone's guest has no balloon driver");
});
