import {createHash} from 'node:crypto';
import {constants as fsConstants, createReadStream} from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {execa} from 'execa';

export const simDiskChunkSize = 1024 * 1024;
export const defaultSimDiskSeed = 0xf3e8d23f;

/**
 * What one 1 MiB chunk of a simulated disk holds. The mix makes a faulty
 * copy show: a copy that drops holes or zero blocks, skips, repeats or
 * reorders chunks, or stops early, hashes differently.
 */
export type ChunkKind = 'random' | 'hole' | 'zero' | 'repeat-previous' | 'repeat-block' | 'filesystem';

/**
 * The source VM's disk (the default seed) is a small Debian-like machine: an
 * MBR partition table, and an ext4 root filesystem in partition 1, from 1 MiB
 * for 8 MiB. Around it the pattern goes on, so a copy still has to be exact
 * everywhere else. Disks too small for it (below 10 MiB) are pattern only.
 */
export const simRoot = {
	seed: defaultSimDiskSeed,
	offset: simDiskChunkSize,
	size: 8 * simDiskChunkSize,
	hostname: 'gallifrey',
	fqdn: 'gallifrey.xivo.vm.farm',
	mac: '52:54:a1:3c:5e:01',
	gitRevision: '2.0.7',
} as const;

const simRootChunks = {
	first: simRoot.offset / simDiskChunkSize,
	end: (simRoot.offset + simRoot.size) / simDiskChunkSize,
};

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
	const root = seed === simRoot.seed;
	if (root && index >= simRootChunks.first && index < simRootChunks.end) return 'filesystem';
	const roll = mix(seed ^ Math.imul(index, 0x9e3779b9)) % 16;
	if (roll < 2) return 'hole';
	if (roll === 2) return 'zero';
	// The chunk before is the filesystem's: nothing to repeat that the pattern knows.
	if (roll === 3) return root && index === simRootChunks.end ? 'random' : 'repeat-previous';
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
		case 'filesystem':
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
 * sparse where the pattern has holes, in 1 MiB writes. The source VM's disk
 * gets its root filesystem when it has room and the tools are installed.
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

	if (seed === simRoot.seed && size >= simRoot.offset + simRoot.size + simDiskChunkSize) await writeSimRoot(file);
}

const toolPath = `${process.env['PATH'] ?? '/usr/bin:/bin'}:/usr/local/sbin:/usr/sbin:/sbin`;
const rootTools = ['sfdisk', 'mkfs.ext4', 'ssh-keygen'];

async function tool(command: string, args: string[], input?: string) {
	return execa(command, args, {env: {PATH: toolPath, LC_ALL: 'C'}, input: input ?? ''});
}

async function onPath(command: string): Promise<boolean> {
	for (const dir of toolPath.split(':')) {
		try {
			await fs.access(path.join(dir, command), fsConstants.X_OK);
			return true;
		} catch {}
	}

	return false;
}

async function hasTools(): Promise<boolean> {
	return (await Promise.all(rootTools.map(async (command) => onPath(command)))).every(Boolean);
}

/** A 32-hex machine-id derived from the seed: the same source machine every time. */
function machineId(seed: number): string {
	return createHash('sha256').update(`machine-id ${seed}`).digest('hex').slice(0, 32);
}

/** What the source VM's root holds: the files that make it `gallifrey`, and a few that make it Debian. */
function rootFiles(): Record<string, string> {
	const id = `${machineId(simRoot.seed)}\n`;
	return {
		'etc/hostname': `${simRoot.hostname}\n`,
		'etc/hosts': [
			'127.0.0.1\tlocalhost',
			`127.0.1.1\t${simRoot.fqdn}\t${simRoot.hostname}`,
			'',
			'# The following lines are desirable for IPv6 capable hosts',
			'::1     localhost ip6-localhost ip6-loopback',
			'ff02::1 ip6-allnodes',
			'ff02::2 ip6-allrouters',
			'',
		].join('\n'),
		'etc/machine-id': id,
		'var/lib/dbus/machine-id': id,
		'etc/debian_version': '12.5\n',
		'etc/fstab': 'LABEL=root\t/\text4\terrors=remount-ro\t0\t1\n',
		'etc/udev/rules.d/70-persistent-net.rules': [
			'# This file was automatically generated by the /lib/udev/write_net_rules',
			'# program, run by the persistent-net-generator.rules rules file.',
			'',
			'# PCI device 0x1af4:0x1000 (virtio-pci)',
			`SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="${simRoot.mac}", ATTR{dev_id}=="0x0", ATTR{type}=="1", KERNEL=="eth*", NAME="eth0"`,
			'',
		].join('\n'),
		'var/lib/dhcp/dhclient.eth0.leases': [
			'lease {',
			'  interface "eth0";',
			'  fixed-address 10.10.60.5;',
			'  option subnet-mask 255.255.255.0;',
			'  option routers 10.10.60.1;',
			'  option domain-name-servers 10.10.60.1;',
			'  option domain-name "farm";',
			'  renew 4 2024/01/11 10:00:00;',
			'  rebind 4 2024/01/11 10:04:00;',
			'  expire 4 2024/01/11 10:05:00;',
			'}',
			'',
		].join('\n'),
		'etc/packaging-farm/packaging-farm.conf': [
			'# packaging-farm configuration of the release farm',
			'PROJECT=xivo',
			'GIT_URL=git://git.xivo.io/official',
			`GIT_REVISION=${simRoot.gitRevision}`,
			'DISTRIBUTION=bookworm',
			'ARCHITECTURES="amd64 i386"',
			'',
		].join('\n'),
		'etc/ssh/sshd_config': [
			'HostKey /etc/ssh/ssh_host_rsa_key',
			'HostKey /etc/ssh/ssh_host_ecdsa_key',
			'HostKey /etc/ssh/ssh_host_ed25519_key',
			'PermitRootLogin prohibit-password',
			'',
		].join('\n'),
	};
}

/**
 * Partition table (sfdisk), root filesystem (`mkfs.ext4 -d` from a tree with
 * host keys from ssh-keygen) written into partition 1 of `file`. Only the
 * filesystem's non-zero blocks are written: the region is a hole before.
 */
async function writeSimRoot(file: string): Promise<void> {
	if (!(await hasTools())) return;
	const work = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-sim-root-'));
	try {
		const tree = path.join(work, 'root');
		for (const [name, content] of Object.entries(rootFiles())) {
			await fs.mkdir(path.join(tree, path.dirname(name)), {recursive: true});
			await fs.writeFile(path.join(tree, name), content);
		}

		for (const dir of ['tmp', 'root', 'home', 'var/log']) await fs.mkdir(path.join(tree, dir), {recursive: true});
		await fs.symlink('../proc/self/mounts', path.join(tree, 'etc/mtab'));
		for (const type of ['rsa', 'ecdsa', 'ed25519']) {
			const key = path.join(tree, 'etc/ssh', `ssh_host_${type}_key`);
			await tool('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `root@${simRoot.hostname}`, '-f', key]);
		}

		const sector = 512;
		const table = `label: dos\nunit: sectors\n\nstart=${simRoot.offset / sector}, size=${simRoot.size / sector}, type=83, bootable\n`;
		await tool('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', file], table);
		const image = path.join(work, 'root.ext4');
		await fs.writeFile(image, '');
		await fs.truncate(image, simRoot.size);
		await tool('mkfs.ext4', ['-q', '-F', '-L', 'root', '-E', 'root_owner=0:0', '-d', tree, image]);
		await copyNonZero(image, file, simRoot.offset);
	} finally {
		await fs.rm(work, {recursive: true, force: true});
	}
}

async function copyNonZero(from: string, to: string, offset: number): Promise<void> {
	const block = 64 * 1024;
	const zero = Buffer.alloc(block);
	const [input, output] = await Promise.all([fs.open(from, 'r'), fs.open(to, 'r+')]);
	try {
		const buffer = Buffer.alloc(block);
		for (let position = 0; ; position += block) {
			const {bytesRead} = await input.read(buffer, 0, block, position);
			if (bytesRead === 0) break;
			const piece = buffer.subarray(0, bytesRead);
			if (!piece.equals(zero.subarray(0, bytesRead))) await output.write(piece, 0, bytesRead, offset + position);
		}
	} finally {
		await Promise.all([input.close(), output.close()]);
	}
}

/** SHA-256 of a file's content, to compare a copy with its source. */
export async function fileSha256(file: string): Promise<string> {
	const hash = createHash('sha256');
	for await (const chunk of createReadStream(file, {highWaterMark: simDiskChunkSize})) hash.update(chunk as Buffer);
	return hash.digest('hex');
}
