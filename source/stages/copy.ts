import path from 'node:path';
import {CopyGovernor} from '../host/copy-governor.js';
import {LatencyProbe} from '../host/latency-probe.js';
import {
	blockSizeFor,
	copyDevices,
	workersFor,
	tuneShapesFor,
	copyWorkers,
	limiterFrom,
	makeLimiter,
	parseCopyRate,
	removeLimiter,
	setKernelLimit,
	type Limiter,
} from '../host/copy-rate.js';
import {
	bootId,
	readDdReport,
	removeProgressFile,
	findCopyByProgressFile,
	bothSupportDirectIo,
	copyOutcome,
	copyArgv,
	dropCache,
	firstDifference,
	isAlive,
	killCopy,
	startDetachedCopy,
	watchCopy,
	type CopyJob,
	type CopyOutcome,
} from '../host/copy.js';
import {extendArgv, formatBytes, getLv, getVg, listLvs, parseSize, type LogicalVolume} from '../host/lvm.js';
import {StageError, type Stage, type LookContext, type StageContext} from './types.js';
import {stageState, type StatesView} from './state.js';
import {volumesPreflight} from './volume-ownership.js';
import {farmcloneCommand} from '../host/self.js';
import {copierName} from '../host/copier.js';

const snapshotPollMs = 3000;
const offsetRecordMs = 5000;
/** How long the disks are watched before dd starts, for their latency without the copy. */
const idleSampleMs = 300;
/**
 * After a reboot, a resumed copy starts this far before the last offset dd
 * reported: a device's volatile write cache may have lost the last writes it
 * acknowledged in the power cut; re-copying 64 MiB is cheap insurance.
 * verify() compares everything anyway.
 */
const resumeMarginBytes = 64 * 1024 * 1024;

/** The copy's state in the journal: the dd of this run, what it reads and writes, how far it got. */
type CopyState = {
	/** Announced before dd starts: a farmclone killed right after the start still finds dd by it. */
	pendingProgressFile: string;
	pendingOffset: number;
	pid: number;
	startTime: number;
	progressFile: string;
	startOffset: number;
	total: number;
	blockSize: number;
	snapshotUuid: string;
	targetUuid: string;
	bootId: string;
	/** Bytes copied for sure (a multiple of the block size). */
	offset: number;
	completed: boolean;
	rate: string;
	/** The program that copies: dd (a fixed rate) or farmclone's copier (auto, max). */
	copier: string;
	limiterKind: string;
	limiterDir: string;
	idleLatencyMs: number;
};

const copyState = stageState<CopyState>('copy');

/** Whether the whole disk was copied: later stages read the clone, and the source may go. */
export const copyCompleted = (context: StatesView): boolean => copyState.of(context).completed === true;

/** The clone's volume by uuid (its name changes when Ganeti adopts it), once the copy began. */
export const cloneVolumeUuid = (context: StatesView): string | undefined => copyState.of(context).targetUuid;

export type CopyVolumes = {source: LogicalVolume; snapshot: LogicalVolume; target: LogicalVolume};

async function volumes(context: LookContext): Promise<Partial<CopyVolumes>> {
	const {vg, sourceLv, snapshotLv, targetLv} = context.settings;
	const lvs = await listLvs(context.host, vg);
	const named = (name: string) => lvs.find((lv) => lv.name === name);
	const targetUuid = cloneVolumeUuid(context);
	return {
		source: named(sourceLv),
		snapshot: named(snapshotLv),
		target: (targetUuid && lvs.find((lv) => lv.uuid === targetUuid)) || named(targetLv),
	};
}

function requireVolumes(context: LookContext, found: Partial<CopyVolumes>): CopyVolumes {
	const {vg, sourceLv, snapshotLv, targetLv} = context.settings;
	const {source, snapshot, target} = found;
	if (!source) throw new StageError(`source volume ${vg}/${sourceLv} not found`);
	if (!snapshot) throw new StageError(`snapshot ${vg}/${snapshotLv} not found`, 'the snapshot stage must run first');
	if (snapshot.invalid) throw new StageError(`snapshot ${vg}/${snapshotLv} overflowed`, 'run again: it is recreated');
	if (!target) throw new StageError(`target volume ${vg}/${targetLv} not found`);
	if (target.size < source.size) {
		throw new StageError(`${vg}/${targetLv} has ${target.size} bytes, the source ${source.size}`);
	}

	return {source, snapshot, target};
}

/**
 * The latest dd of this run: the one recorded with its pid, or one whose
 * start was announced (its progress file) but whose pid never reached the
 * journal because farmclone died in between; that one is found by its
 * progress file. A job with pid 0 never started or is gone.
 */
async function latestJob(context: LookContext): Promise<CopyJob | undefined> {
	const state = copyState.of(context);
	const progressFile = state.pendingProgressFile ?? state.progressFile;
	const total = Number(state.total);
	const blockSize = Number(state.blockSize);
	if (typeof progressFile !== 'string' || !(total > 0) || !(blockSize > 0)) return undefined;
	const offset = Number(state.pendingOffset ?? state.startOffset ?? 0);
	if (progressFile === state.progressFile && typeof state.pid === 'number') {
		return {pid: state.pid, startTime: Number(state.startTime), progressFile, offset, total, blockSize};
	}

	const found = await findCopyByProgressFile(progressFile);
	return {pid: found?.pid ?? 0, startTime: found?.startTime ?? -1, progressFile, offset, total, blockSize};
}

/** The recorded copy read this very snapshot into this very volume: its progress counts. */
function sameVolumes(context: LookContext, found: CopyVolumes): boolean {
	const state = copyState.of(context);
	return (
		state.snapshotUuid === found.snapshot.uuid &&
		state.targetUuid === found.target.uuid &&
		state.total === found.source.size
	);
}

/** Bytes a dd that is no longer running said it had written, counted from the start of the volume. */
async function reportedBytes(job: CopyJob): Promise<number> {
	return job.offset + (await readDdReport(job.progressFile)).bytes;
}

/**
 * Where an interrupted copy of the same snapshot onto the same volume picks
 * up, else 0. dd reports once a second the bytes the device has taken (direct
 * I/O or dsync), so in the same boot its last report is durable: at most one
 * report's worth is copied again. After a reboot a device's volatile write
 * cache may have lost the last acknowledged writes: go back a margin more.
 */
async function resumeOffset(context: LookContext, found: CopyVolumes, job: CopyJob | undefined): Promise<number> {
	if (!job || !sameVolumes(context, found)) return 0;
	const state = copyState.of(context);
	const known = Math.max(await reportedBytes(job), Number(state.offset ?? 0));
	const recordedBoot = state.bootId;
	const margin = recordedBoot !== undefined && recordedBoot === (await bootId()) ? 0 : resumeMarginBytes;
	const offset = Math.min(known, found.source.size) - margin;
	return Math.max(0, Math.floor(offset / job.blockSize) * job.blockSize);
}

class SnapshotOverflow extends Error {}

/**
 * Reads the snapshot's fill level every few seconds, in the background (an
 * lvs must not delay noticing that dd is done), and extends the snapshot
 * before it overflows if the settings and the VG allow.
 */
function snapshotGuard(context: StageContext) {
	const {vg, snapshotLv, snapshotWarnPercent, snapshotExtendBy} = context.settings;
	const state = {percent: undefined as number | undefined, polled: 0, nextWarning: snapshotWarnPercent, noRoom: false};
	let inFlight: Promise<void> | undefined;
	let failure: Error | undefined;

	async function extend(percent: number) {
		if (!snapshotExtendBy || state.noRoom) return;
		const group = await getVg(context.host, vg, {quiet: true});
		if (group.free < parseSize(snapshotExtendBy)) {
			state.noRoom = true;
			context.log(`cannot extend ${vg}/${snapshotLv}: only ${formatBytes(group.free)} free in ${vg}`);
		} else if (await context.prompt.confirm(`Snapshot ${percent}% full: extend it by ${snapshotExtendBy}?`)) {
			await context.host.run(extendArgv(vg, snapshotLv, snapshotExtendBy));
			state.nextWarning = snapshotWarnPercent;
		} else {
			state.noRoom = true;
		}
	}

	async function poll() {
		const snapshot = await getLv(context.host, vg, snapshotLv, {quiet: true});
		if (!snapshot) throw new SnapshotOverflow(`snapshot ${vg}/${snapshotLv} disappeared`);
		const percent = snapshot.snapPercent ?? 0;
		state.percent = percent;
		if (snapshot.invalid || percent >= 100) {
			throw new SnapshotOverflow(`snapshot ${vg}/${snapshotLv} overflowed (${percent}%) and is invalid`);
		}

		if (percent < state.nextWarning) return;
		context.log(`warning: snapshot ${vg}/${snapshotLv} is ${percent}% full`);
		state.nextWarning = Math.floor(percent / 5) * 5 + 5;
		await extend(percent);
	}

	function start() {
		state.polled = Date.now();
		inFlight = poll()
			.catch((error: unknown) => {
				failure = error instanceof Error ? error : new Error(String(error));
			})
			.finally(() => {
				inFlight = undefined;
			});
	}

	return {
		state,
		/** Starts a poll when one is due; throws what an earlier one found. */
		tick() {
			if (failure) throw failure;
			if (!inFlight && Date.now() - state.polled >= snapshotPollMs) start();
		},
		/** Waits for the poll under way (or, with `now`, makes one) and throws what it found. */
		async settle(now: boolean) {
			if (now && !inFlight) start();
			await inFlight;
			if (failure) throw failure;
		},
	};
}

/** The recorded dd if it is still copying, else a newly started one (resuming where an interrupted one got). */
async function attachOrStart(context: StageContext, found: CopyVolumes): Promise<CopyJob | 'finished'> {
	const previous = await latestJob(context);
	const ours = previous && sameVolumes(context, found) ? previous : undefined;
	if (previous && !ours && (await isAlive(previous))) {
		throw new StageError(
			`an older copy (dd pid ${previous.pid}) is still running`,
			`${farmcloneCommand(['undo', context.settings.name])} stops it`,
		);
	}

	if (ours && (await isAlive(ours))) {
		context.log(`reattaching to the copy still running as pid ${ours.pid} (same pid and start time as recorded)`);
		if (copyState.of(context).pid !== ours.pid) await recordStarted(context, ours);
		return ours;
	}

	if (ours && (await copyOutcome(ours)).status === 'completed') {
		context.log(`the copy (dd pid ${ours.pid}) finished while farmclone was away`);
		return 'finished';
	}

	const rate = parseCopyRate(context.settings.copyRate);
	const blockSize = blockSizeFor(rate, context.settings.copyBlockSize);
	const total = found.source.size;
	// A resume in another mode may use another block size: dd's skip= and seek= count in the new one.
	const offset = Math.floor((await resumeOffset(context, found, ours)) / blockSize) * blockSize;
	if (ours && offset > 0) {
		const reported = await reportedBytes(ours);
		context.log(
			`dd (pid ${ours.pid || 'unknown'}) stopped after ${formatBytes(reported)}; ${formatBytes(Math.max(0, reported - offset))} are copied again`,
		);
	}

	const progressFile = path.join(context.stateDir, `copy-progress.${Date.now()}.log`);
	if (previous && previous.progressFile !== progressFile) await removeProgressFile(previous.progressFile);
	const previousLimiter = recordedLimiter(context);
	if (previousLimiter) await removeLimiter(previousLimiter);
	// dd's own cgroup, named after its progress file: the kernel keeps it at the limit even with farmclone gone.
	// `max` gets one too, without a limit, so that `-` can still slow it down.
	const limiter = await makeLimiter(`farmclone-${path.basename(progressFile, '.log')}`);
	// The disks' latency before dd adds its own: measured now, as dd's first look must follow its start at once
	// (a short copy would otherwise end unwatched), and recorded for a farmclone that reattaches to this dd.
	const devices = await copyDevices(found.snapshot.path, found.target.path).catch(() => undefined);
	// `max` does not look at the latency: no reason to wait for it.
	let idleLatencyMs: number | undefined;
	if (devices && rate.mode !== 'max') {
		const probe = await LatencyProbe.open(found.source.path, found.source.size);
		idleLatencyMs = await CopyGovernor.idleLatency(devices, idleSampleMs, probe);
		await probe?.close();
	}

	// A fixed rate holds from dd's first block, not from the governor's first look.
	if (rate.mode === 'fixed' && devices) {
		await setKernelLimit(limiter, devices.throttled, rate.bytesPerSecond).catch(() => undefined);
	}
	// Announced before dd starts: a farmclone killed right after the start still finds dd by its progress file.
	await copyState.save(context, {
		pendingProgressFile: progressFile,
		pendingOffset: offset,
		total,
		blockSize,
		snapshotUuid: found.snapshot.uuid,
		targetUuid: found.target.uuid,
		bootId: await bootId(),
		completed: false,
		rate: context.settings.copyRate,
		copier: workersFor(rate) ? copierName : 'dd',
		limiterKind: limiter.kind,
		limiterDir: limiter.dir,
		idleLatencyMs,
	});
	// The idle class only for a fixed rate: `auto`'s governor is its gentleness, and behind any other I/O
	// of a busy host the idle class would keep it from full speed once the VMs go quiet.
	const idleClass = rate.mode === 'fixed';
	const request = {
		source: found.snapshot.path,
		target: found.target.path,
		total,
		blockSize,
		offset,
		progressFile,
		idleClass,
		workers: workersFor(rate),
		tune: tuneShapesFor(rate, context.settings.copyBlockSize),
	};
	const job = await startDetachedCopy(context.host, request, limiter);
	context.log(`${offset ? `resuming at ${formatBytes(offset)}: ` : ''}${job.argv.join(' ')} (pid ${job.pid})`);
	await recordStarted(context, job);
	return job;
}

async function recordStarted(context: StageContext, job: CopyJob): Promise<void> {
	await copyState.save(context, {
		pid: job.pid,
		startTime: job.startTime,
		progressFile: job.progressFile,
		startOffset: job.offset,
	});
}

/** Forget the copy so far: the next one starts at byte 0. */
async function discardCopy(context: StageContext): Promise<void> {
	await copyState.save(context, {
		offset: 0,
		completed: false,
		progressFile: undefined,
		pendingProgressFile: undefined,
	});
}

/**
 * Starts dd detached (or reattaches to the one still running), follows it
 * while watching the snapshot, and records how far it got: the exact path
 * the copy benchmark measures. An abort stops following, never dd.
 */
export async function runCopy(context: StageContext, found: CopyVolumes): Promise<CopyOutcome> {
	const guard = snapshotGuard(context);
	let job: CopyJob | undefined;
	let governor: CopyGovernor | undefined;
	try {
		const attached = await attachOrStart(context, found);
		let outcome: CopyOutcome = {status: 'completed', bytes: found.source.size};
		if (attached !== 'finished') {
			const running = (job = attached);
			// The snapshot's first look is taken at the copy's start: a copy shorter than a poll is still watched.
			guard.tick();
			governor = await startGovernor(context, found, running);
			let recorded = Date.now();
			outcome = await watchCopy(running, {
				signal: context.signal,
				async onProgress(report) {
					const status = governor?.status();
					context.progress({
						...report,
						snapshotPercent: guard.state.percent,
						rateMode: status?.mode,
						rateLimit: status?.limit,
						diskLatencyMs: status?.latencyMs,
						idleLatencyMs: status?.idleLatencyMs,
						otherRequestsPerSecond: status?.otherRequestsPerSecond,
					});
					if (Date.now() - recorded < offsetRecordMs) return;
					recorded = Date.now();
					await copyState.save(context, {offset: Math.floor(report.bytes / running.blockSize) * running.blockSize});
				},
				async onTick() {
					guard.tick();
					await governor?.tick();
				},
			});
		}

		if (outcome.status === 'completed' || !(await isAlive(running(job)))) await dropLimiter(context);

		// An overflowed snapshot fails reads, so a dd that read it all read it while valid. One that failed
		// may have failed because of that: then it is no resumable failure, the snapshot is lost.
		await guard.settle(outcome.status === 'failed');
		return outcome;
	} catch (error) {
		if (!(error instanceof SnapshotOverflow)) throw error;
		if (job) await killCopy(job);
		await dropLimiter(context);
		await discardCopy(context);
		throw new StageError(
			`${error.message}: the copy read from it is garbage and was stopped; it will be redone from scratch`,
			'run farmclone again: the snapshot is recreated and the copy starts over (give it a larger snapshotSize)',
		);
	} finally {
		governor?.stop();
	}
}

function running(job: CopyJob | undefined): Pick<CopyJob, 'pid' | 'startTime'> {
	return job ?? {pid: 0, startTime: -1};
}

/** The recorded dd's cgroup, if any. */
function recordedLimiter(context: StatesView): Limiter | undefined {
	const {limiterKind, limiterDir} = copyState.of(context);
	return limiterFrom(limiterKind, limiterDir);
}

async function dropLimiter(context: StageContext): Promise<void> {
	const limiter = recordedLimiter(context);
	if (limiter) await removeLimiter(limiter);
}

/**
 * The rate keeper of a started or reattached dd, in the mode it was started
 * with (`max`: no limit until `-`). A reattached dd keeps its group; one
 * started before this version (no group recorded) is paced by the copy itself.
 */
async function startGovernor(
	context: StageContext,
	found: CopyVolumes,
	job: CopyJob,
): Promise<CopyGovernor | undefined> {
	const state = copyState.of(context);
	const text = state.rate;
	const rate = parseCopyRate(typeof text === 'string' ? text : context.settings.copyRate);
	const devices = await copyDevices(found.snapshot.path, found.target.path).catch(() => undefined);
	if (!devices) return undefined;
	const limiter = recordedLimiter(context) ?? {kind: 'pacing' as const};
	const idle = typeof state.idleLatencyMs === 'number' ? state.idleLatencyMs : undefined;
	// The same small reads as the idle latency's, of a volume on the same disks: what a VM there waits.
	const probe = rate.mode === 'auto' ? await LatencyProbe.open(found.source.path, found.source.size) : undefined;
	return new CopyGovernor(job.pid, rate, devices, limiter, job.blockSize, idle, probe);
}

function percent(bytes: number, total: number): string {
	return `${total > 0 ? Math.floor((bytes / total) * 100) : 0} %`;
}

export const copyStage: Stage = {
	id: 'copy',
	title: 'Copy the disk',
	summary: `the snapshot copied to the target volume at copyRate (${copyWorkers} requests in flight; dd at a fixed rate), detached, with direct I/O and live progress`,
	danger: 'typed',
	skippable: false,
	preflight: [volumesPreflight],
	async check(context) {
		const {total} = copyState.of(context);
		if (copyCompleted(context)) {
			const {target} = await volumes(context);
			if (target && typeof total === 'number' && target.size >= total) {
				return {status: 'done', detail: `copied ${formatBytes(total)} to ${context.settings.vg}/${target.name}`};
			}

			return {status: 'pending', detail: 'the copied volume is gone: copy again'};
		}

		const job = await latestJob(context);
		if (job && (await isAlive(job))) {
			const bytes = await reportedBytes(job);
			return {
				status: 'pending',
				detail: `dd is still copying (pid ${job.pid}): ${percent(bytes, job.total)}, ${formatBytes(bytes)} of ${formatBytes(job.total)}; farmclone follows it`,
				underway: true,
			};
		}

		if (job && (await copyOutcome(job)).status === 'completed') {
			return {
				status: 'pending',
				detail: `dd (pid ${job.pid}) finished while farmclone was away: to be verified`,
				underway: true,
			};
		}

		const found = await volumes(context);
		const ready = found.source && found.snapshot && found.target ? (found as CopyVolumes) : undefined;
		const offset = ready ? await resumeOffset(context, ready, job) : 0;
		if (job && offset > 0) {
			const reported = await reportedBytes(job);
			return {
				status: 'pending',
				detail: `the copy stopped at ${percent(reported, job.total)} (${formatBytes(reported)}; dd is gone): resumes at ${formatBytes(offset)}`,
			};
		}

		return {status: 'pending', detail: 'not copied yet'};
	},
	async plan(context) {
		const {vg, snapshotLv, targetLv, copyBlockSize, copyRate} = context.settings;
		const rate = parseCopyRate(copyRate);
		const notes = [
			'the copy runs detached: it survives a dropped SSH session, and the next run reattaches to it',
			'direct I/O where the devices take O_DIRECT, else synchronous writes',
			rate.mode === 'auto'
				? `copyRate auto: ${copyWorkers} requests in flight at full speed while the disks are otherwise idle, slowed (a cgroup limit) while VMs wait on them; + and - change it`
				: rate.mode === 'max'
					? `copyRate max: full speed, ${copyWorkers} requests in flight; - slows it down`
					: `copyRate ${copyRate}: limited by the kernel (cgroup), or paced by farmclone where there is none; + and - change it`,
		];
		const job = await latestJob(context);
		if (job && (await isAlive(job))) {
			return {commands: [], diffs: [], notes: [`dd (pid ${job.pid}) is still copying: farmclone follows it`]};
		}

		if (job && (await copyOutcome(job)).status === 'completed') {
			return {
				commands: [],
				diffs: [],
				notes: ['dd finished while farmclone was away: the copy is compared with the snapshot'],
			};
		}

		const found = await volumes(context);
		const {source, snapshot, target} = found;
		const ready = source && snapshot && target ? {source, snapshot, target} : undefined;
		const request = {
			source: snapshot?.path ?? `<lv_path of ${vg}/${snapshotLv}>`,
			target: target?.path ?? `<lv_path of ${vg}/${targetLv}>`,
			total: source?.size ?? 0,
			blockSize: blockSizeFor(rate, copyBlockSize),
			offset: ready ? await resumeOffset(context, ready, job) : 0,
			idleClass: rate.mode === 'fixed',
			workers: workersFor(rate),
			tune: tuneShapesFor(rate, copyBlockSize),
		};
		const directIo = ready ? await bothSupportDirectIo(request.source, request.target) : true;
		notes.unshift(
			`overwrites ${vg}/${targetLv} (${formatBytes(request.total)}) from ${formatBytes(request.offset)} on`,
		);
		return {commands: [copyArgv(request, directIo)], diffs: [], notes};
	},
	async apply(context) {
		const found = requireVolumes(context, await volumes(context));
		const outcome = await runCopy(context, found);
		if (outcome.status === 'failed') {
			const block = Number(copyState.of(context).blockSize) || context.settings.copyBlockSize;
			const offset = Math.floor(outcome.bytes / block) * block;
			await copyState.save(context, {offset});
			throw new StageError(
				`copy failed: ${outcome.reason}`,
				`resume the copy with: ${farmcloneCommand(['run', context.settings.name])}`,
			);
		}

		await copyState.save(context, {completed: true, offset: outcome.bytes});
	},
	async verify(context) {
		const {vg, snapshotLv} = context.settings;
		const {source, snapshot, target} = await volumes(context);
		const total = Number(copyState.of(context).total);
		if (!copyCompleted(context) || !target) throw new StageError('the copy has not completed');
		if (!snapshot || snapshot.invalid || !source) {
			context.log(`${vg}/${snapshotLv} is gone: the copy cannot be compared again, trusting dd's report`);
			return;
		}

		const difference = await firstDifference(snapshot.path, target.path, total);
		await Promise.all([dropCache(context.host, snapshot.path), dropCache(context.host, target.path)]);
		if (difference !== undefined) {
			await discardCopy(context);
			throw new StageError(`the copy differs from the snapshot at byte ${difference}`, 'run again to copy afresh');
		}
	},
	async undoPlan(context) {
		const job = await latestJob(context);
		return {
			commands: job && (await isAlive(job)) ? [['kill', String(job.pid)]] : [],
			diffs: [],
			notes: ['the copied volume itself goes with the target volume stage'],
		};
	},
	async undo(context) {
		const job = await latestJob(context);
		if (job && (await killCopy(job))) context.log(`stopped the copy (dd pid ${job.pid})`);
		await dropLimiter(context);
	},
};
