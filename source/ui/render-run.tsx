import {render} from 'ink';
import React from 'react';
import {FarmPicker, type FarmChoice} from '../components/farm-picker.js';
import {RunApp} from '../components/run-app.js';
import type {StartRun} from '../engine/api.js';
import {clearEarlyLine} from './early-line.js';
import type {RunOutcome} from './run-state.js';
import {createRunStore, type RunStoreOptions} from './run-store.js';

type Streams = {stdin?: NodeJS.ReadStream; stdout?: NodeJS.WriteStream};

/**
 * Repaints at most this often. Over a slow SSH link every frame is bytes on
 * the wire; copy progress is coalesced to the same pace before it reaches state.
 */
const maxFps = 4;
/**
 * Copy progress reaches the screen once in this many ms: each update repaints
 * the live region (~0.9 KB), and a copy takes minutes, so one a second and a
 * half keeps a long copy under 1 KB/s on the wire.
 */
const progressIntervalMs = 1500;

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

export type RenderRunOptions = Streams &
	Omit<RunStoreOptions, 'progressIntervalMs'> & {
		start: StartRun;
		/** Once aborted (a signal, a lost terminal), the screen goes as soon as the engine stops: nobody is there to press a key. */
		signal?: AbortSignal;
	};

/**
 * Runs the engine (outside React, on a store) and shows it in the terminal
 * until the admin leaves; resolves with how the run ended.
 */
export async function renderRun(options: RenderRunOptions): Promise<RunOutcome> {
	const store = createRunStore({...options, progressIntervalMs});
	let outcome: RunOutcome = 'stopped';
	clearEarlyLine();
	const instance = render(
		<RunApp
			store={store}
			onExit={(result) => {
				outcome = result;
			}}
		/>,
		inkOptions(options),
	);
	const ended = await store.start(options.start);
	if (options.signal?.aborted) {
		instance.unmount();
		outcome = ended;
	}

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
