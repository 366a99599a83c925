import {readFileSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';

let root: string | undefined;

/**
 * The directory farmclone is installed in: the one whose package.json is
 * farmclone's. Looked up from this module's own place, which is
 * source/host/ (tests, tsx), dist/source/host/ or dist/ (the bundle that
 * `farmclone` runs): a path relative to import.meta.url would differ in each.
 */
export function packageRoot(): string {
	if (root) return root;
	let dir = path.dirname(fileURLToPath(import.meta.url));
	for (;;) {
		try {
			const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {name?: string};
			if (manifest.name === 'farmclone') return (root = dir);
		} catch {}

		const parent = path.dirname(dir);
		if (parent === dir) throw new Error(`farmclone's package.json is not above ${fileURLToPath(import.meta.url)}`);
		dir = parent;
	}
}

/** Whether this farmclone runs from its TypeScript sources (the tests, through tsx) rather than built. */
export const fromSources = import.meta.url.endsWith('.ts');

/**
 * One of farmclone's own modules that runs as a process of its own (the
 * firewall watchdog, the simulated farm's stand-ins), named as under source/
 * with its .js ending: the source when farmclone runs from its sources, else
 * the compiled one under dist/ (`compiled` forces that), which the bundle
 * leaves in place for these.
 */
export function ownModule(file: string, compiled = !fromSources): string {
	return compiled
		? path.join(packageRoot(), 'dist', 'source', file)
		: path.join(packageRoot(), 'source', file.replace(/\.js$/, '.ts'));
}

export const ownModuleUrl = (file: string, compiled?: boolean): URL => pathToFileURL(ownModule(file, compiled));
