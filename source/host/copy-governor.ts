import fs from 'node:fs/promises';
import {
	autoStep,
	groupRequests,
	onCopyRateNudge,
	readDiskstats,
	setKernelLimit,
	type AutoState,
	type CopyDevices,
	type CopyRate,
	type DiskSample,
	type Limiter,
} from './copy-rate.js';
import type {LatencyProbe} from './latency-probe.js';

export type GovernorStatus = {
	/** The limit in force, bytes per second; undefined: none. */
	limit: number | undefined;
	/** Milliseconds a small read of farmclone's own took (else the mean per request on the shared disks), last interval. */
	latencyMs: number | undefined;
	idleLatencyMs: number | undefined;
	/** Other processes' requests per second on the shared disks, last interval (the VMs at work). */
	otherRequestsPerSecond: number | undefined;
	mode: CopyRate['mode'] | 'manual';
};

// Every poll of the copy (250 ms): a neighbour who comes is seen within a quarter of a second.
const sampleMs = 200;

/** Bytes dd has read plus written, from /proc/<pid>/io (root may read any process's). */
async function processBytes(pid: number): Promise<number | undefined> {
	const text = await fs.readFile(`/proc/${pid}/io`, 'utf8').catch(() => undefined);
	if (text === undefined) return undefined;
	const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
	const total = field('rchar') + field('wchar');
	return Number.isFinite(total) ? total : undefined;
}

/**
 * Keeps a running dd at its rate: applies a fixed limit, or in `auto`
 * watches the shared disks four times a second and moves the limit (autoStep).
 * The kernel enforces it through dd's cgroup; with no cgroup the governor
 * paces dd itself, stopping it (SIGSTOP) while it is ahead of the limit.
 * A farmclone that goes away leaves dd at its last limit; the next one
 * takes over.
 */
export class CopyGovernor {
	private readonly auto: AutoState;
	private mode: GovernorStatus['mode'];
	private last: {disk: DiskSample; own: number | undefined; bytes: number | undefined; probeReads: number} | undefined;
	private latencyMs: number | undefined;
	private otherRequestsPerSecond: number | undefined;
	private applied: number | undefined | null = null;
	private paced: {startedMs: number; startBytes: number} | undefined;
	private busy = false;
	private stopped = false;
	private readonly unsubscribe: () => void;

	constructor(
		private readonly pid: number,
		private readonly rate: CopyRate,
		private readonly devices: CopyDevices,
		private readonly limiter: Limiter,
		private readonly blockSize: number,
		idleLatencyMs: number | undefined,
		/** Reads what a VM would wait (auto only): its reads are told apart from the VMs'. */
		private readonly probe?: LatencyProbe,
	) {
		this.mode = rate.mode;
		this.auto = {
			limit: rate.mode === 'fixed' ? rate.bytesPerSecond : undefined,
			peakRate: 0,
			quietIntervals: 0,
			idleLatencyMs,
		};
		this.unsubscribe = onCopyRateNudge((delta) => this.nudge(delta));
	}

	/**
	 * The disks' latency before the copy adds its own: the probe's small reads
	 * (the median of a few), else the mean per request over `ms`.
	 */
	static async idleLatency(devices: CopyDevices, ms = 500, probe?: LatencyProbe): Promise<number | undefined> {
		const probed = await probe?.sample(7);
		if (probed !== undefined) return probed;
		const before = await readDiskstats(devices.watched);
		await new Promise((resolve) => setTimeout(resolve, ms));
		const after = await readDiskstats(devices.watched);
		if (!before || !after || after.completed <= before.completed) return undefined;
		return (after.ticks - before.ticks) / (after.completed - before.completed);
	}

	status(): GovernorStatus {
		return {
			limit: this.auto.limit,
			latencyMs: this.latencyMs,
			idleLatencyMs: this.auto.idleLatencyMs,
			otherRequestsPerSecond: this.otherRequestsPerSecond,
			mode: this.mode,
		};
	}

	/** `+` raises the limit by half (lifting it above the copy's peak), `-` lowers it by a third; auto then stops. */
	nudge(delta: 1 | -1): void {
		const current = this.auto.limit ?? Math.max(this.auto.peakRate, 16 * 1024 * 1024);
		this.mode = 'manual';
		if (delta > 0) {
			const raised = current * 1.5;
			this.auto.limit = this.auto.peakRate > 0 && raised > this.auto.peakRate * 1.5 ? undefined : raised;
		} else {
			this.auto.limit = Math.max(1024 * 1024, current / 1.5);
		}

		void this.apply();
	}

	/** Called on every poll of the copy; samples and acts at most every sampleMs. */
	async tick(): Promise<void> {
		if (this.busy || this.stopped) return;
		this.busy = true;
		try {
			await this.sample();
			await this.apply();
			await this.pace();
		} finally {
			this.busy = false;
		}
	}

	private async sample(): Promise<void> {
		const now = performance.now();
		if (this.last && now - this.last.disk.atMs < sampleMs) return;
		// The probe first, so that its reads fall inside this interval's count of requests.
		const probeMs = this.mode === 'auto' ? await this.probe?.sample() : undefined;
		const probeReads = this.probe?.reads ?? 0;
		const [disk, own, bytes] = await Promise.all([
			readDiskstats(this.devices.watched),
			groupRequests(this.limiter, this.devices.throttled),
			processBytes(this.pid),
		]);
		if (!disk) return;
		const previous = this.last;
		this.last = {disk, own, bytes, probeReads};
		if (!previous) return;
		const seconds = (disk.atMs - previous.disk.atMs) / 1000;
		const ownBytes = bytes !== undefined && previous.bytes !== undefined ? bytes - previous.bytes : 0;
		// Without the group's own count, dd's requests are its bytes in blocks (one read and one write each).
		const ownRequests =
			own !== undefined && previous.own !== undefined ? own - previous.own : Math.ceil(ownBytes / this.blockSize);
		const sampleFacts = {
			seconds,
			diskRequests: disk.submitted - previous.disk.submitted,
			ownRequests,
			completed: disk.completed - previous.disk.completed,
			ticks: disk.ticks - previous.disk.ticks,
			// Read and written: each byte copied counts twice.
			ownRate: ownBytes / 2 / Math.max(seconds, 0.001),
			probeMs,
			probeRequests: probeReads - previous.probeReads,
		};
		if (this.mode === 'auto') {
			const decision = autoStep(this.auto, sampleFacts);
			this.latencyMs = decision.latencyMs;
			this.otherRequestsPerSecond = decision.foreignRate;
		} else {
			this.latencyMs = sampleFacts.completed > 0 ? sampleFacts.ticks / sampleFacts.completed : undefined;
			this.otherRequestsPerSecond =
				Math.max(0, sampleFacts.diskRequests - sampleFacts.ownRequests - sampleFacts.probeRequests) /
				Math.max(seconds, 0.001);
			if (this.auto.limit === undefined) this.auto.peakRate = Math.max(this.auto.peakRate, sampleFacts.ownRate);
		}
	}

	private async apply(): Promise<void> {
		if (this.applied === this.auto.limit || this.limiter.kind === 'pacing') return;
		this.applied = this.auto.limit;
		await setKernelLimit(this.limiter, this.devices.throttled, this.auto.limit).catch(() => {
			this.applied = null;
		});
	}

	/** With no cgroup: dd is stopped while it is ahead of the limit, in windows of a second. */
	private async pace(): Promise<void> {
		if (this.limiter.kind !== 'pacing') return;
		const limit = this.auto.limit;
		const bytes = await processBytes(this.pid);
		if (limit === undefined || bytes === undefined) {
			this.paced = undefined;
			return;
		}

		const now = performance.now();
		if (!this.paced || now - this.paced.startedMs > 1000) this.paced = {startedMs: now, startBytes: bytes};
		const copied = (bytes - this.paced.startBytes) / 2;
		const aheadMs = (copied / limit) * 1000 - (now - this.paced.startedMs);
		if (aheadMs <= 5) return;
		try {
			process.kill(this.pid, 'SIGSTOP');
			await new Promise((resolve) => setTimeout(resolve, Math.min(aheadMs, 1000)));
		} finally {
			try {
				process.kill(this.pid, 'SIGCONT');
			} catch {}
		}
	}

	stop(): void {
		this.stopped = true;
		this.unsubscribe();
		// A read still out ends with an error its sample ignores.
		void this.probe?.close().catch(() => undefined);
	}
}
