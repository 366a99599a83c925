/**
 * What each stage keeps in the journal so that a resumed run or an undo uses
 * the same values (the MAC, the backups written, the LV Ganeti renamed the
 * target to, bytes copied): one slot per stage, typed by the stage that owns
 * it. A stage writes only its own slot (the engine refuses the others); what
 * another stage needs of it goes through the few readers the owner exports.
 */

/** A value the journal can hold (JSON). */
export type StateValue = string | number | boolean | string[] | undefined | {[key: string]: StateValue};

/** Every stage's slot, by stage id, as the journal stores it. */
export type StageStates = Record<string, Record<string, StateValue>>;

/** What reading a slot needs: the run's states. */
export type StatesView = {readonly states: Readonly<StageStates>};

/** What writing a slot needs: the engine's save, which accepts the stage's own slot only. */
export type StateSaver = {saveState(stage: string, patch: Record<string, StateValue>): Promise<void>};

export type StageStateSlot<S extends Record<string, StateValue>> = {
	readonly stage: string;
	/** The slot as recorded so far (every field may be missing: nothing recorded yet). */
	of(context: StatesView): Readonly<Partial<S>>;
	/** Merges `patch` into the slot, durably, before the stage goes on; undefined removes a field. */
	save(context: StateSaver, patch: Partial<S>): Promise<void>;
};

/**
 * The typed slot of stage `stage`. The journal is JSON written by farmclone
 * itself: the type is trusted, and readers of numbers or strings that matter
 * still check them where a wrong type would do harm.
 */
export function stageState<S extends Record<string, StateValue>>(stage: string): StageStateSlot<S> {
	return {
		stage,
		of: (context) => (context.states[stage] ?? {}) as Partial<S>,
		save: async (context, patch) => context.saveState(stage, patch as Record<string, StateValue>),
	};
}

/** States kept in memory, not in a journal: for a stage called on its own (the copy benchmark, tests). */
export function statesInMemory(states: StageStates = {}): StatesView & StateSaver & {states: StageStates} {
	return {
		states,
		async saveState(stage, patch) {
			states[stage] = {...states[stage], ...patch};
		},
	};
}
