import assert from 'node:assert/strict';
import path from 'node:path';
import {test} from 'node:test';
import {execa} from 'execa';
import {farmTree, makeFarm, runArgs, startCli, treeDifferences, type EngineEvent, type TestFarm} from '../kit/farm.js';

/**
 * `farmclone undo NAME` against the simulated farm, with the whole farm tree
 * compared before the first run and after the undo (see test/kit/farm.ts for
 * what is not part of the farm tree, and why). The simulated zone names one
 * name server, so nothing can hold the run's serial and undo puts the old one
 * back: byte for byte. With secondaries (zoneSecondaries: yes), once the
 * run's serial was served, undo bumps it once more (secondaries never take a
 * lower one): the zone file's serial is then the one difference.
 */

const serialLine = /^(\s*)(\d+)(\s*; serial)$/m;

/** Asserts that db.farm differs from before only by a higher serial, and that everything else is the same. */
function assertUndoneButSerial(before: Record<string, string>, after: Record<string, string>): void {
	const zone = 'etc/bind/db.farm';
	const [old, now] = [before[zone] ?? '', after[zone] ?? ''];
	const oldSerial = serialLine.exec(old)?.[2];
	const newSerial = serialLine.exec(now)?.[2];
	assert.ok(oldSerial && newSerial, 'both zone files have a serial line');
	assert.ok(Number(newSerial) > Number(oldSerial), `serial ${newSerial} is higher than ${oldSerial}`);
	assert.equal(now.replace(serialLine, `$1${oldSerial}$3`), old, 'the zone differs by its serial alone');
	const differences = treeDifferences({...before, [zone]: ''}, {...after, [zone]: ''});
	assert.deepEqual(differences, [], differences.join('\n'));
}

async function run(farm: TestFarm, onEvent?: (event: EngineEvent, kill: () => void) => void) {
	const child = startCli(farm, await runArgs(), (event) => onEvent?.(event, () => child.child.kill('SIGHUP')));
	return child.done;
}

async function undo(farm: TestFarm, onEvent?: (event: EngineEvent, kill: () => void) => void) {
	const child = startCli(farm, await runArgs('undo'), (event) => onEvent?.(event, () => child.child.kill('SIGKILL')));
	return child.done;
}

/** The SOA serial the simulated farm's named serves, asked inside its namespace. */
async function servedSerial(farm: TestFarm): Promise<string | undefined> {
	const {dnsServer, dnsPort, zone} = farm.settings;
	const dig = path.join(farm.root, 'bin', 'dig');
	const {stdout} = await execa(dig, [`@${dnsServer}`, '-p', String(dnsPort), '+short', '+norecurse', zone, 'SOA']);
	return stdout.trim().split(/\s+/)[2];
}

function commandLines(events: EngineEvent[]): string[] {
	return events
		.filter((event) => event.type === 'command')
		.map((event) => (event['command'] as {argv: string[]}).argv.join(' '));
}

test(
	'undo after a whole run: plan first, every stage reversed last first, services reloaded, the tree as before, byte for byte',
	{timeout: 240_000},
	async (t) => {
		const farm = await makeFarm(t);
		const before = await farmTree(farm.root, {normalize: false});
		const serialBefore = await servedSerial(farm);
		assert.equal((await run(farm)).exitCode, 0);
		assert.notEqual(await servedSerial(farm), serialBefore, "the run's serial was served");

		const refused = await startCli(farm, ['undo', farm.settings.name, '--yes', '--json']).done;
		assert.equal(refused.exitCode, 2, 'headless undo wants --confirm NAME');
		assert.match(refused.stderr, /--yes --confirm gallifrey-dev/);

		const result = await undo(farm);
		assert.equal(result.exitCode, 0, result.stdout.split('\n').slice(-10).join('\n'));
		const firstUndo = result.events.findIndex((event) => event.type === 'stage-start');
		const plans = result.events.filter((event) => event.type === 'plan');
		assert.ok(plans.length >= 10 && result.events.indexOf(plans.at(-1)!) < firstUndo, 'every plan is shown first');
		const undone = result.events.filter((event) => event.type === 'stage-undone').map((event) => event.stage);
		assert.equal(undone[0], 'reverse-proxy');
		assert.equal(undone.at(-1), 'snapshot');
		assert.ok(undone.indexOf('reload-services') < undone.indexOf('dns-record'), 'last first');

		// Each editing stage reloads its own service: the reload stage's undo comes before theirs.
		const commands = commandLines(result.events);
		for (const wanted of [
			/^systemctl reload nginx$/,
			/^shorewall restart /,
			/^systemctl restart isc-dhcp-server$/,
			/^rndc .* reload farm$/,
		]) {
			assert.ok(
				commands.some((line) => wanted.test(line)),
				`${String(wanted)} in:\n${commands.join('\n')}`,
			);
		}

		const journal = await farm.journal();
		assert.equal(journal.outcome, 'undone');
		assert.deepEqual(journal.stages, {});
		const differences = treeDifferences(before, await farmTree(farm.root, {normalize: false}));
		assert.deepEqual(differences, [], differences.join('\n'));
		assert.equal(await servedSerial(farm), serialBefore, 'named loaded the zone with its old serial back');
	},
);

test(
	'undo of a run stopped before DNS reloaded: the tree is as before, byte for byte, serial too',
	{timeout: 240_000},
	async (t) => {
		const farm = await makeFarm(t);
		const before = await farmTree(farm.root, {normalize: false});
		const stopped = await run(farm, (event, kill) => {
			if (event.type === 'stage-done' && event.stage === 'dhcp-host') kill();
		});
		assert.equal(stopped.exitCode, 1);
		const journal = await farm.journal();
		assert.equal(journal.stages['dhcp-host']?.state, 'done');
		assert.equal(journal.stages['reload-services'], undefined);

		const result = await undo(farm);
		assert.equal(result.exitCode, 0, result.stdout.split('\n').slice(-10).join('\n'));
		const undone = result.events.filter((event) => event.type === 'stage-undone').map((event) => event.stage);
		assert.deepEqual(
			undone,
			['dhcp-host', 'mac', 'dns-record', 'identity', 'drop-snapshot', 'copy', 'create-volume', 'snapshot'].filter(
				(id) => journal.stages[id],
			),
		);
		const commands = commandLines(result.events);
		assert.ok(
			!commands.some((line) => /isc-dhcp-server|rndc/.test(line)),
			'nothing reloaded that never loaded the run',
		);
		const differences = treeDifferences(before, await farmTree(farm.root, {normalize: false}));
		assert.deepEqual(differences, [], differences.join('\n'));
	},
);

test(
	'undo killed midway: run refuses, undo again finishes it; with secondaries the serial goes up',
	{timeout: 300_000},
	async (t) => {
		const farm = await makeFarm(t, {settings: {zoneSecondaries: 'yes'}});
		const before = await farmTree(farm.root, {normalize: false});
		assert.equal((await run(farm)).exitCode, 0);
		let killedAfter: string | undefined;
		const killed = await undo(farm, (event, kill) => {
			if (!killedAfter && event.type === 'stage-undone' && event.stage === 'ganeti-instance') {
				killedAfter = event.stage;
				kill();
			}
		});
		assert.equal(killed.signal, 'SIGKILL');
		const journal = await farm.journal();
		assert.equal(journal.mode, 'undo');
		assert.equal(journal.stages['ganeti-instance']?.state, 'undone');
		assert.equal(journal.stages['snapshot']?.state, 'done');

		const refused = await run(farm);
		assert.equal(refused.exitCode, 1);
		assert.match(refused.stderr, /undo that did not finish/);

		const finished = await undo(farm);
		assert.equal(finished.exitCode, 0, finished.stdout.split('\n').slice(-10).join('\n'));
		const again = finished.events.filter((event) => event.type === 'stage-undone').map((event) => event.stage);
		assert.ok(!again.includes('ganeti-instance') && again.includes('snapshot'), `undone now: ${again.join(', ')}`);
		assertUndoneButSerial(before, await farmTree(farm.root, {normalize: false}));
	},
);
