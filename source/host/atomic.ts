import fs from 'node:fs/promises';
import path from 'node:path';
import {processStartTime} from './proc.js';

export type AtomicWriteResult = {
	/** Copy of the file as it was before, or undefined when the file is new. */
	backup?: string;
};

let counter = 0;

async function fsyncDir(dir: string): Promise<void> {
	const handle = await fs.open(dir, 'r');
	try {
		await handle.sync();
	} finally {
		await handle.close();
	}
}

function temporaryName(file: string, pid: number, serial: number): string {
	return path.join(path.dirname(file), `.${path.basename(file)}.farmclone-${pid}-${serial}`);
}

/**
 * The temp files of writes to `file` whose process died before the rename
 * (kill -9, power loss). A live process's, even another farmclone's, is
 * left alone: it may be about to rename it.
 */
async function removeLeftTemporaries(file: string): Promise<void> {
	const prefix = `.${path.basename(file)}.farmclone-`;
	const names = await fs.readdir(path.dirname(file)).catch(() => [] as string[]);
	for (const name of names) {
		const pid = /^(\d+)-\d+$/.exec(name.startsWith(prefix) ? name.slice(prefix.length) : '')?.[1];
		if (!pid || Number(pid) === process.pid) continue;
		if ((await processStartTime(Number(pid))) === undefined) {
			await fs.rm(path.join(path.dirname(file), name), {force: true});
		}
	}
}

/**
 * Replace `file` so that a crash at any moment leaves either the old or the
 * new content, never a mix: write a temp file beside it, fsync, rename, fsync
 * the directory. The old content is copied to `backupDir` first, and the
 * file's owner, mode and (through the caller) line endings are kept.
 */
export async function writeFileAtomic(
	file: string,
	content: string,
	options: {backupDir?: string; mode?: number} = {},
): Promise<AtomicWriteResult> {
	const dir = path.dirname(file);
	let previous: import('node:fs').Stats | undefined;
	try {
		previous = await fs.stat(file);
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
	}

	let backup: string | undefined;
	if (previous && options.backupDir) {
		await fs.mkdir(options.backupDir, {recursive: true});
		const stamp = new Date().toISOString().replaceAll(/[:.]/g, '-');
		backup = path.join(options.backupDir, `${path.basename(file)}.${stamp}.${process.pid}.${counter++}`);
		await fs.copyFile(file, backup);
		const handle = await fs.open(backup, 'r');
		await handle.sync();
		await handle.close();
	}

	await removeLeftTemporaries(file);
	const temporary = temporaryName(file, process.pid, counter++);
	const handle = await fs.open(temporary, 'wx', options.mode ?? previous?.mode ?? 0o644);
	try {
		await handle.writeFile(content);
		if (previous) {
			await handle.chmod(previous.mode & 0o7777);
			if (process.getuid?.() === 0) await handle.chown(previous.uid, previous.gid);
		}

		await handle.sync();
	} catch (error) {
		await handle.close();
		await fs.rm(temporary, {force: true});
		throw error;
	}

	await handle.close();
	await fs.rename(temporary, file);
	await fsyncDir(dir);
	return backup ? {backup} : {};
}
