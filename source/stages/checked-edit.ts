import {unifiedDiff} from '../host/diff.js';
import type {FileDiff, StageContext} from './types.js';
import {StageError} from './types.js';

/** One file's content before (undefined: absent) and after an edit. */
export type FileChange = {path: string; before: string | undefined; after: string | undefined};

export type Checker = {
	argv: string[];
	/** The checker's words worth showing, from its stdout and stderr. */
	explain: (output: string) => string;
	/** Hint shown with a refusal. */
	hint?: (output: string) => string | undefined;
};

export function changeDiffs(changes: FileChange[]): FileDiff[] {
	return changes
		.filter((change) => change.before !== change.after)
		.map((change) => ({path: change.path, diff: unifiedDiff(change.before, change.after, change.path)}));
}

/** Runs the checker; its complaint, or undefined when it accepts the configuration. */
export async function runChecker(context: StageContext, checker: Checker): Promise<string | undefined> {
	const result = await context.host.run(checker.argv, {reject: false});
	if (result.exitCode === 0) return undefined;
	return checker.explain(`${result.stdout}\n${result.stderr}`) || `${checker.argv[0]} exited ${result.exitCode}`;
}

async function put(context: StageContext, file: string, content: string | undefined): Promise<string | undefined> {
	if (content === undefined) {
		await context.host.remove(file);
		return undefined;
	}

	return (await context.host.writeFile(file, content)).backup;
}

/**
 * Write every changed file, then ask the service's own checker. When it
 * refuses, every file gets its old content back and the checker's message
 * is thrown. Returns the backups written, by path.
 */
export async function writeChecked(
	context: StageContext,
	changes: FileChange[],
	checker: Checker,
	what: string,
): Promise<Record<string, string>> {
	const changed = changes.filter((change) => change.before !== change.after);
	const backups: Record<string, string> = {};
	const written: FileChange[] = [];
	let problem: string | undefined;
	let output = '';
	try {
		for (const change of changed) {
			const backup = await put(context, change.path, change.after);
			written.push(change);
			if (backup) backups[change.path] = backup;
		}

		const result = await context.host.run(checker.argv, {reject: false});
		output = `${result.stdout}\n${result.stderr}`;
		if (result.exitCode !== 0) problem = checker.explain(output) || `${checker.argv[0]} exited ${result.exitCode}`;
	} catch (error) {
		problem = error instanceof Error ? error.message : String(error);
	}

	if (problem === undefined) return backups;
	for (const change of written.reverse()) await put(context, change.path, change.before);
	const files = changed.map((change) => change.path).join(', ');
	throw new StageError(
		`${checker.argv.join(' ')} refused ${what}; ${files} put back as before:\n${problem}`,
		checker.hint?.(output),
	);
}
