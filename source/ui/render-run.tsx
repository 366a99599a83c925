import {render} from 'ink';
import React from 'react';
import {FarmPicker, type FarmChoice} from '../components/farm-picker.js';
import {RunApp} from '../components/run-app.js';
import {clearEarlyLine} from './early-line.js';
import type {RunOutcome} from './run-state.js';
import type {RunStore} from './run-store.js';

export type Streams = {stdin?: NodeJS.ReadStream; stdout?: NodeJS.WriteStream};

/**
 * Repaints at most this often. Over a slow SSH link every frame is bytes on
 * the wire; copy progress is coalesced to the same pace before it reaches state
 * (run-store's progressIntervalMs).
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

/**
 * Shows the run on `store`, whose engine `ended` tells how it ended, in the
 * terminal until the admin leaves; resolves with how the run ended. Loaded
 * (with Ink and React) once the engine has started: see start-run.ts.
 */
export async function mountRun(
	store: RunStore,
	ended: Promise<RunOutcome>,
	options: Streams & {signal?: AbortSignal},
): Promise<RunOutcome> {
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
	const result = await ended;
	if (options.signal?.aborted) {
		instance.unmount();
		outcome = result;
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
