import type {SettingsStore} from '../settings/store.js';
import {isInteractive, UsageError} from './context.js';
import {driveSession} from './session.js';

export async function undoCommand(
	store: SettingsStore,
	farm: string,
	flags: {yes: boolean; json: boolean; confirm?: string},
): Promise<number> {
	store.require(farm);
	if (!flags.yes && !isInteractive()) {
		throw new UsageError('farmclone undo needs a terminal for its typed confirmation; use --yes --confirm NAME');
	}

	if (flags.yes && flags.confirm !== farm) {
		throw new UsageError(`undo deletes the clone's disk: rerun with --yes --confirm ${farm}`);
	}

	return driveSession(store, farm, 'undo', flags);
}
