import {render} from 'ink';
import React from 'react';
import {FarmPicker, type FarmChoice} from '../components/farm-picker.js';
import {RunApp} from '../components/run-app.js';
import type {StageInfo, StartRun} from '../engine/api.js';
import type {StageState} from '../engine/events.js';
import type {RunOutcome} from './run-state.js';

type Streams = {stdin?: NodeJS.ReadStream; stdout?: NodeJS.WriteStream};

/**
 * Repaints at most this often. Over a slow SSH link every frame is bytes on
 * the wire; copy progress is coalesced to the same pace before it reaches state.
 */
const maxFps = 4;

function inkOptions(streams: Streams) {
	return {
		stdin: streams.stdin ?? process.stdin,
		stdout: streams.stdout ?? process.stdout,
		// Ctrl+C is a key in raw mode: the screen asks before quitting, so the run is left resumable.
		exitOnCtrlC: false,
		maxFps,
		// Not `incrementalRendering`: in Ink 6.8 it left a stale line behind when the live region grew (seen in tmux).
	};
}

export type RenderRunOptions = Streams & {
	farm: string;
	stages: StageInfo[];
	initialStates: Record<string, StageState>;
	resumedNote?: string;
	start: StartRun;
	/** Once aborted (a signal, a lost terminal), the screen goes as soon as the engine stops: nobody is there to press a key. */
	signal?: AbortSignal;
};

/** Shows a run in the terminal until the admin leaves; resolves with how the run ended. */
export async function renderRun(options: RenderRunOptions): Promise<RunOutcome> {
	let outcome: RunOutcome = 'stopped';
	const start: StartRun = async (drivers) => {
		const result = await options.start(drivers);
		if (options.signal?.aborted) {
			outcome = result;
			instance.unmount();
		}

		return result;
	};

	const instance = render(
		<RunApp
			farm={options.farm}
			stages={options.stages}
			initialStates={options.initialStates}
			resumedNote={options.resumedNote}
			start={start}
			progressIntervalMs={1000 / maxFps}
			onExit={(result) => {
				outcome = result;
			}}
		/>,
		inkOptions(options),
	);
	await instance.waitUntilExit();
	return outcome;
}

/** `farmclone` alone: lets the admin pick a remembered farm; undefined when they quit. */
export async function renderFarmPicker(options: Streams & {farms: FarmChoice[]}): Promise<string | undefined> {
	let picked: string | undefined;
	const instance = render(
		<FarmPicker
			farms={options.farms}
			onDone={(farm) => {
				picked = farm;
			}}
		/>,
		inkOptions(options),
	);
	await instance.waitUntilExit();
	return picked;
}
