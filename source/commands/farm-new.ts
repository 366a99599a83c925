import path from 'node:path';
import readline from 'node:readline/promises';
import {Host, readOnlyHost} from '../host/host.js';
import {discoverFarm, DiscoveryError, type Discovery} from '../settings/discover.js';
import {defaultSettings} from '../settings/schema.js';
import type {SettingsStore} from '../settings/store.js';
import {validateSettings} from '../settings/validate.js';
import {farmcloneCommand, farmDir, isInteractive, UsageError} from './context.js';

export type NewFarmOptions = {from?: string; like?: string; yes: boolean; json: boolean};

/** Words of `text` in lines of at most `width`, the first `first` wide. */
function wrap(text: string, first: number, width: number): string[] {
	const lines: string[] = [];
	let line = '';
	for (const word of text.split(' ')) {
		const room = lines.length === 0 ? first : width;
		if (line && line.length + 1 + word.length > room) {
			lines.push(line);
			line = word;
		} else {
			line = line ? `${line} ${word}` : word;
		}
	}

	return [...lines, line];
}

/** One line per chosen setting (value, then where it came from), wrapped at `width` columns. */
export function formatDiscovery(discovery: Discovery, width = 80): string {
	const {settings, choices, notes} = discovery;
	const fieldWidth = Math.max(...choices.map((choice) => choice.field.length)) + 1;
	const valueWidth = Math.min(22, Math.max(...choices.map((choice) => choice.value.length))) + 1;
	const lines = [`farm ${settings.name}, a clone of ${settings.sourceInstance}, as this host has it:`];
	for (const choice of choices) {
		const head = `  ${choice.field.padEnd(fieldWidth)}${choice.value.padEnd(valueWidth)} `;
		// A long value pushes its reason under the reasons of the others rather than squeezing it.
		const column = head.length <= width - 16 ? head.length : 2 + fieldWidth + valueWidth + 1;
		const start = column === head.length ? head : `${head.trimEnd()}\n${' '.repeat(column)}`;
		const [first, ...rest] = wrap(choice.from, width - column, width - column);
		lines.push(`${start}${first}`, ...rest.map((line) => `${' '.repeat(column)}${line}`));
	}

	for (const note of notes) {
		lines.push(...wrap(note, width - 2, width - 4).map((line, index) => `${index ? '    ' : '  '}${line}`));
	}

	return `${lines.join('\n')}\n`;
}

async function ask(question: string): Promise<boolean> {
	const prompt = readline.createInterface({input: process.stdin, output: process.stdout});
	try {
		const answer = await new Promise<string>((resolve) => {
			// Ctrl+C (and Ctrl+D) at the prompt is a no.
			prompt.once('SIGINT', () => {
				process.stdout.write('\n');
				resolve('');
			});
			prompt.once('close', () => resolve(''));
			prompt.question(question).then(resolve, () => resolve(''));
		});
		return /^y(es)?$/i.test(answer.trim());
	} finally {
		prompt.close();
	}
}

/**
 * `farmclone farm new NAME --from INSTANCE`: the settings read off the host,
 * shown with where each came from, saved once the admin agrees (a prompt in
 * a terminal, --yes elsewhere). Nothing on the host changes.
 */
export async function newFarm(
	store: SettingsStore,
	name: string | undefined,
	options: NewFarmOptions,
): Promise<number> {
	if (!name) throw new UsageError('farmclone farm new needs a name: farmclone farm new NAME --from INSTANCE');
	if (!options.from) {
		throw new UsageError(
			`farmclone farm new needs --from INSTANCE, the Ganeti instance to clone: farmclone farm new ${name} --from INSTANCE`,
		);
	}

	const bad = validateSettings(defaultSettings(name, {sourceLv: 'x'})).find((error) => error.field === 'name');
	if (bad) throw new UsageError(`farm name ${JSON.stringify(name)}: ${bad.reason}`);
	if (store.get(name)) {
		throw new UsageError(
			`farm ${name} exists already (${farmcloneCommand(['farm', 'show', name])}): choose another name, or remove it first with ${farmcloneCommand(['farm', 'rm', name])}`,
		);
	}

	const farms = store.list();
	const like = options.like
		? store.require(options.like)
		: (farms.find((farm) => farm.sourceInstance === options.from) ?? farms[0]);
	const base = like ?? defaultSettings(name);
	const baseFrom = like ? `farm ${like.name}` : "the seed's defaults";
	const host = readOnlyHost(new Host({commandPath: base.commandPath, backupDir: path.join(farmDir(name), 'backups')}));
	let discovery: Discovery;
	try {
		discovery = await discoverFarm(host, {name, from: options.from, base, baseFrom, farms});
	} catch (error) {
		if (error instanceof DiscoveryError) throw new UsageError(`farm new ${name}: ${error.message}; nothing was saved`);
		throw error;
	}

	const save = () => {
		store.save(discovery.settings);
		return `saved farm ${name}; next: ${farmcloneCommand(['plan', name])}`;
	};

	if (options.json) {
		const saved = options.yes;
		if (saved) store.save(discovery.settings);
		process.stdout.write(`${JSON.stringify({...discovery, saved}, null, 2)}\n`);
		return 0;
	}

	process.stdout.write(formatDiscovery(discovery, process.stdout.columns || 80));
	if (options.yes) {
		process.stdout.write(`${save()}\n`);
		return 0;
	}

	if (!isInteractive()) {
		throw new UsageError(
			`not saved: farm new asks before it saves and this is no terminal; add --yes: ${farmcloneCommand(['farm', 'new', name, '--from', discovery.settings.sourceInstance, '--yes'])}`,
		);
	}

	if (!(await ask(`Save these settings as farm ${name}? [y/N] `))) {
		process.stdout.write(`not saved; nothing was changed\n`);
		return 1;
	}

	process.stdout.write(`${save()}\n`);
	return 0;
}
