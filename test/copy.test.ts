import assert from 'node:assert/strict';
import {randomBytes} from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {test, type TestContext} from 'node:test';
import {setTimeout as sleep} from 'node:timers/promises';
import {
	copyOutcome,
	copyArgv,
	ddArgv,
	isAlive,
	killCopy,
	parseDdOutput,
	startDetachedCopy,
	supportsDirectIo,
	watchCopy,
	type CopyJob,
	type CopyProgressReport,
} from '../source/host/copy.js';
import {Host} from '../source/host/host.js';
import {copy, parseCopierArguments} from '../source/host/copier.js';
import {heldDdDir, isStopped, waitFor} from './kit/farm.js';

const MiB = 1024 * 1024;

/** A scratch directory on disk (/var/tmp), not tmpfs, removed after the test with any dd still running. */
async function scratch(t: TestContext) {
	const dir = await fs.mkdtemp(path.join('/var/tmp', 'farmclone-copy-test-'));
	const started: CopyJob[] = [];
	t.after(async () => {
		for (const job of started) {
			if (await isAlive(job)) {
				process.kill(job.pid, 'SIGCONT');
				await killCopy(job, 'SIGKILL');
			}
		}

		await fs.rm(dir, {recursive: true, force: true});
	});
	const host = new Host({backupDir: path.join(dir, 'backups')});
	return {dir, host, started};
}

async function files(dir: string, size: number) {
	const source = path.join(dir, 'source');
	const target = path.join(dir, 'target');
	await fs.writeFile(source, randomBytes(size));
	await fs.writeFile(target, '');
	await fs.truncate(target, size);
	return {source, target, progressFile: path.join(dir, 'progress.log'), total: size};
}

async function sameContent(a: string, b: string): Promise<boolean> {
	const [left, right] = await Promise.all([fs.readFile(a), fs.readFile(b)]);
	return left.equals(right);
}

/** /proc/<pid>/stat field 22 read independently of the code under test (dd's name has no spaces). */
async function startTimeOf(pid: number): Promise<number> {
	return Number((await fs.readFile(`/proc/${pid}/stat`, 'utf8')).split(' ')[21]);
}

/**
 * Lets a SIGSTOPped dd run a few milliseconds at a time until it has printed
 * a progress report from the middle of the copy (dd reports once a second).
 */
async function stepUntilMidway(job: CopyJob): Promise<number> {
	await sleep(1100);
	for (let attempt = 0; attempt < 200; attempt++) {
		process.kill(job.pid, 'SIGCONT');
		await sleep(2);
		process.kill(job.pid, 'SIGSTOP');
		await sleep(20);
		const report = parseDdOutput(await fs.readFile(job.progressFile, 'utf8'));
		if (report.bytes > 0) return report.bytes;
	}

	throw new Error('dd printed no progress report');
}

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
	for (let waited = 0; !condition(); waited += 20) {
		if (waited > 10_000) throw new Error(`timed out waiting for ${what}`);
		await sleep(20);
	}
}

test('a detached copy reports progress, records pid and start time, and copies byte for byte', async (t) => {
	const {dir, host, started} = await scratch(t);
	const request = {...(await files(dir, 256 * MiB)), blockSize: 64 * 1024, offset: 0};
	const job = await startDetachedCopy(host, request);
	process.kill(job.pid, 'SIGSTOP');
	started.push(job);
	assert.equal(job.startTime, await startTimeOf(job.pid));
	assert.ok(job.argv.includes('iflag=direct') && job.argv.includes('oflag=direct'), 'ext4 takes direct I/O');
	const midway = await stepUntilMidway(job);
	assert.ok(midway < request.total, 'the copy was stopped midway');

	const events: CopyProgressReport[] = [];
	const watching = watchCopy(job, {
		signal: new AbortController().signal,
		intervalMs: 50,
		onProgress: (e) => void events.push(e),
	});
	await waitUntil(() => events.length > 0, 'a first progress event');
	process.kill(job.pid, 'SIGCONT');
	const outcome = await watching;

	assert.deepEqual(outcome, {status: 'completed', bytes: request.total});
	assert.equal(events[0]?.bytes, midway);
	assert.ok(events[0]!.bytes < request.total && events[0]!.rate > 0 && events[0]!.etaSeconds! > 0);
	assert.equal(events.at(-1)?.bytes, request.total);
	assert.equal(events.at(-1)?.etaSeconds, 0);
	assert.ok(await sameContent(request.source, request.target));
	assert.equal(await isAlive(job), false);
});

test('a later process reattaches to a running copy from its pid and start time alone', async (t) => {
	const {dir, host, started} = await scratch(t);
	const request = {...(await files(dir, 32 * MiB)), blockSize: 64 * 1024, offset: 0};
	const first = await startDetachedCopy(host, request);
	process.kill(first.pid, 'SIGSTOP');
	started.push(first);
	// What a new farmclone knows from the journal: no child handle, no exit code.
	const recorded: CopyJob = {
		pid: first.pid,
		startTime: first.startTime,
		progressFile: first.progressFile,
		offset: 0,
		total: request.total,
		blockSize: request.blockSize,
	};
	assert.equal(await isAlive(recorded), true);
	assert.equal(await isAlive({...recorded, startTime: recorded.startTime + 1}), false, 'a reused pid is not ours');
	process.kill(first.pid, 'SIGCONT');
	const outcome = await watchCopy(recorded, {signal: new AbortController().signal, intervalMs: 20, onProgress() {}});
	assert.deepEqual(outcome, {status: 'completed', bytes: request.total});
	assert.ok(await sameContent(request.source, request.target));
});

test('aborting the watch leaves dd copying', async (t) => {
	const {dir, host, started} = await scratch(t);
	const request = {...(await files(dir, 32 * MiB)), blockSize: 64 * 1024, offset: 0};
	const job = await startDetachedCopy(host, request);
	process.kill(job.pid, 'SIGSTOP');
	started.push(job);
	const controller = new AbortController();
	let polls = 0;
	const watching = watchCopy(job, {
		signal: controller.signal,
		intervalMs: 20,
		onProgress() {},
		onTick: () => void polls++,
	});
	await waitUntil(() => polls > 0, 'a poll');
	controller.abort();
	await assert.rejects(watching, {name: 'AbortError'});
	assert.equal(await isAlive(job), true, 'dd still runs after the abort');
	process.kill(job.pid, 'SIGCONT');
	// dd is unref'd: the exit code alone would not keep this test's event loop waiting.
	for (let waited = 0; (await isAlive(job)) && waited < 10_000; waited += 20) await sleep(20);
	assert.equal(await job.exited, 0);
	assert.ok(await sameContent(request.source, request.target));
	assert.equal((await copyOutcome(job)).status, 'completed');
});

test('killCopy spares a process whose start time differs, and a killed copy is not complete', async (t) => {
	const {dir, host, started} = await scratch(t);
	const request = {...(await files(dir, 16 * MiB)), blockSize: 64 * 1024, offset: 0};
	// A dd that holds itself before its first block: however fast the disk, it is there to be killed.
	const held = new Host({backupDir: host.options.backupDir, commandPath: [await heldDdDir(dir)]});
	const job = await startDetachedCopy(held, request);
	started.push(job);
	await waitFor(async () => isStopped(job.pid), 60_000, 'the held dd to stop itself');
	assert.equal(await killCopy({pid: job.pid, startTime: job.startTime - 1}), false);
	assert.equal(await isAlive(job), true);
	assert.equal(await killCopy(job, 'SIGKILL'), true);
	assert.equal(await isAlive(job), false);
	const outcome = await copyOutcome({...job, exited: undefined});
	assert.equal(outcome.status, 'failed');
});

test('a resumed copy starts at the offset and completes the target', async (t) => {
	const {dir, host} = await scratch(t);
	const request = {...(await files(dir, 8 * MiB)), blockSize: MiB, offset: 3 * MiB};
	const head = (await fs.readFile(request.source)).subarray(0, request.offset);
	await fs.writeFile(request.target, head, {flag: 'r+'});
	const job = await startDetachedCopy(host, request);
	assert.ok(job.argv.includes('skip=3') && job.argv.includes('seek=3'));
	let last = 0;
	const outcome = await watchCopy(job, {
		signal: new AbortController().signal,
		intervalMs: 20,
		onProgress: (event) => void (last = event.bytes),
	});
	assert.deepEqual(outcome, {status: 'completed', bytes: request.total});
	assert.equal(last, request.total, 'progress counts the offset');
	assert.ok(await sameContent(request.source, request.target));
	assert.equal((await fs.stat(request.target)).size, request.total, 'conv=notrunc kept the size');
});

test('a dd that fails reports why', async (t) => {
	const {dir, host} = await scratch(t);
	const request = {...(await files(dir, 4 * MiB)), target: '/dev/full', blockSize: MiB, offset: 0};
	const job = await startDetachedCopy(host, request);
	assert.ok(job.argv.includes('oflag=dsync'), '/dev/full refuses O_DIRECT: dsync instead');
	const outcome = await watchCopy(job, {signal: new AbortController().signal, intervalMs: 20, onProgress() {}});
	assert.equal(outcome.status, 'failed');
	assert.match(outcome.status === 'failed' ? outcome.reason : '', /No space left on device/);
});

test('direct I/O is probed on the file itself', async (t) => {
	const {dir} = await scratch(t);
	const file = path.join(dir, 'probe');
	await fs.writeFile(file, 'x');
	assert.equal(await supportsDirectIo(file), true);
	assert.equal(await supportsDirectIo('/dev/zero'), false);
	const argv = ddArgv({source: 'a', target: 'b', total: 10 * MiB, blockSize: 4 * MiB, offset: 0}, false);
	assert.ok(argv.includes('count=3'), 'a partial last block is still copied');
	assert.ok(!argv.some((arg) => arg.includes('direct')));
	assert.throws(() => ddArgv({source: 'a', target: 'b', total: 10, blockSize: 4, offset: 3}, true), /multiple/);
});

test('the copier: windows in flight at once, a resume point in dd words, the same bytes; a short source fails', async (t) => {
	const {dir} = await scratch(t);
	const source = path.join(dir, 'source');
	const target = path.join(dir, 'target');
	// Not a whole number of windows nor of sectors: the last window goes through the cache.
	const size = 5 * MiB + 1000;
	await fs.writeFile(source, randomBytes(size));
	await fs.writeFile(target, Buffer.alloc(size));
	const direct = await supportsDirectIo(source);
	const lines: string[] = [];
	await copy({source, target, window: MiB, workers: 3, from: MiB, to: size, direct}, (text) => lines.push(text));
	const report = parseDdOutput(lines.join(''));
	assert.equal(report.finished, true);
	assert.equal(report.bytes, size - MiB);
	assert.deepEqual(report.errors, []);
	const [a, b] = await Promise.all([fs.readFile(source), fs.readFile(target)]);
	assert.ok(b.subarray(0, MiB).equals(Buffer.alloc(MiB)), 'nothing before from= is written');
	assert.ok(a.subarray(MiB).equals(b.subarray(MiB)));
	const argv = copyArgv({source, target, total: size, blockSize: MiB, offset: 2 * MiB, workers: 4}, true);
	assert.equal(argv[0], 'node');
	assert.ok(argv.includes('from=2097152') && argv.includes('workers=4') && argv.includes('direct'));

	// Tuned: segments of several shapes one after the other, the same bytes, dd's words, the choice said.
	await fs.writeFile(target, Buffer.alloc(size));
	const tuned: string[] = [];
	const tune = [
		{window: 256 * 1024, workers: 2},
		{window: MiB, workers: 1},
	];
	const tunedRequest = {source, target, window: MiB, workers: 2, from: 0, to: size, direct, tune};
	await copy(tunedRequest, (text) => tuned.push(text), {trial: MiB, retune: 2 * MiB});
	const tunedReport = parseDdOutput(tuned.join(''));
	assert.equal(tunedReport.finished, true);
	assert.equal(tunedReport.bytes, size);
	assert.deepEqual(tunedReport.errors, []);
	assert.match(
		tuned.join(''),
		/\nfarmclone-copy tune: 2 x 262144 B [^,]+, 1 x 1 MiB [^;]+; \d x \d+ (B|MiB) from byte 2097152 on\n/,
	);
	// Trials: 0-1 MiB in 4 windows, 1-2 MiB in 1; the winner (by time: either) for 2 MiB, then for the rest.
	const records = Number(/\n(\d+)\+0 records in\n/.exec(tuned.join(''))?.[1]);
	assert.ok([4 + 1 + 8 + 5, 4 + 1 + 2 + 2].includes(records), `${records} records`);
	assert.ok((await fs.readFile(target)).equals(await fs.readFile(source)));
	assert.ok(
		copyArgv({source, target, total: size, blockSize: MiB, offset: 0, workers: 2, tune}, true).includes(
			'tune=262144:2,1048576:1',
		),
	);
	assert.throws(
		() => parseCopierArguments(['if=a', 'of=b', 'window=1000', 'workers=1', 'from=0', 'to=1', 'tune=300:1']),
		/does not divide/,
	);
	assert.deepEqual(
		parseCopierArguments(['if=a', 'of=b', 'window=1024', 'workers=1', 'from=0', 'to=1', 'tune=512:2,1024:1']).tune,
		[
			{window: 512, workers: 2},
			{window: 1024, workers: 1},
		],
	);

	const failed: string[] = [];
	await assert.rejects(
		copy({source, target, window: MiB, workers: 2, from: 0, to: size + MiB, direct}, (text) => failed.push(text)),
		/ends at byte/,
	);
	assert.equal(parseDdOutput(failed.join('')).finished, false);
});
