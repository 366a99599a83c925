/**
 * The test kit for stages: a StageContext built by hand around a real Host,
 * a stage that refuses to be called (for screens and printers, which must
 * only show a stage), and the assertion that a stage refused with words.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import type {Answers, Ask, Question, RunRequest} from '../../source/engine/api.js';
import {runEngine} from '../../source/engine/engine.js';
import type {EngineEvent} from '../../source/engine/events.js';
import {Host} from '../../source/host/host.js';
import {defaultSettings, type FarmSettings} from '../../source/settings/schema.js';
import {StageError, type Danger, type Prompt, type Stage, type StageContext} from '../../source/stages/types.js';
import {statesInMemory, type StageStates} from '../../source/stages/state.js';

export type Harness = {context: StageContext; states: StageStates; logs: string[]};

/**
 * A context for calling a stage directly: its state and log lines kept in
 * memory, settings updates applied to `settings`, questions answered no
 * (the first choice for a choice), never aborted.
 */
export function stageContext(settings: FarmSettings, stateDir: string, states: StageStates = {}): Harness {
	const logs: string[] = [];
	const context: StageContext = {
		settings,
		host: new Host({commandPath: settings.commandPath, backupDir: path.join(stateDir, 'backups')}),
		...statesInMemory(states),
		updateSettings: async () => undefined,
		stateDir,
		log: (text) => logs.push(text),
		progress: () => undefined,
		prompt: {
			confirm: async () => false,
			choose: async (_message, choices) => choices[0]!.value,
			typed: async () => false,
		},
		signal: new AbortController().signal,
	};
	return {context, states, logs};
}

/** `promise` rejects with a StageError whose message matches `pattern` (and its hint `hint`). */
export async function refuses(promise: Promise<unknown>, pattern: RegExp, hint?: RegExp): Promise<void> {
	await assert.rejects(promise, (error: unknown) => {
		assert.ok(error instanceof StageError, String(error));
		assert.match(error.message, pattern);
		if (hint) assert.match(error.hint ?? '', hint);
		return true;
	});
}

/** A stage for what only shows stages: each of its steps throws if called. */
export function fakeStage(id: string, options: {danger?: Danger; skippable?: boolean; title?: string} = {}): Stage {
	const refuse = async (): Promise<never> => {
		throw new Error('not called');
	};
	return {
		id,
		title: options.title ?? id,
		summary: id,
		danger: options.danger ?? 'none',
		skippable: options.skippable ?? false,
		check: refuse,
		plan: refuse,
		apply: refuse,
		verify: refuse,
		undo: refuse,
	};
}

/** Answers yes to every question, the first choice to a choice, and every typed confirmation. */
export const yesPrompt: Prompt = {
	confirm: async () => true,
	choose: async (_message, choices) => choices[0]!.value,
	typed: async () => true,
};

export type GateQuestion = Extract<Question, {kind: 'gate'}>;

/**
 * The one question interface as a test answers it: gates by `gate`, the rest
 * as `prompt` would (a typed question gets the expected text when
 * `prompt.typed` says yes, nothing otherwise).
 */
export function askWith(
	gate: (question: GateQuestion) => Promise<Answers['gate']> = async () => 'run',
	prompt: Prompt = yesPrompt,
): Ask {
	const answer = async (question: Question): Promise<Answers[Question['kind']]> => {
		switch (question.kind) {
			case 'gate':
				return gate(question);
			case 'confirm':
				return prompt.confirm(question.message, {timeoutSeconds: question.timeoutSeconds});
			case 'choose':
				return prompt.choose(question.message, question.choices);
			case 'typed':
				return (await prompt.typed(question.message, question.expected)) ? question.expected : undefined;
			case 'firewall':
				return prompt.firewallWait ? prompt.firewallWait(question.request) : 'headless';
		}
	};

	return answer as Ask;
}

/**
 * The engine on `stages`, every gate answered run and every question yes
 * unless `request` says otherwise; the events it sent, in order.
 */
export async function runStages(
	stages: Stage[],
	stateDir: string,
	request: Partial<Omit<RunRequest, 'stages' | 'stateDir' | 'onEvent'>> = {},
): Promise<{outcome: Awaited<ReturnType<typeof runEngine>>; events: EngineEvent[]}> {
	const events: EngineEvent[] = [];
	const outcome = await runEngine({
		settings: defaultSettings('gallifrey-dev'),
		ask: askWith(),
		signal: new AbortController().signal,
		...request,
		stages,
		stateDir,
		onEvent: (event) => events.push(event),
	});
	return {outcome, events};
}
