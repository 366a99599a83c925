import type {StageGate} from '../engine/api.js';
import {AbortedError} from '../engine/engine.js';
import type {CheckResult, FirewallWaitAnswer, Plan, Prompt} from '../stages/types.js';

export type GateAnswer = 'run' | 'skip' | 'quit';

/** Something the engine awaits, shown by the screen until a key answers it. */
export type PromptRequest =
	| {kind: 'gate'; id: number; stage: string; plan: Plan; check: CheckResult}
	/** With a deadline (epoch ms) the screen counts down, and no answer by then is a no. */
	| {kind: 'confirm'; id: number; message: string; deadline?: number}
	| {kind: 'choose'; id: number; message: string; choices: Array<{label: string; value: string}>}
	| {kind: 'typed'; id: number; message: string; expected: string}
	/** After a Shorewall restart: the command that proves it, the countdown, then who confirmed. */
	| {
			kind: 'firewall';
			id: number;
			command: string;
			deadline: number;
			confirmed?: {client?: string; at: string; detail: string};
	  };

export type PromptAnswers = {
	gate: GateAnswer;
	confirm: boolean;
	choose: string;
	typed: boolean;
	firewall: FirewallWaitAnswer;
};

type Waiting = {
	request: PromptRequest;
	settle: (answer: PromptAnswers[PromptRequest['kind']]) => void;
	fail: (error: Error) => void;
};

export type TuiPrompt = {
	prompt: Prompt;
	confirmStage: StageGate;
	/** Answers the request shown; false when `id` is no longer the one shown (a stale key press). */
	answer<K extends PromptRequest['kind']>(id: number, kind: K, value: PromptAnswers[K]): boolean;
	/** The admin quit: the shown gate and every later one answer 'quit', prompts reject. */
	stop(): void;
};

/**
 * Turns the engine's awaited calls into requests the screen shows one at a
 * time (`show` gets the request on top, or undefined when none is left) and
 * the keys resolve.
 */
export function createTuiPrompt(show: (request: PromptRequest | undefined) => void): TuiPrompt {
	const queue: Waiting[] = [];
	let nextId = 1;
	let stopped = false;

	const ask = <K extends PromptRequest['kind']>(
		request: Extract<PromptRequest, {kind: K}>,
	): Promise<PromptAnswers[K]> => {
		if (stopped) {
			return request.kind === 'gate' ? Promise.resolve('quit' as PromptAnswers[K]) : Promise.reject(new AbortedError());
		}

		return new Promise<PromptAnswers[K]>((resolve, reject) => {
			queue.push({request, settle: resolve as Waiting['settle'], fail: reject});
			if (queue.length === 1) show(request);
		});
	};

	const finishFirst = (outcome: (waiting: Waiting) => void) => {
		const first = queue.shift();
		if (!first) return;
		show(queue[0]?.request);
		outcome(first);
	};

	/** A question whose time ran out: answered no, wherever it is in the queue. */
	const expire = (id: number, value: PromptAnswers[PromptRequest['kind']] = false) => {
		const index = queue.findIndex((waiting) => waiting.request.id === id);
		if (index === 0) finishFirst((waiting) => waiting.settle(value));
		else if (index > 0) queue.splice(index, 1)[0]?.settle(value);
	};

	const prompt: Prompt = {
		confirm(message, options) {
			const id = nextId++;
			const seconds = options?.timeoutSeconds;
			if (seconds === undefined) return ask<'confirm'>({kind: 'confirm', id, message});
			const deadline = Date.now() + seconds * 1000;
			const answer = ask<'confirm'>({kind: 'confirm', id, message, deadline});
			const timer = setTimeout(() => {
				expire(id);
			}, seconds * 1000);
			const clear = () => {
				clearTimeout(timer);
			};

			answer.then(clear, clear);
			return answer;
		},
		async choose(message, choices) {
			const value = await ask<'choose'>({
				kind: 'choose',
				id: nextId++,
				message,
				choices: choices.map((choice) => ({label: choice.label, value: choice.value})),
			});
			const chosen = choices.find((choice) => choice.value === value);
			if (!chosen) throw new Error(`"${value}" is not one of the choices`);
			return chosen.value;
		},
		typed: (message, expected) => ask<'typed'>({kind: 'typed', id: nextId++, message, expected}),
		firewallWait(request) {
			const id = nextId++;
			const answer = ask<'firewall'>({kind: 'firewall', id, command: request.command, deadline: request.deadline});
			let settled = false;
			// Once confirmed, the screen says who from where and waits for a key; the watchdog has kept it already.
			void request.confirmed.then((confirmed) => {
				const waiting = queue.find((entry) => entry.request.id === id);
				if (settled || !waiting || waiting.request.kind !== 'firewall') return;
				waiting.request = {...waiting.request, confirmed};
				if (queue[0] === waiting) show(waiting.request);
			});
			const timer = setTimeout(
				() => {
					const waiting = queue.find((entry) => entry.request.id === id);
					if (waiting?.request.kind === 'firewall' && !waiting.request.confirmed) expire(id, 'expired');
				},
				Math.max(0, request.deadline - Date.now()),
			);
			const clear = () => {
				settled = true;
				clearTimeout(timer);
			};

			answer.then(clear, clear);
			return answer;
		},
	};

	const confirmStage: StageGate = (request) =>
		ask<'gate'>({kind: 'gate', id: nextId++, stage: request.stage.id, plan: request.plan, check: request.check});

	return {
		prompt,
		confirmStage,
		answer(id, kind, value) {
			const first = queue[0];
			if (!first || first.request.id !== id || first.request.kind !== kind) return false;
			finishFirst((waiting) => waiting.settle(value));
			return true;
		},
		stop() {
			stopped = true;
			while (queue.length > 0) {
				finishFirst((waiting) =>
					waiting.request.kind === 'gate' ? waiting.settle('quit') : waiting.fail(new AbortedError()),
				);
			}
		},
	};
}
