import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import {test} from 'node:test';
import {execa} from 'execa';
import {isAlive, parseDdOutput} from '../../source/host/copy.js';
import {copyWorkers} from '../../source/host/copy-rate.js';
import {
	completeRun,
	farmTree,
	heldCopy,
	makeFarm,
	MiB,
	runArgs,
	slowDisk,
	startCli,
	treeDifferences,
	waitFor,
	type EngineEvent,
	type FarmTree,
	type TestFarm,
} from '../kit/farm.js';

/**
 * Inside the copy: SIGHUP and SIGKILL of farmclone (dd goes on, detached,
 * and the rerun reattaches to it by pid and start time), SIGKILL of dd
 * itself in each copyRate mode (the rerun resumes from dd's last report), and the snapshot filling
 * up. dd copies in 4 KiB blocks here so that it is slow enough to be caught
 * in the middle; the final farm tree must be the uninterrupted run's.
 */

const size = 64 * MiB;
const slowCopy = {copyBlockSize: 4096};
let reference: Promise<FarmTree> | undefined;

type Progress = {bytes: number; total: number};

function copyProgress(event: EngineEvent): Progress | undefined {
	if (event.type !== 'progress' || event.stage !== 'copy') return undefined;
	return event['progress'] as Progress;
}

async function copyJob(farm: TestFarm): Promise<{pid: number; startTime: number}> {
	const {states} = await farm.journal();
	return {pid: Number(states['copy']?.['pid']), startTime: Number(states['copy']?.['startTime'])};
}

async function assertSameTree(farm: TestFarm): Promise<void> {
	assert.ok(reference, 'the reference run ran first');
	const differences = treeDifferences(await reference, await farmTree(farm.root, {normalize: true}));
	assert.deepEqual(differences, [], differences.join('\n'));
}

/**
 * How far the copy has written the target, from the kernel, not from the copy: dd's write position; the
 * copier writes by position (the descriptor stays at 0), so its bytes written (/proc/PID/io wchar) less its
 * reports, which run ahead of the resume point by at most its windows in flight.
 */
async function writePosition(pid: number, target: string, progressFile: string): Promise<number> {
	for (const fd of await fs.readdir(`/proc/${pid}/fd`)) {
		if ((await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) !== target) continue;
		const info = await fs.readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
		const position = Number(/^pos:\s+(\d+)/m.exec(info)?.[1]);
		if (position > 0) return position;
	}

	const io = await fs.readFile(`/proc/${pid}/io`, 'utf8');
	const written = Number(/^wchar: (\d+)$/m.exec(io)?.[1]);
	if (!(written > 0)) throw new Error(`the copy ${pid} has written nothing to ${target}`);
	return written - (await fs.stat(progressFile)).size;
}

test('an uninterrupted run: the reference farm tree', {timeout: 300_000}, async (t) => {
	const farm = await makeFarm(t, {size});
	await completeRun(farm);
	reference = farmTree(farm.root, {normalize: true});
	await reference;
});

/**
 * Each copyRate mode, killed at about half. `auto` and `max` copy at full speed, so their copier is held at its
 * start and given a slow disk (16 MiB/s, the test's own cgroup) before it goes: still copying however fast
 * this machine's disk is. A fixed rate is slow by its own limit.
 */
const killModes = [
	{copyRate: 'auto', slow: true},
	{copyRate: 'max', slow: true},
	{copyRate: '16M', slow: false},
];

for (const {copyRate, slow} of killModes) {
	test(
		`copyRate ${copyRate}: the copy (dd or the copier) killed at about half, the rerun copies again at most one report and the windows in flight, and the clone is exact`,
		{timeout: 240_000},
		async (t) => {
			const farm = await makeFarm(t, {size: 128 * MiB, settings: {...slowCopy, copyRate}, holdCopy: slow});
			const target = path.join(farm.root, 'dev/all', farm.settings.targetLv);
			let killed: {position: number; reports: number[]; pid: number; blockSize: number; tuned: boolean} | undefined;
			let killing: Promise<void> | undefined;
			const first = startCli(farm, await runArgs(), (event) => {
				const progress = copyProgress(event);
				if (killing || !progress || progress.bytes < progress.total * 0.4) return;
				killing = (async () => {
					const {pid, startTime} = await copyJob(farm);
					// Frozen first, so that what it wrote and what it said stay still while they are read.
					process.kill(pid, 'SIGSTOP');
					const {states} = await farm.journal();
					const position = await writePosition(pid, target, String(states['copy']?.['progressFile']));
					const text = await fs.readFile(String(states['copy']?.['progressFile']), 'utf8');
					const reports = [...text.matchAll(/(\d+) bytes .*? copied/g)].map((match) => Number(match[1]));
					process.kill(pid, 'SIGKILL');
					await waitFor(async () => !(await isAlive({pid, startTime})), 5000, 'dd to die');
					const tuned = text.includes('farmclone-copy tune: ');
					killed = {position, reports, pid, blockSize: Number(states['copy']?.['blockSize']), tuned};
				})();
			});
			if (slow) {
				const job = await heldCopy(farm);
				if (!(await slowDisk(t, job.pid, target, 16 * MiB))) {
					first.child.kill('SIGKILL');
					t.skip('no cgroup I/O controller to slow the disk down');
					return;
				}

				await farm.releaseCopies();
				process.kill(job.pid, 'SIGCONT');
			}

			const interrupted = await first.done;
			await killing;
			assert.ok(killed, 'dd was caught in the middle of the copy');
			assert.equal(interrupted.exitCode, 1, 'farmclone saw its copy die and stopped');
			assert.match(interrupted.stdout, /copy failed/);

			const resumed = await completeRun(farm);
			const {states} = await farm.journal();
			const restart = Number(states['copy']?.['startOffset']);
			// The largest stretch dd copied between two of its reports: one checkpoint window.
			const steps = killed.reports.map((bytes, index) => bytes - (killed!.reports[index - 1] ?? 0));
			const window = Math.max(...steps);
			t.diagnostic(
				`dd had written ${killed.position} bytes; the rerun started at ${restart}: ${killed.position - restart} bytes copied again (window ${window}, block ${killed.blockSize})`,
			);
			assert.ok(restart > 0, 'the copy did not start over');
			assert.ok(restart <= killed.position, 'nothing dd had not written is skipped');
			// dd: one report's stretch (and the block under way). The copier: one report's stretch and its windows
			// in flight, at most one per worker.
			const bound = window + (copyRate.endsWith('M') ? 1 : copyWorkers) * killed.blockSize;
			assert.ok(killed.position - restart <= bound, `at most ${bound} bytes (one checkpoint window) copied again`);
			assert.notEqual(Number(states['copy']?.['pid']), killed.pid);
			assert.equal(states['copy']?.['rate'], copyRate, 'the rerun copied in the same mode');
			// `max` tried its shapes on the first 2 x 16 MiB before it got to 40 %: the kill came in tuned segments.
			if (copyRate === 'max') assert.ok(killed.tuned, 'the killed copier had tuned its shape');
			const summary = resumed.find(
				(event) => event.type === 'log' && event.stage === 'copy' && /^resume: /.test(event.text ?? ''),
			);
			assert.match(summary?.text ?? '', /the copy stopped at \d+ %.*dd is gone.*resumes at/);

			// Byte for byte: the adopted volume against the source.
			const adopted = path.join(farm.root, 'dev/all', String(states['ganeti-instance']?.['disk']));
			const source = path.join(farm.root, 'dev/all', farm.settings.sourceLv);
			const [a, b] = await Promise.all([fs.readFile(adopted), fs.readFile(source)]);
			assert.ok(a.equals(b), 'the clone has the bytes of the source');
		},
	);
}

for (const kind of ['SIGHUP', 'SIGKILL'] as const) {
	test(
		`${kind} of farmclone during the copy: the copy goes on, the rerun reattaches to the same process`,
		{timeout: 240_000},
		async (t) => {
			// dd holds itself at its start (holdCopy): however fast the disk, it is still copying when farmclone goes.
			const farm = await makeFarm(t, {size, settings: slowCopy, holdCopy: true});
			const first = startCli(farm, await runArgs());
			const job = await heldCopy(farm);
			first.child.kill(kind);
			const interrupted = await first.done;
			assert.equal(await isAlive(job), true, 'dd outlives the session');
			assert.equal((await farm.journal()).stages['copy']?.state, 'running');
			if (kind === 'SIGHUP') assert.equal(interrupted.exitCode, 1);

			const second = startCli(farm, await runArgs(), (event) => {
				if (event.type === 'log' && /reattaching/.test(event.text ?? '')) process.kill(job.pid, 'SIGCONT');
			});
			const result = await second.done;
			assert.equal(result.exitCode, 0, result.stdout.split('\n').slice(-10).join('\n'));
			const summary = result.events.find((event) => event.type === 'log' && event.stage === 'copy');
			assert.match(summary?.text ?? '', new RegExp(`dd is still copying \\(pid ${job.pid}\\): \\d+ %`));
			assert.ok(
				result.events.some(
					(event) =>
						event.text ===
						`reattaching to the copy still running as pid ${job.pid} (same pid and start time as recorded)`,
				),
			);
			const {states} = await farm.journal();
			assert.equal(states['copy']?.['pid'], job.pid, 'no second dd was started');
			assert.equal(parseDdOutput(await fs.readFile(String(states['copy']?.['progressFile']), 'utf8')).bytes, size);
			await assertSameTree(farm);
		},
	);
}

test(
	'the snapshot filling up: extended at 80 %; once invalid the copy is thrown away and redone',
	{timeout: 240_000},
	async (t) => {
		// dd in 4 KiB blocks under a fixed 8 MiB/s: still copying, however fast the disk, when the test stops it.
		const settings = {...slowCopy, copyRate: '8M', snapshotSize: '16M', snapshotExtendBy: '8M'};
		const farm = await makeFarm(t, {size, settings});
		const {vg, snapshotLv} = farm.settings;
		const lvmSim = path.join(farm.root, 'bin/lvm-sim');
		const setPercent = async (percent: number) =>
			execa(lvmSim, ['set-snap-percent', `${vg}/${snapshotLv}`, String(percent)]);
		let step = 0;
		let acting: Promise<unknown> = Promise.resolve();
		const first = startCli(farm, await runArgs(), (event) => {
			const progress = copyProgress(event);
			if (step === 0 && progress && progress.bytes > 0) {
				step = 1;
				// dd held still: the watch goes on reading the snapshot's fill every few seconds meanwhile.
				acting = copyJob(farm).then(async ({pid}) => {
					process.kill(pid, 'SIGSTOP');
					await setPercent(85);
				});
			} else if (step === 1 && event.type === 'command' && /lvextend/.test(JSON.stringify(event['command']))) {
				step = 2;
				acting = acting.then(async () => setPercent(100));
			}
		});
		const overflowed = await first.done;
		await acting;
		assert.equal(step, 2, 'the snapshot was extended before it overflowed');
		const lines = overflowed.events.map((event) => event.text ?? '').join('\n');
		assert.match(lines, /warning: snapshot .* 85% full/);
		const failure = overflowed.events.find((event) => event.type === 'stage-failed');
		assert.equal(failure?.stage, 'copy');
		assert.match(String(failure?.['error']), /overflowed.*garbage/);
		const {states} = await farm.journal();
		assert.equal(
			await isAlive({pid: Number(states['copy']?.['pid']), startTime: Number(states['copy']?.['startTime'])}),
			false,
		);

		const resumed = await completeRun(farm);
		const snapshot = resumed.find((event) => event.type === 'check' && event.stage === 'snapshot');
		assert.match(JSON.stringify(snapshot), /overflowed/);
		const restarted = await farm.journal();
		assert.equal(restarted.states['copy']?.['startOffset'], 0, 'nothing read from the invalid snapshot is trusted');
		assert.notEqual(restarted.states['snapshot']?.['uuid'], states['snapshot']?.['uuid']);
		await assertSameTree(farm);
	},
);
