import fs from 'node:fs/promises';
import type {ReadOnlyHost} from './host.js';

/**
 * A guest's filesystem as the identity changes read it: either mounted on
 * the host (apply, which changes it), or read straight from the volume with
 * debugfs (check and plan), which needs no loop device, no mount, and opens
 * the device read-only: looking at a clone never touches another session's
 * mounts nor the volume.
 */
export type GuestEntry = {type: 'file' | 'directory' | 'symlink' | 'other'; size: number};

export type GuestTree = {
	/** Host path of the guest's `/`: a mountpoint, or `/` for a tree read with debugfs. */
	root: string;
	lstat(file: string): Promise<GuestEntry | undefined>;
	readlink(file: string): Promise<string>;
	readdir(dir: string): Promise<string[]>;
	readFile(file: string): Promise<string>;
};

/** The guest mounted at `root`. */
export function mountedTree(root: string): GuestTree {
	return {
		root,
		async lstat(file) {
			try {
				const stat = await fs.lstat(file);
				const type = stat.isFile()
					? 'file'
					: stat.isDirectory()
						? 'directory'
						: stat.isSymbolicLink()
							? 'symlink'
							: 'other';
				return {type, size: stat.size};
			} catch (error) {
				if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
				throw error;
			}
		},
		readlink: async (file) => fs.readlink(file),
		readdir: async (dir) => fs.readdir(dir),
		readFile: async (file) => fs.readFile(file, 'utf8'),
	};
}

const types: Record<string, GuestEntry['type']> = {regular: 'file', directory: 'directory', symlink: 'symlink'};

/** A guest path as one argument of a debugfs request (its own quoting: double quotes, no escapes). */
function quoted(file: string): string {
	if (/["\n]/.test(file)) throw new Error(`${JSON.stringify(file)}: a guest path debugfs cannot be asked about`);
	return `"${file}"`;
}

/**
 * The ext2/3/4 filesystem at byte `offset` of `device`, read with debugfs
 * (without -w it opens the device read-only; the journal is not replayed,
 * as with the `noload` of a read-only mount).
 */
export function debugfsTree(host: ReadOnlyHost, device: string, offset: number): GuestTree {
	const spec = `${device}?offset=${offset}`;
	const ask = async (request: string) => {
		const result = await host.run(['debugfs', '-R', request, spec], {reject: false, quiet: true});
		if (result.exitCode !== 0) {
			throw new Error(`debugfs -R '${request}' ${spec} exited ${result.exitCode}: ${result.stderr.trim()}`);
		}

		return result;
	};

	const stats = new Map<string, Promise<{entry?: GuestEntry; text: string}>>();
	const stat = async (file: string) => {
		let found = stats.get(file);
		if (!found) {
			found = ask(`stat ${quoted(file)}`).then(({stdout, stderr}) => {
				if (/File not found by ext2_lookup/.test(stderr)) return {text: stdout};
				const type = /\bType: (\w+)/.exec(stdout)?.[1];
				if (!type) throw new Error(`debugfs stat ${file}: ${stderr.trim() || 'no inode type in its output'}`);
				const size = Number(/\bSize: (\d+)/.exec(stdout)?.[1] ?? 0);
				return {entry: {type: types[type] ?? 'other', size}, text: stdout};
			});
			stats.set(file, found);
		}

		return found;
	};

	return {
		root: '/',
		lstat: async (file) => (await stat(file)).entry,
		async readlink(file) {
			const {entry, text} = await stat(file);
			if (entry?.type !== 'symlink') throw new Error(`${file} is no symlink in the guest`);
			const fast = /^Fast link dest: "(.*)"$/m.exec(text)?.[1];
			// A long target lives in a data block: `cat` of the link's own inode prints it.
			return fast ?? (await ask(`cat ${quoted(file)}`)).stdout;
		},
		async readdir(dir) {
			const {stdout} = await ask(`ls -p ${quoted(dir)}`);
			// -p: /inode/mode/uid/gid/name/size/
			return stdout
				.split('\n')
				.flatMap((line) => /^\/\d+\/\d+\/\d+\/\d+\/(.*)\/\d*\/$/.exec(line)?.[1] ?? [])
				.filter((name) => name !== '.' && name !== '..');
		},
		readFile: async (file) => (await ask(`cat ${quoted(file)}`)).stdout,
	};
}
