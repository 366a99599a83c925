import {UsageError} from './commands/context.js';
import {confirmCommand} from './commands/confirm.js';
import {farmCommand} from './commands/farm.js';
import {formatPlan, planFarm} from './commands/plan.js';
import {runCommand} from './commands/run.js';
import {farmSummary, statusCommand} from './commands/status.js';
import {undoCommand} from './commands/undo.js';
import {LockedError} from './engine/lock.js';
import {SettingsStore} from './settings/store.js';
import {SettingsError} from './settings/validate.js';
import {renderFarmPicker} from './ui/render-run.js';
import {isInteractive} from './commands/context.js';

export type Flags = {
	yes: boolean;
	json: boolean;
	confirm?: string;
	restartFirewall: boolean;
	dir?: string;
	size: string;
	run: boolean;
	keep: boolean;
	stop: boolean;
};

async function dispatch(input: string[], flags: Flags, showHelp: () => void): Promise<number> {
	const [command, ...args] = input;
	const farmArgument = () => {
		if (!args[0]) throw new UsageError(`farmclone ${command} needs a farm name`);
		if (args.length > 1) throw new UsageError(`farmclone ${command} takes one farm name, got: ${args.join(' ')}`);
		return args[0];
	};

	if (command === 'demo') {
		// Loaded only for the demo: a farm host's commands never load the simulated farm.
		const {demoCommand, stopSimServices} = await import('./commands/demo.js');
		if (flags.stop) {
			if (!flags.dir) throw new UsageError('farmclone demo --stop needs --dir DIR');
			await stopSimServices(flags.dir);
			return 0;
		}

		return demoCommand({
			dir: flags.dir,
			size: flags.size,
			yes: flags.yes,
			json: flags.json,
			run: flags.run,
			keep: flags.keep,
		});
	}

	const store = new SettingsStore();
	switch (command) {
		case undefined: {
			if (!isInteractive())
				throw new UsageError('farmclone alone shows a farm picker and needs a terminal; try farmclone --help');
			const farms = await Promise.all(
				store.list().map(async (farm) => ({name: farm.name, summary: await farmSummary(farm.name)})),
			);
			if (farms.length === 0)
				throw new UsageError(`no farms yet: farmclone farm import FILE, or farmclone demo (settings: ${store.path})`);
			const picked = await renderFarmPicker({farms});
			return picked ? runCommand(store, picked, {yes: false, json: false}) : 0;
		}

		case 'run': {
			return runCommand(store, farmArgument(), {
				yes: flags.yes,
				json: flags.json,
				confirm: flags.confirm,
				restartFirewall: flags.restartFirewall,
			});
		}

		case 'plan': {
			process.stdout.write(formatPlan(await planFarm(store, farmArgument())));
			return 0;
		}

		case 'status': {
			return statusCommand(store, farmArgument(), flags.json);
		}

		case 'confirm': {
			return confirmCommand(store, farmArgument());
		}

		case 'undo': {
			return undoCommand(store, farmArgument(), {yes: flags.yes, json: flags.json, confirm: flags.confirm});
		}

		case 'farm': {
			return farmCommand(store, args);
		}

		case 'help': {
			showHelp();
			return 0;
		}

		default: {
			throw new UsageError(`unknown command ${command}; see farmclone --help`);
		}
	}
}

export async function main(input: string[], flags: Flags, showHelp: () => void): Promise<number> {
	try {
		return await dispatch(input, flags, showHelp);
	} catch (error) {
		const message = error instanceof Error ? error.message : String(error);
		process.stderr.write(`farmclone: ${message}\n`);
		if (error instanceof UsageError || error instanceof SettingsError || error instanceof LockedError) return 2;
		if (error instanceof Error && /^no farm named/.test(error.message)) return 2;
		return 1;
	}
}
