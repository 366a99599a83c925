import {createHash} from 'node:crypto';
import {createReadStream} from 'node:fs';
import fs from 'node:fs/promises';

export const simDiskChunkSize = 1024 * 1024;
export const defaultSimDiskSeed = 0xf3e8d23f;

/**
 * What one 1 MiB chunk of a simulated disk holds. The mix makes a faulty
 * copy show: a copy that drops holes or zero blocks, skips, repeats or
 * reorders chunks, or stops early, hashes differently.
 */
export type ChunkKind = 'random' | 'hole' | 'zero' | 'repeat-previous' | 'repeat-block';

/** A 32-bit mix (murmur3's finaliser): neighbouring inputs give unrelated outputs. */
function mix(value: number): number {
	let hash = value >>> 0;
	hash ^= hash >>> 16;
	hash = Math.imul(hash, 0x85ebca6b);
	hash ^= hash >>> 13;
	hash = Math.imul(hash, 0xc2b2ae35);
	hash ^= hash >>> 16;
	return hash >>> 0;
}

export function chunkKind(index: number, seed: number): ChunkKind {
	if (index === 0) return 'random';
	const roll = mix(seed ^ Math.imul(index, 0x9e3779b9)) % 16;
	if (roll < 2) return 'hole';
	if (roll === 2) return 'zero';
	if (roll === 3) return 'repeat-previous';
	if (roll === 4) return 'repeat-block';
	return 'random';
}

/** xorshift32, seeded per chunk so that any chunk can be made on its own. */
function randomChunk(index: number, seed: number): Buffer {
	const words = new Uint32Array(simDiskChunkSize / 4);
	let state = mix(mix(seed) + index) || 0x6d2b79f5;
	for (let word = 0; word < words.length; word++) {
		state ^= state << 13;
		state ^= state >>> 17;
		state ^= state << 5;
		words[word] = state >>> 0;
	}

	return Buffer.from(words.buffer);
}

/**
 * The content of chunk `index` of the disk made from `seed`, or undefined for
 * a hole (never written, reads as zeros). Chunk 0 starts with a readable
 * label naming the seed, so a human looking at a copy knows what it is.
 */
export function simDiskChunk(index: number, seed: number): Buffer | undefined {
	switch (chunkKind(index, seed)) {
		case 'hole':
			return undefined;
		case 'zero':
			return Buffer.alloc(simDiskChunkSize);
		case 'repeat-previous':
			return simDiskChunk(index - 1, seed) ?? Buffer.alloc(simDiskChunkSize);
		case 'repeat-block': {
			const block = randomChunk(index, seed).subarray(0, 4096);
			const buffer = Buffer.allocUnsafe(simDiskChunkSize);
			for (let offset = 0; offset < simDiskChunkSize; offset += block.length) block.copy(buffer, offset);
			return buffer;
		}

		default: {
			const buffer = randomChunk(index, seed);
			if (index === 0) buffer.write(`farmclone simulated disk, seed ${seed.toString(16)}\n`, 0, 'latin1');
			return buffer;
		}
	}
}

/**
 * Writes a disk image of `size` bytes to `file` (created or replaced),
 * sparse where the pattern has holes, in 1 MiB writes.
 */
export async function writeSimDisk(file: string, size: number, seed = defaultSimDiskSeed): Promise<void> {
	const handle = await fs.open(file, 'w');
	try {
		await handle.truncate(size);
		for (let index = 0; index * simDiskChunkSize < size; index++) {
			const chunk = simDiskChunk(index, seed);
			if (!chunk) continue;
			const offset = index * simDiskChunkSize;
			await handle.write(chunk, 0, Math.min(chunk.length, size - offset), offset);
		}
	} finally {
		await handle.close();
	}
}

/** SHA-256 of a file's content, to compare a copy with its source. */
export async function fileSha256(file: string): Promise<string> {
	const hash = createHash('sha256');
	for await (const chunk of createReadStream(file, {highWaterMark: simDiskChunkSize})) hash.update(chunk as Buffer);
	return hash.digest('hex');
}
