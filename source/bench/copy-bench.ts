/**
 * Copy benchmark: farmclone's copy (the copy stage's own runCopy) in `max`
 * and `auto`, against today's `ionice -c3 dd bs=1M` direct, dd bs=1M and
 * bs=64M direct, `qemu-img convert -n -t none -T none -m 8|16 -W` and fio's
 * sequential read+write limit; then the neighbour bench (fio 4k randread
 * qd1 alone and beside each copy: p99 and IOPS) and auto's recovery once the
 * neighbour stops. Needs fio and qemu-utils.
 *
 *   node dist/source/bench/copy-bench.js [size] [rounds]   (or FARMCLONE_BENCH_SIZE, FARMCLONE_BENCH_ROUNDS; default 2G, 5)
 *   FARMCLONE_BENCH_PARTS=throughput,neighbour,recovery   (the default: the first two; npm run bench runs
 *                                                         recovery as a second run, at 12G)
 *   FARMCLONE_BENCH_METHODS=max,64M,-m   (the throughput part: only the copies whose name has one of these;
 *                                         farmclone max and the three peers of the done-when are always in)
 *
 * 2 GiB: long enough that farmclone's start and end (a process to spawn, the
 * cgroup, lvs) weigh on it about as little as they would on a real disk. The
 * recovery part wants more: a copy that goes on for 10 s after the neighbour
 * stops (12G at 800 MB/s); shorter rounds are left out as too short to tell,
 * so npm run bench runs it on its own, on 12 GiB:
 *   FARMCLONE_BENCH_PARTS=recovery node dist/source/bench/copy-bench.js 12G 5
 *
 * Fairness:
 * - both must have the data on disk when the clock stops. The baseline gets
 *   conv=fsync rather than a following `sync`: sync would also flush whatever
 *   else the machine has dirty, and farmclone's dd uses conv=fsync too;
 * - both read a source that is not in the page cache: before each run the
 *   snapshot's pages are dropped with posix_fadvise (dd iflag=nocache
 *   count=0), which needs no privilege, unlike /proc/sys/vm/drop_caches;
 *   direct I/O would not use them anyway, the baseline would;
 * - both write a freshly created file (the target volume is removed and
 *   created again, the baseline's file is truncated by dd), so neither
 *   overwrites blocks the other has already allocated;
 * - the order alternates each round, and the ratio is a median of rounds.
 * farmclone's time runs from the start of runCopy to its return: spawning dd,
 * the O_DIRECT probes, reading `lvs` for the snapshot and the final check
 * that the snapshot did not overflow are all part of it.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';
import {dropCache, readDdReport} from '../host/copy.js';
import {copyDevices, foreignThreshold, readDiskstats} from '../host/copy-rate.js';
import {Host} from '../host/host.js';
import {formatBytes, listLvs, parseSize} from '../host/lvm.js';
import {defaultSettings} from '../settings/schema.js';
import {buildSimTree} from '../sim/tree.js';
import {runCopy} from '../stages/copy.js';
import {createVolumeStage} from '../stages/create-volume.js';
import {snapshotStage} from '../stages/snapshot.js';
import type {StageContext} from '../stages/types.js';
import {statesInMemory} from '../stages/state.js';

const sizeText = process.argv[2] ?? process.env['FARMCLONE_BENCH_SIZE'] ?? '2G';
const parts = new Set((process.env['FARMCLONE_BENCH_PARTS'] ?? 'throughput,neighbour').split(','));
const unknownParts = [...parts].filter((part) => !['throughput', 'neighbour', 'recovery'].includes(part));
if (unknownParts.length > 0) {
	console.error(`FARMCLONE_BENCH_PARTS: no part named ${unknownParts.join(', ')} (throughput, neighbour, recovery)`);
	process.exit(2);
}

const load = () =>
	os
		.loadavg()
		.map((value) => value.toFixed(1))
		.join(' ');
const rounds = Number(process.argv[3] ?? process.env['FARMCLONE_BENCH_ROUNDS'] ?? 5);
const size = parseSize(sizeText);
// Each method's run: its median over rounds.
const settleSeconds = Number(process.env['FARMCLONE_BENCH_SETTLE'] ?? 0);

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function rate(seconds: number): string {
	return `${(size / seconds / 1e6).toFixed(0).padStart(5)} MB/s`;
}

async function fillWithRandomData(file: string): Promise<void> {
	const chunk = 4 * 1024 * 1024;
	const handle = await fs.open(file, 'r+');
	try {
		const {randomFill} = await import('node:crypto');
		const buffer = Buffer.alloc(chunk);
		for (let position = 0; position < size; position += chunk) {
			await new Promise<void>((resolve, reject) => randomFill(buffer, (error) => (error ? reject(error) : resolve())));
			await handle.write(buffer, 0, Math.min(chunk, size - position), position);
		}

		await handle.sync();
	} finally {
		await handle.close();
	}
}

// On disk, not tmpfs: /var/tmp survives reboots and is meant for large files.
const base = await fs.mkdtemp(path.join(process.env['FARMCLONE_BENCH_DIR'] ?? '/var/tmp', 'farmclone-bench-'));
try {
	const tree = await buildSimTree({root: path.join(base, 'farm'), sourceSize: size});
	const settings = defaultSettings('bench-dev', tree.settings);
	const host = new Host({commandPath: settings.commandPath, backupDir: path.join(base, 'backups')});
	const {states, saveState} = statesInMemory();
	const context: StageContext = {
		settings,
		host,
		states,
		saveState,
		async updateSettings(patch) {
			Object.assign(settings, patch);
		},
		stateDir: path.join(base, 'state'),
		log() {},
		progress() {},
		prompt: {
			confirm: async () => true,
			choose: async (_message, choices) => choices[0]!.value,
			typed: async () => true,
		},
		signal: new AbortController().signal,
	};
	await fs.mkdir(context.stateDir, {recursive: true});
	const find = async (name: string) => (await listLvs(host, settings.vg)).find((lv) => lv.name === name)!;
	await fillWithRandomData((await find(settings.sourceLv)).path);
	await snapshotStage.apply(context);
	const snapshot = await find(settings.snapshotLv);
	const baselineFile = path.join(path.dirname(snapshot.path), 'bench-baseline');

	// Untimed, before either run: earlier rounds' writeback must not slow the next run down. An optional pause
	// (FARMCLONE_BENCH_SETTLE seconds) lets the layers below settle (ext4's discards, a VM host's cache); off by
	// default, as on a virtio disk with ext4 `discard` it made the bare dd slower still (4 s instead of 1-2 s
	// per GiB) while the direct I/O copy stayed at its 1.0-1.2 s.
	const quiesce = async (source: string) => {
		await execa('sync');
		await dropCache(host, source);
		await sleep(settleSeconds * 1000);
		if (startOnQuietDisk) await quietDisk();
	};
	// The recovery part starts each copy on a quiet disk: the bench's own cleanup just before (the last target
	// removed, its metadata written back) is not the neighbour that part is about, and `auto` would rightly be
	// gentle with it. At most a minute.
	let startOnQuietDisk = false;
	const {watched} = await copyDevices(snapshot.path, snapshot.path);
	const quietDisk = async () => {
		const deadline = performance.now() + 60_000;
		let quietSince = performance.now();
		let last = await readDiskstats(watched);
		while (last && performance.now() < deadline && performance.now() - quietSince < 2000) {
			await sleep(250);
			const now = await readDiskstats(watched);
			if (!now) return;
			const perSecond = ((now.submitted - last.submitted) * 1000) / Math.max(now.atMs - last.atMs, 1);
			if (perSecond > foreignThreshold) quietSince = performance.now();
			last = now;
		}
	};

	type Method = {name: string; run(): Promise<number>};
	const farmclone = (rate: string): Method => ({
		name: `farmclone ${rate}`,
		async run() {
			settings.copyRate = rate;
			await createVolumeStage.undo(context);
			await createVolumeStage.apply(context);
			delete states['copy'];
			const found = {source: await find(settings.sourceLv), snapshot, target: await find(settings.targetLv)};
			await quiesce(snapshot.path);
			const started = performance.now();
			const outcome = await runCopy(context, found);
			const seconds = (performance.now() - started) / 1000;
			if (outcome.status !== 'completed') throw new Error(`farmclone copy failed: ${outcome.reason}`);
			const progressFile = String(states['copy']?.['progressFile']);
			const report = await readDdReport(progressFile);
			ddSeconds.set(rate, [...(ddSeconds.get(rate) ?? []), report.seconds]);
			// The shapes the copier tried and the one it kept (`max`): shown after the round.
			const tuned = (await fs.readFile(progressFile, 'utf8'))
				.split(/[\r\n]+/)
				.filter((line) => line.includes(' tune: '));
			tuneLines.push(...tuned.map((line) => `  ${this.name}: ${line}`));
			return seconds;
		},
	});
	const tuneLines: string[] = [];
	/** dd's own time in farmclone's copy (its final report): the copy without farmclone's start and end. */
	const ddSeconds = new Map<string, number[]>();
	// Peers: each writes a freshly created file of the same size, data on disk (conv=fsync, qemu-img -t none) at the end.
	const peer = (name: string, argv: () => string[]): Method => ({
		name,
		async run() {
			await fs.rm(baselineFile, {force: true});
			await execa('truncate', ['-s', String(size), baselineFile]);
			await quiesce(snapshot.path);
			const started = performance.now();
			const [command, ...args] = argv();
			await execa(command!, args);
			return (performance.now() - started) / 1000;
		},
	});
	const dd = (bs: string) => () => [
		'dd',
		`if=${snapshot.path}`,
		`of=${baselineFile}`,
		`bs=${bs}`,
		'iflag=direct',
		'oflag=direct',
		'conv=fsync,notrunc',
		'status=none',
	];
	const qemu = (streams: number) => () => [
		'qemu-img',
		'convert',
		'-n',
		'-t',
		'none',
		'-T',
		'none',
		'-m',
		String(streams),
		'-W',
		'-f',
		'raw',
		'-O',
		'raw',
		snapshot.path,
		baselineFile,
	];
	const today: Method = peer('today: ionice -c3 dd 1M', () => ['ionice', '-c3', '-t', ...dd('1M')()]);
	const chosen = process.env['FARMCLONE_BENCH_METHODS']?.split(',');
	const methods: Method[] = [
		farmclone('max'),
		farmclone('auto'),
		today,
		peer('dd bs=1M direct', dd('1M')),
		peer('dd bs=64M direct', dd('64M')),
		peer('qemu-img -m 8 -W', qemu(8)),
		peer('qemu-img -m 16 -W', qemu(16)),
	].filter(
		(method) =>
			!chosen ||
			['farmclone max', 'dd bs=64M direct', 'qemu-img -m 8 -W', 'qemu-img -m 16 -W'].includes(method.name) ||
			chosen.some((part) => method.name.includes(part)),
	);

	/** fio's ceiling: sequential reads of the source and writes of a fresh file at once, direct, MB/s of writes. */
	const fioLimit = async (): Promise<number> => {
		await fs.rm(baselineFile, {force: true});
		const {stdout} = await execa('fio', [
			'--output-format=json',
			'--direct=1',
			'--ioengine=libaio',
			'--iodepth=16',
			'--bs=1M',
			`--size=${size}`,
			'--name=read',
			'--rw=read',
			`--filename=${snapshot.path}`,
			'--name=write',
			'--rw=write',
			`--filename=${baselineFile}`,
			'--end_fsync=1',
		]);
		const jobs = (JSON.parse(stdout) as {jobs: {jobname: string; write: {bw_bytes: number}}[]}).jobs;
		return (jobs.find((job) => job.jobname === 'write')?.write.bw_bytes ?? 0) / 1e6;
	};

	/** The neighbour: 4k random reads at queue depth 1 of the source, as a running VM reads its disk. */
	const neighbour = async (seconds: number) => {
		const {stdout} = await execa('fio', [
			'--output-format=json',
			'--name=neighbour',
			'--rw=randread',
			'--bs=4k',
			'--direct=1',
			'--iodepth=1',
			'--ioengine=psync',
			`--filename=${(await find(settings.sourceLv)).path}`,
			`--size=${size}`,
			'--time_based',
			`--runtime=${seconds}`,
		]);
		const job = (JSON.parse(stdout) as {jobs: {read: {iops: number; clat_ns: {percentile: Record<string, number>}}}[]})
			.jobs[0]!;
		return {iops: job.read.iops, p99: (job.read.clat_ns.percentile['99.000000'] ?? 0) / 1e6};
	};

	console.log(
		`copy benchmark: ${formatBytes(size)}, ${rounds} rounds, block size ${formatBytes(settings.copyBlockSize)}, ` +
			`${os.cpus().length} CPUs, load average ${load()} at the start, in ${base}`,
	);
	const summary: string[] = [];
	const verdict = (holds: boolean) => (holds ? 'holds' : 'NOT MET');

	// ---------------------------------------------------------------- throughput
	const seconds = new Map<string, number[]>(methods.map((method) => [method.name, []]));
	const limits: number[] = [];
	const mbps = (name: string) => size / median(seconds.get(name) ?? [Number.NaN]) / 1e6;
	/** farmclone's copy without its start and end: the copy process's own time, from its final report. */
	const copyOnly = (rate: string) => size / median(ddSeconds.get(rate) ?? [Number.NaN]) / 1e6;
	if (parts.has('throughput')) {
		for (let round = 1; round <= rounds; round++) {
			const order = round % 2 ? methods : [...methods].reverse();
			for (const method of order) seconds.get(method.name)!.push(await method.run());
			limits.push(await fioLimit());
			console.log(
				`round ${round} (load ${load()}): ` +
					methods.map((method) => `${method.name} ${rate(seconds.get(method.name)!.at(-1)!).trim()}`).join(', '),
			);
			for (const line of tuneLines.splice(0)) console.log(line);
		}

		const peers = ['dd bs=64M direct', 'qemu-img -m 8 -W', 'qemu-img -m 16 -W'];
		const fastestPeer = Math.max(...peers.map(mbps));
		// A copy left out of this run (FARMCLONE_BENCH_METHODS) has no figure: '-', not NaN.
		const ratioText = (ratio: number) => (Number.isFinite(ratio) ? ratio.toFixed(2) : '   -');
		console.log(`\nthroughput, median of ${rounds} (MB/s; ratio to dd 1M direct; ratio to the fastest peer):`);
		for (const method of methods) {
			console.log(
				`  ${method.name.padEnd(26)} ${mbps(method.name).toFixed(0).padStart(5)}  ${ratioText(mbps(method.name) / mbps('dd bs=1M direct'))}  ${(mbps(method.name) / fastestPeer).toFixed(2)}`,
			);
		}

		console.log(`  fio read+write limit       ${median(limits).toFixed(0).padStart(5)}`);
		// A real disk is copied for minutes: farmclone's fixed cost at the start and end (spawning the copy, the
		// idle latency sample of auto, lvs) weighs less there than here. The copy's own rate shows how much.
		for (const [rate, list] of ddSeconds) {
			console.log(
				`  (farmclone ${rate}: the copy process alone ${copyOnly(rate).toFixed(0)} MB/s; farmclone's start and end cost ${(median(seconds.get(`farmclone ${rate}`)!) - median(list)).toFixed(2)} s)`,
			);
		}

		const maxRatio = mbps('farmclone max') / fastestPeer;
		summary.push(
			`max throughput / fastest of dd 64M, qemu-img -m 8, -m 16: ${maxRatio.toFixed(2)} (>= 1.0: ${verdict(maxRatio >= 1)}); ` +
				`copy process alone ${(copyOnly('max') / fastestPeer).toFixed(2)}`,
		);
		if (seconds.has('farmclone auto') && seconds.has(today.name)) {
			summary.push(
				`auto alone / fastest peer ${(mbps('farmclone auto') / fastestPeer).toFixed(2)}; today's copy / fastest peer ${(mbps(today.name) / fastestPeer).toFixed(2)}`,
			);
		}
	}

	// ---------------------------------------------------------------- neighbour
	// The random reader alone, then beside each copy (the copy first, the reader 500 ms later for its seconds).
	const neighbourSeconds = Number(process.env['FARMCLONE_BENCH_NEIGHBOUR_SECONDS'] ?? 4);
	if (parts.has('neighbour')) {
		const beside = [farmclone('auto'), farmclone('max'), today, peer('qemu-img -m 8 -W', qemu(8))];
		const results = new Map<string, {iops: number; p99: number}[]>([
			['alone', []],
			...beside.map((m) => [m.name, []] as [string, []]),
		]);
		for (let round = 1; round <= rounds; round++) {
			results.get('alone')!.push(await neighbour(neighbourSeconds));
			const order = round % 2 ? beside : [...beside].reverse();
			for (const method of order) {
				const copy = method.run();
				await sleep(500);
				results.get(method.name)!.push(await neighbour(neighbourSeconds));
				await copy;
			}

			console.log(
				`neighbour round ${round} (load ${load()}): ` +
					[...results].map(([name, list]) => `${name} p99 ${list.at(-1)!.p99.toFixed(2)} ms`).join(', '),
			);
		}

		const alone = {
			p99: median(results.get('alone')!.map((r) => r.p99)),
			iops: median(results.get('alone')!.map((r) => r.iops)),
		};
		const p99Of = (name: string) => median(results.get(name)!.map((r) => r.p99));
		console.log(
			`\nneighbour (fio randread 4k qd1, ${neighbourSeconds} s), median of ${rounds}: p99 ms (x alone), IOPS (x alone)`,
		);
		for (const [name, list] of results) {
			const iops = median(list.map((r) => r.iops));
			console.log(
				`  ${name.padEnd(26)} ${p99Of(name).toFixed(2).padStart(7)} (${(p99Of(name) / alone.p99).toFixed(1)}x)  ${iops.toFixed(0).padStart(6)} (${(iops / alone.iops).toFixed(2)}x)`,
			);
		}

		const autoP99 = p99Of('farmclone auto') / alone.p99;
		summary.push(
			`auto beside the neighbour: p99 ${autoP99.toFixed(1)}x alone (<= 3: ${verdict(autoP99 <= 3)}); ` +
				`max ${(p99Of('farmclone max') / alone.p99).toFixed(1)}x, today's copy ${(p99Of(today.name) / alone.p99).toFixed(1)}x, ` +
				`qemu-img -m 8 ${(p99Of('qemu-img -m 8 -W') / alone.p99).toFixed(1)}x (alone ${alone.p99.toFixed(2)} ms)`,
		);
	}

	// ---------------------------------------------------------------- recovery
	// The copy with the neighbour for its first seconds; then how long until the copy writes at >= 0.9x `max`'s
	// copy rate (the copy process's own, the stricter), over half-second windows of the bytes it has written
	// (/proc/PID/io, every 100 ms). Needs `max`'s rate: measured here when the throughput part did not run.
	if (parts.has('recovery')) {
		if (!ddSeconds.has('max')) for (let round = 0; round < 3; round++) await farmclone('max').run();
		const maxRate = copyOnly('max') * 1e6;
		const recoverySeconds = 10;
		startOnQuietDisk = true;
		const recoveryOf = async (method: Method, pidOf: () => number | undefined) => {
			const samples: {at: number; bytes: number}[] = [];
			const rateBetween = (from: (typeof samples)[number], to: (typeof samples)[number]) =>
				(to.bytes - from.bytes) / ((to.at - from.at) / 1000);
			let copying = true;
			// The last round's copy, still in the journal's state until run() clears it.
			const earlier = pidOf();
			const copy = method.run().finally(() => {
				copying = false;
			});
			const sampler = (async () => {
				while (copying) {
					const pid = pidOf();
					const text = pid ? await fs.readFile(`/proc/${pid}/io`, 'utf8').catch(() => '') : '';
					const written = /^wchar: (\d+)$/m.exec(text);
					if (written) samples.push({at: performance.now(), bytes: Number(written[1])});
					await sleep(100);
				}
			})();
			// The neighbour starts 0.3 s into the copy itself: run() first removes and creates the target and
			// waits for a quiet disk (up to a minute), and a neighbour timed from run()'s call overlapped only the
			// copy's first 2 s, or none of it.
			while (copying && [undefined, earlier].includes(pidOf())) await sleep(50);
			await sleep(300);
			const neighbourFrom = performance.now();
			await neighbour(neighbourSeconds);
			const stopped = performance.now();
			await copy;
			await sampler;
			// Seconds the copy went on after the neighbour stopped; negative: it ended first.
			const ranAfter = ((samples.at(-1)?.at ?? 0) - stopped) / 1000;
			// What the copy wrote while the neighbour ran: a copy never held down there has nothing to recover from.
			const beside = samples.filter((sample) => sample.at >= neighbourFrom && sample.at <= stopped);
			const held = beside.length > 1 ? rateBetween(beside[0]!, beside.at(-1)!) : Number.NaN;
			let best = 0;
			for (const [index, sample] of samples.entries()) {
				if (sample.at < stopped) continue;
				const start = samples
					.slice(0, index)
					.reverse()
					.find((earlier) => sample.at - earlier.at >= 500);
				if (!start || start.at < stopped) continue;
				const windowRate = rateBetween(start, sample);
				best = Math.max(best, windowRate);
				if (windowRate >= 0.9 * maxRate) return {seconds: (sample.at - stopped) / 1000, best, ranAfter, held};
			}

			return {seconds: Number.NaN, best, ranAfter, held};
		};

		let todayPid: number | undefined;
		const todayTracked: Method = {
			name: today.name,
			async run() {
				await fs.rm(baselineFile, {force: true});
				await execa('truncate', ['-s', String(size), baselineFile]);
				await quiesce(snapshot.path);
				const [command, ...args] = ['ionice', '-c3', '-t', ...dd('1M')()];
				const started = performance.now();
				const child = execa(command!, args);
				todayPid = child.pid;
				await child;
				todayPid = undefined;
				return (performance.now() - started) / 1000;
			},
		};
		const recovering = [
			{
				method: farmclone('auto'),
				pid: () => (typeof states['copy']?.['pid'] === 'number' ? states['copy']['pid'] : undefined),
			},
			{method: todayTracked, pid: () => todayPid},
		];
		const recoveries = new Map<string, number[]>(recovering.map(({method}) => [method.name, []]));
		const inconclusive = new Map<string, number>();
		const heldRates = new Map<string, number[]>(recovering.map(({method}) => [method.name, []]));
		for (let round = 1; round <= rounds; round++) {
			const order = round % 2 ? recovering : [...recovering].reverse();
			for (const {method, pid} of order) {
				const {seconds: recovered, best, ranAfter, held} = await recoveryOf(method, pid);
				// A copy that ended within the 10 s without getting there says nothing either way: not a failure,
				// not a pass; the round is left out and the verdict needs every round measured.
				const tooShort = Number.isNaN(recovered) && ranAfter < recoverySeconds;
				if (!tooShort) recoveries.get(method.name)!.push(recovered);
				else inconclusive.set(method.name, (inconclusive.get(method.name) ?? 0) + 1);
				const outcome =
					ranAfter < 0
						? 'the copy ended before the neighbour did'
						: tooShort
							? `the copy ended ${ranAfter.toFixed(1)} s after the neighbour stopped, before reaching 0.9x max (best half second ${(best / 1e6).toFixed(0)} MB/s): too short to tell (12G makes it count)`
							: Number.isNaN(recovered)
								? `never at 0.9x max in the ${ranAfter.toFixed(0)} s the copy ran on (best half second ${(best / 1e6).toFixed(0)} MB/s, max ${(maxRate / 1e6).toFixed(0)})`
								: `at 0.9x max ${recovered.toFixed(1)} s after the neighbour stopped`;
				if (!Number.isNaN(held)) heldRates.get(method.name)!.push(held);
				const heldText = Number.isNaN(held) ? '' : `; ${(held / 1e6).toFixed(0)} MB/s beside the neighbour`;
				console.log(`recovery round ${round} (load ${load()}), ${method.name}: ${outcome}${heldText}`);
			}
		}

		for (const [name, list] of recoveries) {
			const measured = list.filter((value) => !Number.isNaN(value));
			const value = measured.length ? median(measured) : Number.NaN;
			const unmeasured = inconclusive.get(name) ?? 0;
			const line =
				`${name} after the neighbour stops: at >= 0.9x max (${(maxRate / 1e6).toFixed(0)} MB/s) in ${Number.isNaN(value) ? '-' : value.toFixed(1)} s, ` +
				`median of the ${measured.length} of ${list.length} rounds that got there` +
				(unmeasured ? ` (${unmeasured} more ended too soon to tell)` : '') +
				(heldRates.get(name)!.length
					? `; ${(median(heldRates.get(name)!) / 1e6).toFixed(0)} MB/s beside the neighbour, median`
					: '');
			console.log(line);
			const everyRound =
				measured.length === list.length && list.length >= 5 && Math.max(...measured) <= recoverySeconds;
			summary.push(
				name === 'farmclone auto'
					? `${line} (<= ${recoverySeconds} s in each of at least 5 rounds: ${verdict(everyRound)})`
					: line,
			);
		}
	}

	console.log(
		`\ndone when (${formatBytes(size)}, medians of ${rounds} alternating rounds, load average ${load()} at the end):`,
	);
	for (const line of summary) console.log(`  ${line}`);
} finally {
	await fs.rm(base, {recursive: true, force: true});
}
