import type {Host} from './host.js';

/**
 * Following the files a config includes, read only: farmclone's
 * inspections check what is in them, farmclone never writes them.
 */

/** An included file as farmclone read it; `origin` is the zone origin its relative names take. */
export type IncludedFile = {file: string; text: string; origin?: string};

/** The files read, in the order the server reads them, and notes on those that could not be. */
export type Includes = {files: IncludedFile[]; notes: string[]};

/** One include statement, its path already resolved. */
export type IncludeReference = {
	path: string;
	line: number;
	/** The statement as written, for notes: `include "hosts.conf"`. */
	label: string;
	origin?: string;
	/** The note when the file does not exist, instead of the default one. */
	missingNote?: string;
};

/** Deeper than any admin nests on purpose; a guard against runaway recursion. */
export const includeDepthLimit = 8;

/** `line 3` in the main file, `/etc/dhcp/hosts.conf line 3` in an included one. */
export function whereIn(file: string | undefined, line: number): string {
	return file === undefined ? `line ${line + 1}` : `${file} line ${line + 1}`;
}

/**
 * Reads every file `root` includes, nested ones too, depth first. A missing
 * or unreadable file, a loop, too deep a nesting are notes: the server's own
 * checker refuses those, farmclone only says what it did not check.
 * `references` may throw when it cannot parse an included file: that is a
 * note as well.
 */
export async function followIncludes(
	host: Pick<Host, 'readFileIfExists'>,
	root: IncludedFile,
	references: (file: IncludedFile) => IncludeReference[],
): Promise<Includes> {
	const includes: Includes = {files: [], notes: []};
	const seen = new Set([root.file]);
	const visit = async (current: IncludedFile, chain: string[], isRoot: boolean): Promise<void> => {
		let found: IncludeReference[];
		try {
			found = references(current);
		} catch (error) {
			includes.notes.push(`${current.file}: farmclone cannot read it (${(error as Error).message}); not checked`);
			return;
		}

		for (const reference of found) {
			const where = `${whereIn(isRoot ? undefined : current.file, reference.line)}: ${reference.label}`;
			if (chain.includes(reference.path)) {
				includes.notes.push(`${where}: ${reference.path} is already being read (an include loop); not read again`);
				continue;
			}

			if (seen.has(reference.path)) continue;
			if (chain.length >= includeDepthLimit) {
				includes.notes.push(`${where}: includes nest deeper than ${includeDepthLimit} levels; not read`);
				continue;
			}

			seen.add(reference.path);
			let text: string | undefined;
			try {
				text = await host.readFileIfExists(reference.path);
			} catch (error) {
				includes.notes.push(`${where}: ${reference.path} cannot be read (${(error as Error).message}); not checked`);
				continue;
			}

			if (text === undefined) {
				includes.notes.push(reference.missingNote ?? `${where}: ${reference.path} does not exist; not checked`);
				continue;
			}

			const included: IncludedFile = {file: reference.path, text, origin: reference.origin};
			includes.files.push(included);
			await visit(included, [...chain, reference.path], false);
		}
	};

	await visit(root, [root.file], true);
	return includes;
}
