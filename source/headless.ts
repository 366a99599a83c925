import {madeLines} from './engine/made.js';
import type {Answers, Ask, Question} from './engine/api.js';
import type {EngineEvent} from './engine/events.js';
import {StageError, type CheckResult, type Plan} from './stages/types.js';
import type {CommandRecord} from './host/host.js';
import {
	commandOutputLines,
	formatArgv,
	formatDuration,
	progressSummary,
	repeatSuffix,
	sameCommandLine,
	sanitizeLine,
} from './ui/format.js';

/** Prints engine events; `note` prints a line of the headless drivers' own (why a run stops). */
export type HeadlessPrinter = ((event: EngineEvent) => void) & {
	note(text: string, stage?: string): void;
	/** Prints the command line held back for folding (call once the run is over). */
	flush(): void;
};

export type HeadlessPrinterOptions = {
	/** One JSON object per line instead of text. */
	json: boolean;
	/** Gets each line, without its newline. */
	write: (line: string) => void;
	now?: () => number;
	/** The run's stages, for "[3/14]" prefixes; without them lines start with the stage id. */
	stages?: ReadonlyArray<{id: string}>;
	/** Least time between two progress lines of a stage; the final 100% is always printed. */
	progressIntervalMs?: number;
};

function planSummary(plan: Plan): string {
	const parts: string[] = [];
	if (plan.commands.length > 0) {
		parts.push(
			plan.commands.length === 1 ? `$ ${formatArgv(plan.commands[0] ?? [])}` : `${plan.commands.length} commands`,
		);
	}

	for (const file of plan.diffs) {
		const lines = file.diff.split('\n');
		const added = lines.filter((line) => line.startsWith('+') && !line.startsWith('+++')).length;
		const removed = lines.filter((line) => line.startsWith('-') && !line.startsWith('---')).length;
		parts.push(`edit ${file.path} (+${added} -${removed})`);
	}

	return parts.length > 0 ? parts.join(', ') : 'nothing to run';
}

/** A command's line, its count when it stands for several, and on failure its output's tail (cuts marked). */
function commandText(command: CommandRecord, repeats: number): string[] {
	const line = `$ ${formatArgv(command.argv)} -> exit ${command.exitCode}${repeatSuffix(repeats)}`;
	if (command.exitCode === 0) return [line];
	return [line, ...commandOutputLines(command.stderr || command.stdout, 3, command.log).map((tail) => `    ${tail}`)];
}

/**
 * The event stream as lines for a log file or a terminal that cannot host the
 * TUI: one line per event (a failure adds its detail and hint), copy progress
 * at most once per interval. With `json`, the events as they are, each with
 * the time `at` it was printed.
 */
export function createHeadlessPrinter(options: HeadlessPrinterOptions): HeadlessPrinter {
	const now = options.now ?? Date.now;
	const interval = options.progressIntervalMs ?? 1000;
	const lastProgress = new Map<string, {at: number; final: boolean}>();
	const checks = new Map<string, CheckResult>();

	const prefix = (stage: string) => {
		const index = options.stages?.findIndex((candidate) => candidate.id === stage) ?? -1;
		return index >= 0 && options.stages ? `[${index + 1}/${options.stages.length}] ${stage}` : stage;
	};

	/** Whether this progress event gets a line: the first, then one per interval, and the final one once. */
	const progressDue = (event: Extract<EngineEvent, {type: 'progress'}>) => {
		const {bytes, total} = event.progress;
		const final = total > 0 && bytes >= total;
		const last = lastProgress.get(event.stage);
		const at = now();
		const due = final ? !last?.final : !last || at - last.at >= interval;
		if (due) lastProgress.set(event.stage, {at, final});
		return due;
	};

	const text = (event: EngineEvent): string[] => {
		switch (event.type) {
			case 'run-start':
				return [`farmclone ${event.farm}: ${event.resumed ? 'resuming' : 'starting'}`];
			case 'preflight':
				return [];
			case 'check':
				checks.set(event.stage, event.result);
				return [
					`${prefix(event.stage)}: check: ${event.result.status}${event.result.detail ? ` (${event.result.detail})` : ''}`,
				];
			case 'plan':
				return [`${prefix(event.stage)}: plan: ${planSummary(event.plan)}`];
			case 'stage-start':
				lastProgress.delete(event.stage);
				return [`${prefix(event.stage)}: started`];
			case 'progress':
				return [`${prefix(event.stage)}: ${progressSummary(event.progress)}`];
			case 'stage-done': {
				const check = checks.get(event.stage);
				const already = event.seconds === 0 && check?.status === 'done';
				return [`✔ ${event.stage} (${already ? `already done: ${check.detail}` : formatDuration(event.seconds)})`];
			}

			case 'stage-skipped':
				return [`↷ ${event.stage} skipped: ${event.reason}`];
			case 'stage-failed': {
				const [first = '', ...rest] = event.error.split('\n');
				return [
					`✘ ${event.stage} failed: ${first}`,
					...rest.map((line) => `    ${line}`),
					...(event.hint ? [`  hint: ${event.hint}`] : []),
				];
			}

			case 'stage-undone':
				return [`↺ ${event.stage} undone`];
			case 'stage-reopened':
				return [`· ${event.stage} no longer done: ${event.detail}`];
			case 'command':
				return commandText(event.command, 1);

			case 'log':
				return event.text.split('\n').map((line) => `${prefix(event.stage)}: ${line}`);
			case 'run-end':
				return [
					`farmclone ${event.farm}: ${event.outcome}${event.message ? `: ${event.message}` : ''}`,
					...(event.made ? madeLines(event.made) : []),
				];
		}
	};

	/**
	 * Identical commands in a row (same argv and exit code: lvs polled during
	 * the copy) print one line with their count, and the last one's output.
	 */
	let held: {command: CommandRecord; repeats: number} | undefined;
	const flush = () => {
		if (!held) return;
		for (const line of commandText(held.command, held.repeats)) options.write(sanitizeLine(line));
		held = undefined;
	};

	const print = (event: EngineEvent) => {
		if (event.type === 'progress' && !progressDue(event)) return;
		// The preflight's progress is for a screen; a log gets its end only, and only as JSON.
		if (event.type === 'preflight' && (!options.json || event.done < event.total)) return;
		if (options.json) {
			if (event.type === 'check') checks.set(event.stage, event.result);
			options.write(JSON.stringify({...event, at: new Date(now()).toISOString()}));
			return;
		}

		if (event.type === 'command') {
			if (held && sameCommandLine(held.command, event.command)) {
				held = {command: event.command, repeats: held.repeats + 1};
				return;
			}

			flush();
			held = {command: event.command, repeats: 1};
			if (event.command.exitCode !== 0) flush();
			return;
		}

		flush();
		for (const line of text(event)) options.write(sanitizeLine(line));
		if (event.type === 'run-end') flush();
	};

	return Object.assign(print, {
		note(line: string, stage = '') {
			flush();
			if (options.json)
				options.write(JSON.stringify({type: 'log', stage, text: line, at: new Date(now()).toISOString()}));
			else options.write(sanitizeLine(line));
		},
		flush,
	});
}

export type HeadlessAskOptions = {
	farm: string;
	/** --yes: answer every question with its default and run every stage. */
	yes: boolean;
	/** --confirm NAME: the typed answer to the typed confirmations (dangerous stages, undo). */
	confirm?: string;
	printer: HeadlessPrinter;
};

/**
 * Headless answers to what the TUI would ask. With --yes: yes, the first
 * choice, run. A typed confirmation gets --confirm's text, whatever it is:
 * the engine compares it with what it expects and stops the run when it is
 * not; a missing or wrong one is said here with how to give it.
 */
export function createHeadlessAsk(options: HeadlessAskOptions): Ask {
	const {yes, confirm, printer} = options;
	const needsAnswer = (message: string) =>
		new StageError(`"${message}" needs an answer and there is no terminal to ask`, 'rerun with --yes');

	const answers: {[K in Question['kind']]: (question: Extract<Question, {kind: K}>) => Promise<Answers[K]>} = {
		async gate({stage}) {
			if (yes) return 'run';
			printer.note(`stopping before ${stage.id}: there is no terminal to ask; rerun with --yes`, stage.id);
			return 'quit';
		},
		async confirm({message}) {
			if (!yes) throw needsAnswer(message);
			printer.note(`? ${message} -> yes (--yes)`);
			return true;
		},
		async choose({message, choices}) {
			const first = choices[0];
			if (!yes) throw needsAnswer(message);
			if (!first) throw new StageError(`"${message}" offers nothing to choose`);
			printer.note(`? ${message} -> ${first.label} (--yes)`);
			return first.value;
		},
		async typed({message, expected, stage}) {
			if (confirm === expected) return confirm;
			if (stage) {
				const given = confirm === undefined ? '' : ` (--confirm ${confirm} is not the farm's name)`;
				printer.note(
					`stopping before ${stage.id}: ${stage.title} asks for the farm's name to be typed${given}; rerun with --confirm ${expected}`,
					stage.id,
				);
			} else {
				printer.note(`stopping at "${message}": rerun with --confirm ${expected}`);
			}

			return confirm;
		},
		// Reached only with --restart-firewall (or a headless undo): a scripted run accepts the risk.
		async firewall({request}) {
			printer.note(
				`firewall restarted: kept without proof (headless); to prove new SSH connections get in, run ${request.command} from a new ssh connection`,
			);
			return 'headless';
		},
	};
	return async (question) => (answers[question.kind] as (question: Question) => Promise<never>)(question);
}
