import {createHash} from 'node:crypto';
import {unifiedDiff} from '../host/diff.js';
import type {FileDiff, FileEdit, LookContext, Plan, StageContext} from './types.js';
import {StageError, StalePlanError} from './types.js';

/** One file's content before (undefined: absent) and after an edit. */
export type FileChange = {path: string; before: string | undefined; after: string | undefined};

export type Checker = {
	argv: string[];
	/** A directory whose content is all the checker's verdict depends on: the same content accepted once in this process is not checked again (Host.runCheck). */
	inputs?: string;
	/** The checker's words worth showing, from its stdout and stderr. */
	explain: (output: string) => string;
	/** Hint shown with a refusal. */
	hint?: (output: string) => string | undefined;
};

/** sha256 of a file's content; 'absent' for no file. */
export function contentHash(content: string | undefined): string {
	return content === undefined ? 'absent' : `sha256:${createHash('sha256').update(content, 'utf8').digest('hex')}`;
}

/** The changed files of an edit, as a plan carries them. */
export function fileEdits(changes: FileChange[]): FileEdit[] {
	return changes
		.filter((change) => change.before !== change.after)
		.map((change) => ({...change, beforeHash: contentHash(change.before)}));
}

/**
 * Throws StalePlanError when a file is no longer the content the plan was
 * computed from. Called right before writing, so nothing is changed yet.
 */
export async function assertUnchanged(context: LookContext, edits: Array<Pick<FileEdit, 'path' | 'beforeHash'>>) {
	const changed: string[] = [];
	for (const edit of edits) {
		const now = contentHash(await context.host.readFileIfExists(edit.path));
		if (now !== edit.beforeHash)
			changed.push(edit.beforeHash === 'absent' ? `${edit.path} appeared` : `${edit.path} changed`);
	}

	if (changed.length > 0) throw new StalePlanError(changed.join(', '));
}

/** The plan's refusal, thrown as the stage's error. */
export function assertPlanCanApply(plan: Plan): void {
	if (plan.refusal !== undefined) throw new StageError(plan.refusal);
}

export function changeDiffs(changes: FileChange[]): FileDiff[] {
	return changes
		.filter((change) => change.before !== change.after)
		.map((change) => ({path: change.path, diff: unifiedDiff(change.before, change.after, change.path)}));
}

/** Runs the checker: its complaint (undefined when it accepts the configuration) and its whole output. */
async function check(context: LookContext, checker: Checker): Promise<{problem?: string; output: string}> {
	const result = checker.inputs
		? await context.host.runCheck(checker.argv, checker.inputs, {reject: false})
		: await context.host.run(checker.argv, {reject: false});
	const output = `${result.stdout}\n${result.stderr}`;
	if (result.exitCode === 0) return {output};
	return {problem: checker.explain(output) || `${checker.argv[0]} exited ${result.exitCode}`, output};
}

/** Runs the checker; its complaint, or undefined when it accepts the configuration. */
export async function runChecker(context: LookContext, checker: Checker): Promise<string | undefined> {
	return (await check(context, checker)).problem;
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
	await assertUnchanged(
		context,
		changed.map((change) => ({path: change.path, beforeHash: contentHash(change.before)})),
	);
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

		({problem, output} = await check(context, checker));
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
