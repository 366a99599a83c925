import {editInEditor, readAdminFile} from '../host/admin-files.js';
import type {SettingsStore} from '../settings/store.js';
import {completeSettings, SettingsError} from '../settings/validate.js';
import {isInteractive, UsageError} from './context.js';
import type {NewFarmOptions} from './farm-new.js';
import {farmSummary} from './status.js';

function parseJson(text: string, source: string): unknown {
	try {
		return JSON.parse(text);
	} catch (error) {
		throw new UsageError(`${source} is not valid JSON: ${(error as Error).message}`);
	}
}

async function importFile(store: SettingsStore, file: string, name?: string): Promise<number> {
	let text: string;
	try {
		text = await readAdminFile(file);
	} catch (error) {
		throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
	}

	const settings = completeSettings(parseJson(text, file), name);
	store.save(settings);
	process.stdout.write(`saved farm ${settings.name}\n`);
	return 0;
}

/** `key=value` pairs; values are parsed as JSON when they look like it (numbers, lists), else taken as strings. */
function applyAssignments(current: Record<string, unknown>, assignments: string[]): Record<string, unknown> {
	const next = {...current};
	for (const assignment of assignments) {
		const equals = assignment.indexOf('=');
		if (equals < 1) throw new UsageError(`expected key=value, got ${assignment}`);
		const key = assignment.slice(0, equals);
		const raw = assignment.slice(equals + 1);
		let value: unknown = raw;
		if (/^[[{\d"]/.test(raw) || raw === 'true' || raw === 'false') {
			try {
				value = JSON.parse(raw);
			} catch {}
		}

		next[key] = value;
	}

	return next;
}

async function editFarm(store: SettingsStore, name: string): Promise<number> {
	const current = store.require(name);
	if (!isInteractive())
		throw new UsageError('farm edit opens $EDITOR and needs a terminal; use: farmclone farm set NAME key=value');
	const file = `${name}.json`;
	return editInEditor(file, `${JSON.stringify(current, null, 2)}\n`, async (text) => {
		try {
			const edited = completeSettings(parseJson(text, file), name);
			if (edited.name !== name)
				throw new UsageError(
					`the name cannot change in edit (${name} -> ${edited.name}); export, rm and import instead`,
				);
			store.save(edited);
			process.stdout.write(`saved farm ${name}\n`);
			return 0;
		} catch (error) {
			if (!(error instanceof SettingsError || error instanceof UsageError)) throw error;
			process.stderr.write(`${error.message}\nPress Enter to edit again, or Ctrl+C to leave the settings unchanged.\n`);
			await new Promise((resolve) => process.stdin.once('data', resolve));
			// A flowing stdin would keep farmclone alive after the settings are saved.
			process.stdin.pause();
			return undefined;
		}
	});
}

export async function farmCommand(
	store: SettingsStore,
	args: string[],
	flags: Partial<NewFarmOptions> = {},
): Promise<number> {
	const [action, name, ...rest] = args;
	const need = (what: string) => {
		if (!name) throw new UsageError(`farmclone farm ${action} needs ${what}`);
		return name;
	};

	switch (action) {
		case 'list':
		case undefined: {
			const farms = store.list();
			if (farms.length === 0) {
				process.stdout.write(
					`no farms yet (settings: ${store.path}); make one with: farmclone farm new NAME --from INSTANCE\n`,
				);
			}

			for (const farm of farms) {
				process.stdout.write(
					`${farm.name.padEnd(24)} ${farm.sourceInstance} -> ${farm.record}.${farm.zone}  ${await farmSummary(farm.name)}\n`,
				);
			}

			return 0;
		}

		case 'show':
		case 'export': {
			process.stdout.write(`${JSON.stringify(store.require(need('a farm name')), null, 2)}\n`);
			return 0;
		}

		case 'new': {
			if (rest.length > 0) throw new UsageError(`farmclone farm new takes one name, got: ${args.slice(1).join(' ')}`);
			const {newFarm} = await import('./farm-new.js');
			return newFarm(store, name, {
				from: flags.from,
				like: flags.like,
				yes: flags.yes ?? false,
				json: flags.json ?? false,
			});
		}

		case 'import': {
			return importFile(store, need('a JSON file (or - for stdin)'), rest[0]);
		}

		case 'set': {
			const current = store.require(need('a farm name'));
			if (rest.length === 0) throw new UsageError('farmclone farm set NAME key=value [key=value ...]');
			const next = completeSettings(applyAssignments(current, rest), name);
			if (next.name !== name) throw new UsageError('the name cannot change; export, rm and import instead');
			store.save(next);
			process.stdout.write(`saved farm ${name}\n`);
			return 0;
		}

		case 'edit': {
			return editFarm(store, need('a farm name'));
		}

		case 'rm': {
			if (!store.remove(need('a farm name'))) throw new UsageError(`no farm named ${name}`);
			process.stdout.write(`removed the settings of ${name} (its run state, if any, stays)\n`);
			return 0;
		}

		default: {
			throw new UsageError(`unknown farm action ${action}: list, show, new, edit, set, import, export, rm`);
		}
	}
}
