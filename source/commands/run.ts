import type {SettingsStore} from '../settings/store.js';
import {isInteractive, UsageError} from './context.js';
import {driveSession, type SessionFlags} from './session.js';

export type RunFlags = SessionFlags;

export {stageInfos} from './session.js';

export async function runCommand(store: SettingsStore, farm: string, flags: RunFlags): Promise<number> {
	store.require(farm);
	if (!flags.yes && !isInteractive()) {
		throw new UsageError(
			'farmclone run needs a terminal to ask before each stage; use --yes (and --confirm NAME) to run without one',
		);
	}

	return driveSession(store, farm, 'run', flags);
}
