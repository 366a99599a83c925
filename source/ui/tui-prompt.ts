import type {Answers, Ask, Question} from '../engine/api.js';
import {AbortedError} from '../engine/engine.js';
import type {CheckResult, FirewallWaitAnswer, FirewallWaitRequest, Plan} from '../stages/types.js';

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
	/** The engine's questions, shown one at a time. */
	ask: Ask;
	/**
	 * Answers the request shown; false when `id` is no longer the one shown (a
	 * stale key press). A gate of a dangerous stage answered run carries the
	 * text typed in it: the engine's typed question that follows gets it.
	 */
	answer<K extends PromptRequest['kind']>(id: number, kind: K, value: PromptAnswers[K], typed?: string): boolean;
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
	/** What was typed at the gate of a dangerous stage, by stage id, until the engine asks for it. */
	const typedAtGate = new Map<string, string>();

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

	const confirm = (message: string, seconds: number | undefined): Promise<boolean> => {
		const id = nextId++;
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
	};

	const firewallWait = (request: FirewallWaitRequest): Promise<FirewallWaitAnswer> => {
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
	};

	/** The typed question of a dangerous stage gets what was typed at its gate; any other is shown. */
	const typed = async (question: Extract<Question, {kind: 'typed'}>): Promise<string | undefined> => {
		const atGate = question.stage && typedAtGate.get(question.stage.id);
		if (question.stage) typedAtGate.delete(question.stage.id);
		if (atGate !== undefined && atGate !== '') return atGate;
		const {message, expected} = question;
		return (await ask<'typed'>({kind: 'typed', id: nextId++, message, expected})) ? expected : undefined;
	};

	const answers: {[K in Question['kind']]: (question: Extract<Question, {kind: K}>) => Promise<Answers[K]>} = {
		gate: async ({stage, plan, check}) => ask<'gate'>({kind: 'gate', id: nextId++, stage: stage.id, plan, check}),
		confirm: async ({message, timeoutSeconds}) => confirm(message, timeoutSeconds),
		choose: async ({message, choices}) =>
			ask<'choose'>({
				kind: 'choose',
				id: nextId++,
				message,
				choices: choices.map((choice) => ({label: choice.label, value: choice.value})),
			}),
		typed,
		firewall: async ({request}) => firewallWait(request),
	};

	return {
		ask: async (question) => (answers[question.kind] as (question: Question) => Promise<never>)(question),
		answer(id, kind, value, typedText) {
			const first = queue[0];
			if (!first || first.request.id !== id || first.request.kind !== kind) return false;
			if (first.request.kind === 'gate' && typedText !== undefined) typedAtGate.set(first.request.stage, typedText);
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
