/**
 * The copy of `auto` and `max`, run as a process of its own (detached, like
 * dd): several requests in flight at once, so that reading the next window
 * overlaps writing the last one and the device always has work queued. dd
 * waits for each read before its write and for each write before the next
 * read, which leaves a disk that could take more half idle.
 *
 *   node copier.js if=SOURCE of=TARGET window=BYTES workers=N from=OFFSET to=END [tune=BYTES:N,...] direct|dsync
 *
 * It speaks dd's `status=progress` language on stderr (the copy follows it
 * with the same reader as dd): once a second the bytes from `from` on that are
 * all on the device, counted up to the first window still in flight, so the
 * report is a resume point however the windows finish. Windows run at most
 * `workers` ahead of that point: a copy killed at any moment copies again at
 * most `workers` windows. At the end: fsync, then dd's summary lines.
 *
 * With tune=, the shapes listed (window bytes:workers, each window dividing
 * `window`) are tried on the copy itself and the fastest kept (copy-tuner.ts);
 * a line `farmclone-copy tune: ...` says what each did and which one won.
 */
import {constants as fsConstants} from 'node:fs';
import fs, {type FileHandle} from 'node:fs/promises';
import {retuneBytes, ShapeTuner, shapeText, trialBytes, type Shape} from './copy-tuner.js';

export type CopierArguments = {
	source: string;
	target: string;
	window: number;
	workers: number;
	from: number;
	to: number;
	direct: boolean;
	/** Shapes to try on the copy and pick from; `window`, the largest, is then only the segments' alignment. */
	tune?: Shape[];
};

export const copierName = 'farmclone-copy';

export function copierArguments(request: CopierArguments): string[] {
	const {source, target, window, workers, from, to, direct, tune} = request;
	return [
		`if=${source}`,
		`of=${target}`,
		`window=${window}`,
		`workers=${workers}`,
		`from=${from}`,
		`to=${to}`,
		...(tune ? [`tune=${tune.map((shape) => `${shape.window}:${shape.workers}`).join(',')}`] : []),
		direct ? 'direct' : 'dsync',
	];
}

export function parseCopierArguments(args: string[]): CopierArguments {
	const named = new Map(args.map((arg) => [arg.split('=')[0]!, arg.slice(arg.indexOf('=') + 1)]));
	const number = (name: string) => {
		const value = Number(named.get(name));
		if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name}= must be a whole number of bytes`);
		return value;
	};

	const source = named.get('if');
	const target = named.get('of');
	if (!source || !target) throw new Error('if= and of= are required');
	const request = {
		source,
		target,
		window: number('window'),
		workers: number('workers'),
		from: number('from'),
		to: number('to'),
		direct: named.has('direct'),
	};
	if (request.window === 0 || request.workers === 0) throw new Error('window= and workers= must be above 0');
	const tune = named.get('tune');
	return tune === undefined ? request : {...request, tune: parseShapes(tune, request.window)};
}

function parseShapes(text: string, largest: number): Shape[] {
	return text.split(',').map((item) => {
		const [window, workers] = item.split(':').map(Number);
		if (!Number.isSafeInteger(window) || !Number.isSafeInteger(workers) || !(window! > 0) || !(workers! > 0)) {
			throw new Error(`tune= takes window:workers pairs such as 1048576:2, not "${item}"`);
		}

		// Segments are whole windows of `window`: each must start on a window of every shape.
		if (largest % window! !== 0) throw new Error(`tune= window ${window} does not divide window=${largest}`);
		return {window: window!, workers: workers!};
	});
}

/**
 * Direct I/O wants buffers aligned to the devices' sectors; Node's are only
 * 16-byte aligned: the first offset into a larger buffer that both devices
 * take for a read (a read of the target is harmless, and a device has the
 * same rule for writes).
 */
async function alignedBuffer(probes: FileHandle[], size: number): Promise<Buffer> {
	const raw = Buffer.allocUnsafeSlow(size + 4096);
	for (let shift = 0; shift < 4096; shift += 16) {
		try {
			for (const probe of probes) await probe.read(raw, shift, 4096, 0);
			return raw.subarray(shift, shift + size);
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
		}
	}

	throw new Error('no buffer alignment the device takes for direct I/O');
}

function human(bytes: number): string {
	const units = ['B', 'kB', 'MB', 'GB', 'TB'];
	let value = bytes;
	let unit = 0;
	while (value >= 1000 && unit < units.length - 1) {
		value /= 1000;
		unit++;
	}

	return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** A dd-style report line: what the copy's reader (parseDdOutput) understands. */
export function reportLine(bytes: number, seconds: number): string {
	return `${bytes} bytes (${human(bytes)}) copied, ${seconds.toFixed(3)} s, ${human(bytes / Math.max(seconds, 0.001))}/s`;
}

export async function copy(
	request: CopierArguments,
	write: (text: string) => void,
	sizes?: {trial: number; retune: number},
): Promise<void> {
	const {source, target, window, workers, from, to, direct, tune} = request;
	const directFlag = direct ? fsConstants.O_DIRECT : 0;
	const input = await fs.open(source, fsConstants.O_RDONLY | directFlag);
	// No O_TRUNC: a file-backed volume must keep its size. dsync where direct I/O is refused: a report is still durable.
	const output = await fs.open(target, fsConstants.O_WRONLY | (direct ? directFlag : fsConstants.O_DSYNC));
	const started = performance.now();
	const fixed = {window, workers};
	// Trials of an eighth of a short copy at most (rounded up to whole windows): a 128 MiB one tunes too.
	const tuneSizes = sizes ?? {trial: Math.min(trialBytes, (to - from) / 8), retune: retuneBytes};
	const tuner = tune ? new ShapeTuner(tune, fixed, window, tuneSizes) : undefined;
	// Segments one after the other: the resume point is the current segment's start plus its own.
	let segmentStart = from;
	let segmentDurable = 0;
	let records = 0;
	const durable = () => segmentStart - from + segmentDurable;
	const report = () => write(`${reportLine(durable(), (performance.now() - started) / 1000)}\r`);
	const timer = setInterval(report, 1000);
	let tailOutput: FileHandle | undefined;
	const tail = async () => (tailOutput ??= await fs.open(target, fsConstants.O_WRONLY | fsConstants.O_DSYNC));
	const targetProbe = direct ? await fs.open(target, fsConstants.O_RDONLY | directFlag) : undefined;
	const buffers = new Map<number, Buffer[]>();
	const buffersFor = async ({window, workers}: Shape) => {
		const list = buffers.get(window) ?? [];
		while (list.length < workers) {
			list.push(direct ? await alignedBuffer([input, targetProbe!], window) : Buffer.allocUnsafe(window));
		}

		buffers.set(window, list);
		return list;
	};

	try {
		while (segmentStart < to) {
			const segment = tuner?.next(to - segmentStart) ?? {shape: fixed, bytes: to - segmentStart, trial: false};
			const end = segmentStart + segment.bytes;
			const segmentStarted = performance.now();
			segmentDurable = 0;
			records += await copySegment({
				input,
				output,
				tail,
				direct,
				source,
				target,
				from: segmentStart,
				to: end,
				shape: segment.shape,
				buffers: await buffersFor(segment.shape),
				progress(bytes) {
					segmentDurable = bytes;
				},
			});
			segmentStart = end;
			segmentDurable = 0;
			const chosen = tuner?.measured(segment, (performance.now() - segmentStarted) / 1000);
			if (chosen) {
				const rates = chosen.rates.map(({shape, rate}) => `${shapeText(shape)} ${human(rate)}/s`).join(', ');
				write(`\n${copierName} tune: ${rates}; ${shapeText(chosen.winner)} from byte ${segmentStart} on\n`);
			}
		}

		await output.sync();
	} finally {
		clearInterval(timer);
		await Promise.all([input.close(), output.close(), tailOutput?.close(), targetProbe?.close()]);
	}

	report();
	const recordsText = `${records}+0 records`;
	write(`\n${recordsText} in\n${recordsText} out\n${reportLine(durable(), (performance.now() - started) / 1000)}\n`);
}

type SegmentRequest = {
	input: FileHandle;
	output: FileHandle;
	/** The target opened for writes through the cache: a last window that is not whole sectors. */
	tail: () => Promise<FileHandle>;
	direct: boolean;
	source: string;
	target: string;
	from: number;
	to: number;
	shape: Shape;
	buffers: Buffer[];
	/** Bytes from `from` on that are all written: up to the first window still in flight. */
	progress(bytes: number): void;
};

/** One segment, `workers` windows in flight, all written when it returns; the number of windows. */
async function copySegment(request: SegmentRequest): Promise<number> {
	const {input, output, tail, direct, source, target, from, to, shape, buffers, progress} = request;
	const {window, workers} = shape;
	const windows = Math.ceil((to - from) / window);
	const done = new Array<boolean>(windows).fill(false);
	let firstUndone = 0;
	let next = 0;
	let advanced: () => void = () => undefined;
	let progressed = new Promise<void>((resolve) => (advanced = resolve));
	let failed = false;
	await Promise.all(
		buffers.slice(0, Math.min(workers, windows)).map(async (buffer) => {
			for (;;) {
				if (failed) return;
				// No further ahead of the resume point than one window per worker.
				while (next < windows && next >= firstUndone + workers) await progressed;
				if (next >= windows) return;
				const index = next++;
				const position = from + index * window;
				const size = Math.min(window, to - position);
				try {
					// Direct reads go by whole sectors even at the end: the device's end comes as a short read.
					await readFully(input, buffer, size, direct ? Math.ceil(size / 4096) * 4096 : size, position, source);
					// A last window that is not a whole number of sectors cannot go direct: written through the cache.
					const aligned = !direct || size % 4096 === 0;
					await writeFully(aligned ? output : await tail(), buffer, size, position, target);
				} catch (error) {
					failed = true;
					throw error;
				}

				done[index] = true;
				while (firstUndone < windows && done[firstUndone]) firstUndone++;
				progress(Math.min(to - from, firstUndone * window));
				advanced();
				progressed = new Promise<void>((resolve) => (advanced = resolve));
			}
		}),
	);
	return windows;
}

async function readFully(
	handle: FileHandle,
	buffer: Buffer,
	size: number,
	asked: number,
	position: number,
	file: string,
) {
	let done = 0;
	while (done < size) {
		const {bytesRead} = await handle.read(buffer, done, asked - done, position + done);
		if (bytesRead === 0) throw new Error(`error reading '${file}': it ends at byte ${position + done}`);
		done += bytesRead;
	}
}

async function writeFully(handle: FileHandle, buffer: Buffer, size: number, position: number, file: string) {
	let done = 0;
	while (done < size) {
		const {bytesWritten} = await handle.write(buffer, done, size - done, position + done);
		if (bytesWritten === 0) throw new Error(`error writing '${file}': no space left at byte ${position + done}`);
		done += bytesWritten;
	}
}

async function main(args: string[]): Promise<void> {
	const write = (text: string) => process.stderr.write(text);
	try {
		await copy(parseCopierArguments(args), write);
	} catch (error) {
		const message = (error as Error).message;
		write(`\n${copierName}: ${message.startsWith('error') ? message : `error: ${message}`}\n`);
		process.exitCode = 1;
	}
}

if (process.argv[2]?.startsWith('if=')) await main(process.argv.slice(2));
