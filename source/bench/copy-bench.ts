/**
 * Copy benchmark: farmclone's copy (the copy stage's own runCopy: detached
 * `ionice -c3 dd` with direct I/O, progress polling, snapshot watching)
 * against a bare `dd if=SRC of=DST bs=1M conv=fsync`, on a simulated farm.
 *
 *   npm run bench -- [size] [rounds]     (or FARMCLONE_BENCH_SIZE, FARMCLONE_BENCH_ROUNDS; default 1G, 5)
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
import {dropCache} from '../host/copy.js';
import {Host} from '../host/host.js';
import {formatBytes, listLvs, parseSize} from '../host/lvm.js';
import {defaultSettings} from '../settings/schema.js';
import {buildSimTree} from '../sim/tree.js';
import {runCopy} from '../stages/copy.js';
import {createVolumeStage} from '../stages/create-volume.js';
import {snapshotStage} from '../stages/snapshot.js';
import type {Facts, StageContext} from '../stages/types.js';

const sizeText = process.argv[2] ?? process.env['FARMCLONE_BENCH_SIZE'] ?? '1G';
const rounds = Number(process.argv[3] ?? process.env['FARMCLONE_BENCH_ROUNDS'] ?? 5);
const size = parseSize(sizeText);
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
	const facts: Facts = {};
	const context: StageContext = {
		settings,
		host,
		facts,
		async record(more) {
			Object.assign(facts, more);
		},
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
	};

	const timeFarmclone = async (): Promise<number> => {
		await createVolumeStage.undo(context);
		await createVolumeStage.apply(context);
		for (const key of Object.keys(facts).filter((key) => key.startsWith('copy.'))) delete facts[key];
		const found = {source: await find(settings.sourceLv), snapshot, target: await find(settings.targetLv)};
		await quiesce(snapshot.path);
		const started = performance.now();
		const outcome = await runCopy(context, found);
		const seconds = (performance.now() - started) / 1000;
		if (outcome.status !== 'completed') throw new Error(`farmclone copy failed: ${outcome.reason}`);
		return seconds;
	};

	const timeBaseline = async (): Promise<number> => {
		await fs.rm(baselineFile, {force: true});
		await quiesce(snapshot.path);
		const started = performance.now();
		await execa('dd', [`if=${snapshot.path}`, `of=${baselineFile}`, 'bs=1M', 'conv=fsync', 'status=none']);
		return (performance.now() - started) / 1000;
	};

	console.log(
		`copy benchmark: ${formatBytes(size)}, ${rounds} rounds, block size ${formatBytes(settings.copyBlockSize)}, ` +
			`${os.cpus().length} CPUs, in ${base}`,
	);
	const ratios: number[] = [];
	for (let round = 1; round <= rounds; round++) {
		let farmclone: number;
		let baseline: number;
		if (round % 2) {
			farmclone = await timeFarmclone();
			baseline = await timeBaseline();
		} else {
			baseline = await timeBaseline();
			farmclone = await timeFarmclone();
		}

		ratios.push(baseline / farmclone);
		console.log(
			`round ${round}: farmclone ${farmclone.toFixed(2)} s ${rate(farmclone)}, ` +
				`bare dd ${baseline.toFixed(2)} s ${rate(baseline)}, ratio ${(baseline / farmclone).toFixed(2)}`,
		);
	}

	console.log(`median throughput ratio farmclone/bare dd: ${median(ratios).toFixed(2)} (target >= 0.95)`);
} finally {
	await fs.rm(base, {recursive: true, force: true});
}
