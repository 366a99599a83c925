import type {ReadOnlyHost} from '../host/host.js';
import type {PreflightContext} from './types.js';

/**
 * The part of a checker's output that says what is wrong, or undefined when it accepts. With
 * `inputs`, the directory its verdict depends on, an acceptance of the same content earlier in this
 * process stands (Host.runCheck).
 */
export async function checkerRefusal(
	host: ReadOnlyHost,
	argv: string[],
	explain: (output: string) => string,
	inputs?: string,
): Promise<string | undefined> {
	const result = inputs ? await host.runCheck(argv, inputs, {reject: false}) : await host.run(argv, {reject: false});
	if (result.exitCode === 0) return undefined;
	return explain(`${result.stdout}\n${result.stderr}`) || `${argv.join(' ')} exited ${result.exitCode}`;
}

/** The file a setting names, or undefined with a finding on that setting. */
export async function readSettingFile(
	context: PreflightContext,
	field: 'zoneFile' | 'dhcpdConf' | 'nginxConf',
): Promise<string | undefined> {
	try {
		const text = await context.host.readFileIfExists(context.settings[field]);
		if (text === undefined) context.add(field, 'no such file');
		return text;
	} catch (error) {
		context.add(field, `cannot be read: ${(error as Error).message}`);
		return undefined;
	}
}

/** A checker's refusal, unless the checker itself is missing: then that alone, not a fault of the file. */
export function refusedBy(checker: string, refusal: string): string {
	const program = checker.split(' ')[0]!;
	return refusal.startsWith(`${program} is not installed`)
		? `cannot be checked: ${refusal}`
		: `${checker} refuses it:\n${refusal}`;
}
