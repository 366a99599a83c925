import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {execa} from 'execa';
import {clockTime} from '../source/host/clock.js';
import {spawnDetached} from '../source/host/detached.js';
import {Host} from '../source/host/host.js';
import {isDeviceMounted} from '../source/host/image.js';
import {isSameProcessAlive, processStartTime, readProcStat, recordedStartTime} from '../source/host/proc.js';
import {waitFor} from './kit/farm.js';

test('readProcStat: the start time is a number, and utime+stime count this process’s CPU', async () => {
	const before = (await readProcStat(process.pid))!;
	assert.equal(typeof before.startTime, 'number');
	assert.equal(before.ppid, process.ppid);
	// Busy until the kernel has counted 50 ms of CPU (getrusage, which reads the clock /proc/PID/stat does).
	const start = process.cpuUsage();
	while (Object.values(process.cpuUsage(start)).reduce((a, b) => a + b) < 50_000) Math.sqrt(Math.random());
	const after = (await readProcStat(process.pid))!;
	assert.ok(after.utime + after.stime > before.utime + before.stime, '50 ms of CPU are at least one 10 ms tick');
	assert.equal(after.startTime, before.startTime);
	assert.equal(await processStartTime(process.pid), before.startTime);
});

test('a zombie has ended: no start time, not alive, whichever start time is asked for', async (t) => {
	// sh forks a child that ends once sh has become a sleep, which never reaps it.
	const child = 'while [ "$(cat /proc/$$/comm)" != sleep ]; do sleep 0.01; done';
	const parent = execa('sh', ['-c', `(${child}) & echo $!; exec sleep 30`], {reject: false});
	t.after(() => parent.kill('SIGKILL'));
	const zombie = await new Promise<number>((resolve) => parent.stdout!.once('data', (data) => resolve(Number(data))));
	await waitFor(async () => (await readProcStat(zombie))?.state === 'Z', 10_000, 'the child to become a zombie');
	assert.equal(await processStartTime(zombie), undefined);
	assert.equal(await isSameProcessAlive(zombie, undefined), false);
	assert.equal(await isSameProcessAlive(zombie, (await readProcStat(zombie))!.startTime), false);
	assert.equal(await isSameProcessAlive(parent.pid!, await processStartTime(parent.pid!)), true);
	assert.equal(
		await isSameProcessAlive(parent.pid!, (await processStartTime(parent.pid!))! + 1),
		false,
		'a reused pid',
	);
});

test('recordedStartTime reads numbers and the digit strings that earlier versions recorded', () => {
	assert.equal(recordedStartTime(4711), 4711);
	assert.equal(recordedStartTime('4711'), 4711);
	assert.equal(recordedStartTime(undefined), undefined);
	assert.equal(recordedStartTime('soon'), undefined);
	assert.equal(recordedStartTime(Number.NaN), undefined);
});

test('spawnDetached: its own session, output appended or started afresh, start time and exit code', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-detached-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	const output = path.join(dir, 'out');
	await fs.writeFile(output, 'before\n');
	const script = 'echo out; echo err >&2; ps -o sid= -p $$; read line || exit 3';
	const spawned: number[] = [];
	const onSpawn = async (pid: number) => void spawned.push(pid);
	const appended = await spawnDetached(['sh', '-c', script], {output, append: true, env: {}, onSpawn});
	assert.deepEqual(spawned, [appended.pid]);
	// The child is unref'd, so that farmclone may exit before it: something else must keep this test's loop going.
	const keepAlive = setInterval(() => undefined, 1000);
	const exitCode = await appended.exited.finally(() => clearInterval(keepAlive));
	assert.equal(exitCode, 3, 'stdin is /dev/null: read fails');
	const [first, out, err, sid] = (await fs.readFile(output, 'utf8')).split('\n');
	assert.deepEqual([first, out, err], ['before', 'out', 'err']);
	assert.equal(Number(sid), appended.pid, 'it leads a session of its own');

	const fresh = await spawnDetached(['sh', '-c', 'echo $FARMCLONE_SEAM; exec sleep 30'], {
		output,
		append: false,
		env: {FARMCLONE_SEAM: 'seen'},
	});
	t.after(() => process.kill(fresh.pid, 'SIGKILL'));
	assert.equal(fresh.startTime, await processStartTime(fresh.pid));
	await waitFor(async () => (await fs.readFile(output, 'utf8')) === 'seen\n', 10_000, 'the fresh output');
	await assert.rejects(spawnDetached(['/nonexistent/program'], {output, append: true, env: {}}), /could not start/);
});

test('clockTime is zero padded and 24-hour, with hundredths on request', () => {
	const at = new Date(2026, 11, 3, 9, 5, 3, 470).getTime();
	assert.equal(clockTime(at), '09:05:03');
	assert.equal(clockTime(at, true), '09:05:03.47');
});

test('isDeviceMounted knows a volume by any of its names, from this namespace’s mountinfo', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-mounted-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	// As /dev/VG/LV leads to /dev/dm-N: a link standing for the volume, and the device a mount names.
	const volume = path.join(dir, 'lv');
	await fs.symlink('/dev/null', volume);
	const mountinfo = (source: string) =>
		`22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n` +
		`40 22 1:3 / /mnt/clone\\040root rw shared:9 - ext4 ${source} rw\n`;
	const lookingAt = (source: string) =>
		({readFile: async (file: string) => (file === '/proc/self/mountinfo' ? mountinfo(source) : '')}) as never;
	assert.equal(await isDeviceMounted(lookingAt('/dev/null'), volume), true, 'mounted under its real name');
	assert.equal(await isDeviceMounted(lookingAt('/dev/null'), '/dev/null'), true, 'under the name asked for');
	assert.equal(await isDeviceMounted(lookingAt('/dev/zero'), volume), false);
	const nowhere = '/dev/farmclone-no-such-volume';
	assert.equal(await isDeviceMounted(new Host({backupDir: dir}), nowhere), false, 'the real mountinfo');
});
