import {errorText} from './error-text.js';
import {clearEarlyLine, showEarlyLine} from './ui/early-line.js';
import {isInteractive, UsageError} from './commands/context.js';
import {LockedError} from './engine/lock.js';
import {SettingsStore} from './settings/store.js';
import {SettingsError} from './settings/validate.js';

// Each command is imported when it runs: the TUI's modules (Ink, React) cost most of the start-up.
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
	help?: boolean;
	/** farm new: the Ganeti instance to clone, and the saved farm whose host settings to share. */
	from?: string;
	like?: string;
};

async function dispatch(input: string[], flags: Flags): Promise<number> {
	const [command, ...args] = input;
	const farmArgument = () => {
		if (!args[0])
			throw new UsageError(
				`farmclone ${command} needs a farm name: farmclone ${command} NAME (farmclone farm list shows them; farmclone help ${command})`,
			);
		if (args.length > 1) throw new UsageError(`farmclone ${command} takes one farm name, got: ${args.join(' ')}`);
		return args[0];
	};

	if (command === 'demo') {
		// Loaded only for the demo: a farm host's commands never load the simulated farm.
		const {demoCommand, readServicesState, stopSimServices} = await import('./commands/demo.js');
		if (flags.stop) {
			// The demo's launcher names its directory: its printed `demo --stop` needs no --dir.
			const dir = flags.dir ?? process.env['FARMCLONE_DEMO_DIR'];
			if (!dir) throw new UsageError('farmclone demo --stop needs --dir DIR');
			if (!(await readServicesState(dir).catch(() => undefined)))
				throw new UsageError(`${dir} holds no demo: nothing to stop (farmclone demo --dir DIR builds one there)`);
			await stopSimServices(dir);
			process.stdout.write(`stopped the simulated host's services in ${dir}\n`);
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
			const {farmSummary} = await import('./commands/status.js');
			const {renderFarmPicker} = await import('./ui/render-run.js');
			const {runCommand} = await import('./commands/run.js');
			const farms = await Promise.all(
				store.list().map(async (farm) => ({name: farm.name, summary: await farmSummary(farm.name)})),
			);
			if (farms.length === 0)
				throw new UsageError(
					`no farms yet: farmclone farm new NAME --from INSTANCE, farmclone farm import FILE, or farmclone demo (settings: ${store.path})`,
				);
			const picked = await renderFarmPicker({farms});
			return picked ? runCommand(store, picked, {yes: false, json: false}) : 0;
		}

		case 'run': {
			const farm = farmArgument();
			if (!flags.yes && isInteractive()) showEarlyLine(`farmclone ${farm} · starting…`);
			const {runCommand} = await import('./commands/run.js');
			return runCommand(store, farm, {
				yes: flags.yes,
				json: flags.json,
				confirm: flags.confirm,
				restartFirewall: flags.restartFirewall,
			});
		}

		case 'plan': {
			const {formatPlan, planFarm} = await import('./commands/plan.js');
			process.stdout.write(formatPlan(await planFarm(store, farmArgument())));
			return 0;
		}

		case 'status': {
			const {statusCommand} = await import('./commands/status.js');
			return statusCommand(store, farmArgument(), flags.json);
		}

		case 'confirm': {
			const {confirmCommand} = await import('./commands/confirm.js');
			return confirmCommand(store, farmArgument());
		}

		case 'undo': {
			const {undoCommand} = await import('./commands/undo.js');
			return undoCommand(store, farmArgument(), {yes: flags.yes, json: flags.json, confirm: flags.confirm});
		}

		case 'farm': {
			const {farmCommand} = await import('./commands/farm.js');
			return farmCommand(store, args, flags);
		}

		default: {
			throw new UsageError(`unknown command ${command}; see farmclone --help`);
		}
	}
}

export async function main(input: string[], flags: Flags): Promise<number> {
	try {
		return await dispatch(input, flags);
	} catch (error) {
		clearEarlyLine();
		process.stderr.write(errorText(error));
		if (error instanceof UsageError || error instanceof SettingsError || error instanceof LockedError) return 2;
		if (error instanceof Error && /^no farm named/.test(error.message)) return 2;
		return 1;
	}
}
