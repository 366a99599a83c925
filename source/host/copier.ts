/**
 * The copy of `auto` and `max`, run as a process of its own (detached, like
 * dd): several requests in flight at once, so that reading the next window
 * overlaps writing the last one and the device always has work queued. dd
 * waits for each read before its write and for each write before the next
 * read, which leaves a disk that could take more half idle.
 *
 *   node copier.js if=SOURCE of=TARGET window=BYTES workers=N from=OFFSET to=END direct|dsync
 *
 * It speaks dd's `status=progress` language on stderr (the copy follows it
 * with the same reader as dd): once a second the bytes from `from` on that are
 * all on the device, counted up to the first window still in flight, so the
 * report is a resume point however the windows finish. Windows run at most
 * `workers` ahead of that point: a copy killed at any moment copies again at
 * most `workers` windows. At the end: fsync, then dd's summary lines.
 */
import {constants as fsConstants} from 'node:fs';
import fs, {type FileHandle} from 'node:fs/promises';

export type CopierArguments = {
	source: string;
	target: string;
	window: number;
	workers: number;
	from: number;
	to: number;
	direct: boolean;
};

export const copierName = 'farmclone-copy';

export function copierArguments(request: CopierArguments): string[] {
	const {source, target, window, workers, from, to, direct} = request;
	return [
		`if=${source}`,
		`of=${target}`,
		`window=${window}`,
		`workers=${workers}`,
		`from=${from}`,
		`to=${to}`,
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
	return request;
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

export async function copy(request: CopierArguments, write: (text: string) => void): Promise<void> {
	const {source, target, window, workers, from, to, direct} = request;
	const directFlag = direct ? fsConstants.O_DIRECT : 0;
	const input = await fs.open(source, fsConstants.O_RDONLY | directFlag);
	// No O_TRUNC: a file-backed volume must keep its size. dsync where direct I/O is refused: a report is still durable.
	const output = await fs.open(target, fsConstants.O_WRONLY | (direct ? directFlag : fsConstants.O_DSYNC));
	const started = performance.now();
	const windows = Math.ceil((to - from) / window);
	const done = new Array<boolean>(windows).fill(false);
	let firstUndone = 0;
	let next = 0;
	let advanced: () => void = () => undefined;
	let progressed = new Promise<void>((resolve) => (advanced = resolve));
	const durable = () => Math.min(to - from, firstUndone * window);
	const report = () => write(`${reportLine(durable(), (performance.now() - started) / 1000)}\r`);
	const timer = setInterval(report, 1000);
	let tailOutput: FileHandle | undefined;
	let failed = false;
	const targetProbe = direct ? await fs.open(target, fsConstants.O_RDONLY | directFlag) : undefined;
	try {
		await Promise.all(
			Array.from({length: Math.min(workers, windows)}, async () => {
				const buffer = direct ? await alignedBuffer([input, targetProbe!], window) : Buffer.allocUnsafe(window);
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
						if (!aligned) tailOutput ??= await fs.open(target, fsConstants.O_WRONLY | fsConstants.O_DSYNC);
						await writeFully(aligned ? output : tailOutput!, buffer, size, position, target);
					} catch (error) {
						failed = true;
						throw error;
					}

					done[index] = true;
					while (firstUndone < windows && done[firstUndone]) firstUndone++;
					advanced();
					progressed = new Promise<void>((resolve) => (advanced = resolve));
				}
			}),
		);
		await output.sync();
	} finally {
		clearInterval(timer);
		await Promise.all([input.close(), output.close(), tailOutput?.close(), targetProbe?.close()]);
	}

	report();
	const records = `${windows}+0 records`;
	write(`\n${records} in\n${records} out\n${reportLine(durable(), (performance.now() - started) / 1000)}\n`);
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
