import assert from 'node:assert/strict';
import {createHash} from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {execa} from 'execa';
import {SettingsStore} from '../../source/settings/store.js';
import {createSimFarm, type SimFarm} from '../../source/sim/farm.js';
import {simPaths} from '../../source/sim/paths.js';
import {badInputCases, badInputTable, type BadInputCase} from './bad-input-cases.js';

const cli = path.resolve('dist/cli.js');

/**
 * What a bad input must leave alone: every file under etc/ (the service
 * configurations) and dev/ (the volumes), and the stand-ins' state (LVM and
 * Ganeti). Left out: logs (var/log: the services write them), run/ and the
 * pid and namespace files of the sim's services (they change whenever a
 * service is looked at or restarted), named's and shorewall's working
 * directories (var/cache/bind, var/lib/shorewall: `shorewall check` compiles
 * into its VARDIR). None of those is an input farmclone edits.
 */
async function treeHash(root: string): Promise<Map<string, string>> {
	const paths = simPaths(root);
	const hashes = new Map<string, string>();
	const walk = async (dir: string) => {
		for (const entry of await fs.readdir(dir, {withFileTypes: true})) {
			const file = path.join(dir, entry.name);
			if (entry.isDirectory()) await walk(file);
			else if (entry.isSymbolicLink()) hashes.set(path.relative(root, file), `-> ${await fs.readlink(file)}`);
			else
				hashes.set(
					path.relative(root, file),
					createHash('sha256')
						.update(await fs.readFile(file))
						.digest('hex'),
				);
		}
	};

	await walk(paths.etc);
	await walk(paths.dev);
	for (const name of ['lvm.json', 'ganeti.json']) {
		const file = path.join(paths.state, name);
		hashes.set(
			path.relative(root, file),
			createHash('sha256')
				.update(await fs.readFile(file))
				.digest('hex'),
		);
	}

	return hashes;
}

function changed(before: Map<string, string>, after: Map<string, string>): string[] {
	const names = new Set([...before.keys(), ...after.keys()]);
	return [...names].filter((name) => before.get(name) !== after.get(name)).sort();
}

type Shared = {farm: SimFarm; work: string; env: Record<string, string>};

async function runCase(shared: Shared, entry: BadInputCase): Promise<{exitCode: number; output: string}> {
	const {farm, work, env} = shared;
	const run = async (args: string[]) => {
		const result = await execa(process.execPath, [cli, ...args], {env, reject: false, timeout: 120_000});
		return {exitCode: result.exitCode ?? -1, output: `${result.stdout}\n${result.stderr}`};
	};

	if (entry.command === 'new') return run(['farm', 'new', ...(entry.args ?? []), '--yes']);
	if (entry.command === 'import') {
		const file = path.join(work, 'import.json');
		await fs.writeFile(file, entry.json ?? JSON.stringify({...farm.settings, ...entry.settings}));
		return run(['farm', 'import', file]);
	}

	const store = new SettingsStore(env['FARMCLONE_CONFIG_DIR']);
	store.save({...farm.settings, ...entry.settings} as typeof farm.settings);
	return run(['run', farm.settings.name, '--yes', '--confirm', farm.settings.name]);
}

test('bad input: a clear error, exit code 2, and the farm tree byte-identical', {timeout: 600_000}, async (t) => {
	const work = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-bad-input-'));
	const farm = await createSimFarm({root: path.join(work, 'farm'), sourceSize: 32 * 1024 ** 2});
	t.after(async () => {
		await farm.stop();
		await fs.rm(work, {recursive: true, force: true});
	});
	const env = {
		FARMCLONE_CONFIG_DIR: path.join(work, 'config'),
		FARMCLONE_STATE_DIR: path.join(work, 'state'),
		NO_COLOR: '1',
	};
	const shared = {farm, work, env};
	const store = new SettingsStore(env.FARMCLONE_CONFIG_DIR);

	for (const entry of badInputCases) {
		await t.test(entry.input, async () => {
			store.save(farm.settings);
			const settingsBefore = await fs.readFile(store.path, 'utf8');
			const originals = new Map<string, string | undefined>();
			for (const {file, edit} of entry.files ?? []) {
				const full = path.join(farm.root, file);
				const text = await fs.readFile(full, 'utf8').catch(() => undefined);
				originals.set(full, text);
				await fs.writeFile(full, edit(text ?? ''));
			}

			try {
				const before = await treeHash(farm.root);
				const {exitCode, output} = await runCase(shared, entry);
				assert.equal(exitCode, entry.exitCode, output);
				assert.ok(output.includes(entry.error), `expected "${entry.error}" in:\n${output}`);
				if (entry.alsoSays) {
					const after = output.slice(output.indexOf(entry.error));
					assert.ok(after.includes(entry.alsoSays), `expected "${entry.alsoSays}" after it in:\n${output}`);
				}

				assert.deepEqual(changed(before, await treeHash(farm.root)), [], output);
				if (entry.command !== 'run') assert.equal(await fs.readFile(store.path, 'utf8'), settingsBefore);
				// Refused before stage 1: no stage ever started.
				assert.doesNotMatch(output, /: started$/m);
			} finally {
				for (const [file, text] of originals) {
					if (text === undefined) await fs.rm(file, {force: true});
					else await fs.writeFile(file, text);
				}
			}
		});
	}

	// The same farm with nothing wrong passes the preflight: the cases fail for their own reason.
	await t.test('the unchanged farm passes the preflight', async () => {
		store.save(farm.settings);
		const result = await execa(process.execPath, [cli, 'plan', farm.settings.name], {env, reject: false});
		assert.equal(result.exitCode, 0, result.stderr);
		assert.match(result.stdout, /^preflight: no problem found/m);
	});
});

/** A markdown table's rows as trimmed cells, without the separator row: prettier pads the columns. */
function tableCells(text: string): string[][] {
	return text
		.split('\n')
		.filter((line) => line.startsWith('|') && !/^\|[\s|:-]+\|$/.test(line))
		.map((line) =>
			line
				.slice(1, -1)
				.split(/(?<!\\)\|/)
				.map((cell) => cell.trim()),
		);
}

test("README's Bad input table is the one printed from the test's cases", async () => {
	const readme = await fs.readFile('README.md', 'utf8');
	const section = /^## Bad input\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? '';
	assert.deepEqual(
		tableCells(section),
		tableCells(badInputTable()),
		'run: node --import tsx test/sim/bad-input-cases.ts, and paste it in README',
	);
});
