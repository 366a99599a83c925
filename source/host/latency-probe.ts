import {constants as fsConstants} from 'node:fs';
import fs, {type FileHandle} from 'node:fs/promises';

const probeBytes = 4096;
/** A read slower than this says enough: the interval's other probes are skipped (the sample waits for them). */
const enoughMs = 100;

/**
 * What a running VM waits for one small read of its disk: 4 KiB at a random
 * place of a volume on the same disks, direct (no cache), one at a time, as
 * the bench's neighbour reads. Unlike /proc/diskstats' time per request, the
 * copy's own large requests do not count in it, only the delay they and
 * everybody else cause. Not synchronous, though the time then includes the
 * wait for a thread of node's pool: a read of a disk that hangs must not hang
 * the screen, its keys and its signal handlers with it (the idle figure is
 * measured the same way, so the two compare).
 */
export class LatencyProbe {
	/** Probe reads made so far: they are requests of farmclone's own, not the VMs'. */
	reads = 0;

	private constructor(
		private readonly file: FileHandle,
		private readonly size: number,
		private readonly buffer: Buffer,
	) {}

	/** A probe of `file` (`size` bytes), or undefined where direct reads are refused (then diskstats alone). */
	static async open(path: string, size: number): Promise<LatencyProbe | undefined> {
		if (!(size >= probeBytes)) return undefined;
		let file: FileHandle | undefined;
		try {
			file = await fs.open(path, fsConstants.O_RDONLY | fsConstants.O_DIRECT);
			// Direct reads want a buffer aligned to the device's sectors; node's are 16-byte aligned: the first offset that works.
			const raw = Buffer.allocUnsafeSlow(2 * probeBytes);
			for (let shift = 0; shift < probeBytes; shift += 16) {
				const buffer = raw.subarray(shift, shift + probeBytes);
				try {
					await file.read(buffer, 0, probeBytes, 0);
					return new LatencyProbe(file, size, buffer);
				} catch (error) {
					if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
				}
			}
		} catch {}

		await file?.close();
		return undefined;
	}

	/** The median of `count` reads, in milliseconds (undefined when every read failed). */
	async sample(count = 3): Promise<number | undefined> {
		const times: number[] = [];
		for (let index = 0; index < count; index++) {
			const position = Math.floor((Math.random() * (this.size - probeBytes)) / probeBytes) * probeBytes;
			const started = performance.now();
			try {
				await this.file.read(this.buffer, 0, probeBytes, position);
			} catch {
				continue;
			} finally {
				this.reads++;
			}

			times.push(performance.now() - started);
			if (times.at(-1)! > enoughMs) break;
		}

		times.sort((a, b) => a - b);
		return times.length > 0 ? times[Math.floor((times.length - 1) / 2)] : undefined;
	}

	async close(): Promise<void> {
		await this.file.close();
	}
}
