/**
 * Real output of the commands farmclone parses, captured on the farm-host
 * guest (test/host/) into test/fixtures/real/: NAME.out is the command's
 * stdout byte for byte, index.json says which command printed it, when in the
 * scenario, and the versions of the programs. Parser tests read them with
 * readRealFixture; the host test rewrites them when FARMCLONE_CAPTURE=1.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

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
