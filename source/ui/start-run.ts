import type {StartRun} from '../engine/api.js';
import {updateEarlyLine} from './early-line.js';
import type {Streams} from './render-run.js';
import {preflightLine, type RunOutcome} from './run-state.js';
import {createRunStore, type RunStore, type RunStoreOptions} from './run-store.js';

/**
 * Copy progress reaches the screen once in this many ms: each update repaints
 * the live region (~0.9 KB), and a copy takes minutes, so one a second and a
 * half keeps a long copy under 1 KB/s on the wire.
 */
const progressIntervalMs = 1500;
/** Ink repaints at most 4 times a second (render-run's maxFps): the engine's news reaches React at that pace too. */
const frameMs = 250;

export type RenderRunOptions = Streams &
	Omit<RunStoreOptions, 'progressIntervalMs' | 'frameMs'> & {
		start: StartRun;
		/** Once aborted (a signal, a lost terminal), the screen goes as soon as the engine stops: nobody is there to press a key. */
		signal?: AbortSignal;
	};

/** Resolves at the engine's first event (the preflight's checks have started) or its end. */
async function firstNews(store: RunStore, ended: Promise<unknown>): Promise<void> {
	await new Promise<void>((resolve) => {
		const unsubscribe = store.subscribe(() => {
			unsubscribe();
			resolve();
		});
		void ended.finally(() => {
			unsubscribe();
			resolve();
		});
	});
}

/**
 * Runs the engine (outside React, on a store) and shows it in the terminal
 * until the admin leaves; resolves with how the run ended. The engine starts
 * first and the screen's modules (Ink, React, the components: a good part of
 * the start-up) load while its preflight's checkers run: until then the farm's
 * early line tells the preflight's progress, and the first frame shows the
 * state the engine reached.
 */
export async function renderRun(options: RenderRunOptions): Promise<RunOutcome> {
	const store = createRunStore({...options, progressIntervalMs, frameMs});
	const ended = store.start(options.start);
	await firstNews(store, ended);
	const tell = () => updateEarlyLine(`farmclone ${options.farm} · ${preflightLine(store.getState().preflight)}`);
	const untell = store.subscribe(tell);
	tell();
	const {mountRun} = await import('./render-run.js');
	untell();
	return mountRun(store, ended, options);
}
