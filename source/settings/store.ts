import Conf from 'conf';
import type {FarmSettings} from './schema.js';
import {completeSettings} from './validate.js';

type StoreShape = {farms: Record<string, FarmSettings>};

/**
 * Farms' settings, one JSON file kept by conf. FARMCLONE_CONFIG_DIR moves it
 * (tests, the demo's own tree); otherwise conf's usual place.
 */
export class SettingsStore {
	private readonly conf: Conf<StoreShape>;

	constructor(directory = process.env['FARMCLONE_CONFIG_DIR']) {
		this.conf = new Conf<StoreShape>({
			projectName: 'farmclone',
			projectSuffix: '',
			configName: 'farms',
			cwd: directory || undefined,
			accessPropertiesByDotNotation: false,
			defaults: {farms: {}},
		});
	}

	get path(): string {
		return this.conf.path;
	}

	list(): FarmSettings[] {
		return Object.values(this.conf.get('farms')).sort((a, b) => a.name.localeCompare(b.name));
	}

	get(name: string): FarmSettings | undefined {
		const stored = this.conf.get('farms')[name];
		// Re-validated on read: a hand-edited file must not reach the host unchecked.
		return stored ? completeSettings(stored, name) : undefined;
	}

	require(name: string): FarmSettings {
		const settings = this.get(name);
		if (!settings) {
			const known = this.list().map((farm) => farm.name);
			throw new Error(
				`no farm named ${name}${known.length > 0 ? ` (known: ${known.join(', ')})` : ''}; create it with: farmclone farm new ${name} --from INSTANCE, or farmclone farm import FILE`,
			);
		}

		return settings;
	}

	save(settings: FarmSettings): void {
		const valid = completeSettings(settings);
		this.conf.set('farms', {...this.conf.get('farms'), [valid.name]: valid});
	}

	remove(name: string): boolean {
		const farms = {...this.conf.get('farms')};
		if (!(name in farms)) return false;
		delete farms[name];
		this.conf.set('farms', farms);
		return true;
	}
}
