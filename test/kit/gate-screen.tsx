/**
 * One gate of the run screen in ink-testing-library, as an 80x24 terminal
 * shows it: the last 24 rows of the last frame.
 */
import assert from 'node:assert/strict';
import {stripVTControlCharacters} from 'node:util';
import React from 'react';
import type {StartRun} from '../../source/engine/api.js';
import type {StageState} from '../../source/engine/events.js';
import {stageInfos} from '../../source/commands/run.js';
import type {GatePlan} from './gate-plans.js';

export type GateScreen = {
	/** The rows a terminal of `rows` rows shows now, trailing spaces cut. */
	view(): string[];
	/** Writes `keys`, waits for a new frame, then for `until`; the view then. */
	press(keys: string, until: (view: string) => boolean, what: string): Promise<string[]>;
	/** Every frame so far, whole (log included). */
	frames(): string[];
	unmount(): void;
};

async function poll(check: () => boolean, what: string, describe: () => string): Promise<void> {
	const deadline = Date.now() + 5000;
	while (!check()) {
		if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last view:\n${describe()}`);
		await new Promise((resolve) => setTimeout(resolve, 5));
	}
}

/** The screen of a run waiting at `gate`, the stages before it done (or as `states` says). */
export async function showGate(
	gate: GatePlan,
	options: {columns?: number; rows?: number; farm?: string; states?: Record<string, StageState>} = {},
): Promise<GateScreen> {
	const {render} = await import('ink-testing-library');
	const {RunApp} = await import('../../source/components/run-app.js');
	const {createRunStore} = await import('../../source/ui/run-store.js');
	const {columns = 80, rows = 24, farm = 'gallifrey-dev'} = options;
	const stages = stageInfos();
	const index = stages.findIndex((stage) => stage.id === gate.stage);
	assert.ok(index >= 0, `no stage ${gate.stage}`);
	const states: Record<string, StageState> =
		options.states ?? Object.fromEntries(stages.slice(0, index).map((stage) => [stage.id, 'done' as const]));
	const start: StartRun = async (drivers) => {
		drivers.onEvent({type: 'run-start', farm, resumed: false, at: new Date().toISOString()});
		drivers.onEvent({type: 'check', stage: gate.stage, result: gate.check});
		drivers.onEvent({type: 'plan', stage: gate.stage, plan: gate.plan});
		const refuse = async (): Promise<never> => {
			throw new Error('the screen must not call the stage');
		};
		const stage = {...stages[index]!, check: refuse, plan: refuse, apply: refuse, verify: refuse, undo: refuse};
		await drivers.ask({kind: 'gate', stage, index, plan: gate.plan, check: gate.check});
		return 'stopped';
	};
	const store = createRunStore({farm, stages, initialStates: states});
	const app = render(<RunApp store={store} onExit={() => undefined} columns={columns} rows={rows} color={false} />);
	void store.start(start);
	const last = () => stripVTControlCharacters(app.lastFrame() ?? '');
	const view = () =>
		last()
			.split('\n')
			.map((line) => line.trimEnd())
			.slice(-rows);
	const describe = () => view().join('\n');
	await poll(() => /Enter run/.test(last()), 'the gate', describe);
	return {
		view,
		async press(keys, until, what) {
			await new Promise((resolve) => setTimeout(resolve, 10));
			const before = app.lastFrame();
			app.stdin.write(keys);
			await poll(() => app.lastFrame() !== before, `a new frame after ${JSON.stringify(keys)}`, describe);
			await poll(() => until(describe()), what, describe);
			return view();
		},
		frames: () => app.frames.map((frame) => stripVTControlCharacters(frame)),
		unmount: () => {
			app.unmount();
		},
	};
}
