/**
 * Real output of the commands farmclone parses, captured on the farm-host
 * guest (test/host/) into test/fixtures/real/: NAME.out is the command's
 * stdout byte for byte, index.json says which command printed it, when in the
 * scenario, and the versions of the programs. Parser tests read them with
 * readRealFixture; the host test rewrites them when FARMCLONE_CAPTURE=1.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {Host} from '../../source/host/host.js';

export const realFixtureDir = path.resolve('test/fixtures/real');

export type RealFixture = {argv: string[]; when: string; note?: string};
export type RealFixtureIndex = {versions: Record<string, string>; fixtures: Record<string, RealFixture>};

export async function readRealFixture(name: string): Promise<string> {
	return fs.readFile(path.join(realFixtureDir, `${name}.out`), 'utf8');
}

export async function readRealIndex(): Promise<RealFixtureIndex> {
	return JSON.parse(await fs.readFile(path.join(realFixtureDir, 'index.json'), 'utf8')) as RealFixtureIndex;
}

/** Writes one captured output and its index entry. */
export async function writeRealFixture(name: string, fixture: RealFixture, stdout: string): Promise<void> {
	await fs.mkdir(realFixtureDir, {recursive: true});
	await fs.writeFile(path.join(realFixtureDir, `${name}.out`), stdout);
	const index = await readRealIndex().catch((): RealFixtureIndex => ({versions: {}, fixtures: {}}));
	index.fixtures[name] = fixture;
	await fs.writeFile(path.join(realFixtureDir, 'index.json'), `${JSON.stringify(index, null, '\t')}\n`);
}

export async function writeRealVersions(versions: Record<string, string>): Promise<void> {
	await fs.mkdir(realFixtureDir, {recursive: true});
	const index = await readRealIndex().catch((): RealFixtureIndex => ({versions: {}, fixtures: {}}));
	index.versions = versions;
	await fs.writeFile(path.join(realFixtureDir, 'index.json'), `${JSON.stringify(index, null, '\t')}\n`);
}

/**
 * A Host whose `command` prints a captured real output, as the real program
 * did (a script on the host's commandPath, found before PATH), exiting as it
 * exited. The directory is removed with the test.
 */
export async function hostAnswering(
	t: {after: (fn: () => Promise<void>) => void},
	answers: Record<string, string>,
): Promise<Host> {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-real-'));
	t.after(async () => fs.rm(dir, {recursive: true, force: true}));
	for (const [command, fixture] of Object.entries(answers)) {
		const file = path.join(realFixtureDir, `${fixture}.out`);
		await fs.writeFile(path.join(dir, command), `#!/bin/sh\nexec cat '${file}'\n`, {mode: 0o755});
	}

	return new Host({commandPath: [dir], backupDir: path.join(dir, 'backups')});
}
