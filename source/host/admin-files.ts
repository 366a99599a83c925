import fs from 'node:fs/promises';
import path from 'node:path';
import {execa} from 'execa';
import {withScratchDir} from './scratch.js';

/** A file the admin named on the command line, `-` for stdin. */
export async function readAdminFile(file: string): Promise<string> {
	return file === '-' ? new Response(process.stdin as unknown as ReadableStream).text() : fs.readFile(file, 'utf8');
}

/**
 * Lets the admin edit `text` in $VISUAL, $EDITOR or Debian's `editor`, as a
 * private temp file named `fileName`, until `accept` takes what was saved
 * (returns something other than undefined). The file is removed afterwards.
 */
export async function editInEditor<T>(
	fileName: string,
	text: string,
	accept: (edited: string) => Promise<T | undefined>,
): Promise<T> {
	const editor = process.env['VISUAL'] || process.env['EDITOR'] || 'editor';
	return withScratchDir('farmclone-edit', async (dir) => {
		const file = path.join(dir, fileName);
		await fs.writeFile(file, text);
		for (;;) {
			await execa(editor, [file], {stdio: 'inherit'});
			const accepted = await accept(await fs.readFile(file, 'utf8'));
			if (accepted !== undefined) return accepted;
		}
	});
}
