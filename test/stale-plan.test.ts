import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {runEngine} from '../source/engine/engine.js';
import type {EngineEvent} from '../source/engine/events.js';
import {readJournal} from '../source/engine/journal.js';
import {Host} from '../source/host/host.js';
import {defaultSettings, type FarmSettings} from '../source/settings/schema.js';
import {dnsRecordStage} from '../source/stages/dns-record.js';
import {candidateMacs, macStage} from '../source/stages/mac.js';
import type {Plan, StageContext} from '../source/stages/types.js';
import {askWith, yesPrompt} from './kit/stage.js';

const zone = `$TTL 86400
$ORIGIN farm.
@	IN	SOA	ns.farm. hostmaster.farm. (
			2011072501	; serial
			3600		; refresh
			900		; retry
			604800		; expire
			86400 )		; negative TTL
	IN	NS	ns
ns	IN	A	10.10.60.1
gallifrey.xivo.vm	IN	A	10.10.60.5
`;

/** A stage's context on real files in `dir`; settings changes are kept in `settings`. */
function stageContext(settings: FarmSettings, dir: string): StageContext {
	return {
		settings,
		host: new Host({backupDir: path.join(dir, 'backups'), commandPath: settings.commandPath}),
		states: {},
		saveState: async () => undefined,
		async updateSettings(patch) {
			Object.assign(settings, patch);
		},
		stateDir: dir,
		log() {},
		progress() {},
		prompt: yesPrompt,
		signal: new AbortController().signal,
	};
}

test('the zone file changed between the gate and the approval: refused, new plan shown, the approved content written', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-stale-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	const zoneFile = path.join(dir, 'db.farm');
	await fs.writeFile(zoneFile, zone);
	const settings = defaultSettings('gallifrey-dev', {zoneFile});
	const gates: Plan[] = [];
	const events: EngineEvent[] = [];
	const outcome = await runEngine({
		settings,
		// Without its preflight: named-checkzone is not part of this test.
		stages: [{...dnsRecordStage, preflight: []}],
		ask: askWith(async (request) => {
			gates.push(request.plan);
			// Someone edits the zone while the admin reads the first plan.
			if (gates.length === 1) await fs.appendFile(zoneFile, 'tardis\tIN\tA\t10.10.60.7\n');
			return 'run';
		}),
		onEvent: (event) => events.push(event),
		signal: new AbortController().signal,
		stateDir: path.join(dir, 'state'),
	});

	assert.equal(outcome, 'done');
	assert.equal(gates.length, 2, 'a second approval, of the new plan');
	const logs = events.flatMap((event) => (event.type === 'log' ? [event.text] : []));
	assert.ok(
		logs.some((text) => text.startsWith(`the host changed since you approved this plan: ${zoneFile} changed`)),
		logs.join('\n'),
	);
	const plans = events.filter((event) => event.type === 'plan');
	assert.equal(plans.length, 2, 'the new plan is shown');
	const [first, second] = gates;
	assert.equal(first!.edits![0]!.before, zone);
	assert.match(second!.edits![0]!.before!, /^tardis\t/m);
	assert.match(second!.diffs[0]!.diff, /tardis/);
	// Byte for byte the content of the plan the admin approved last.
	assert.equal(await fs.readFile(zoneFile, 'utf8'), second!.edits![0]!.after);
	const journal = await readJournal(path.join(dir, 'state'));
	assert.equal(journal?.stages['dns-record']?.state, 'done');
	assert.equal(journal?.states['dns-record']?.['serialAfter'], second!.values!['serialAfter']);
});

test('a stale plan is never written: apply with the old plan refuses and leaves the file', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-stale-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	const zoneFile = path.join(dir, 'db.farm');
	await fs.writeFile(zoneFile, zone);
	const settings = defaultSettings('gallifrey-dev', {zoneFile});
	const context = stageContext(settings, dir);
	const plan = await dnsRecordStage.plan(context);
	const changed = `${zone}; a comment\n`;
	await fs.writeFile(zoneFile, changed);
	await assert.rejects(dnsRecordStage.apply(context, plan), {
		name: 'StalePlanError',
		message: `the host changed since you approved this plan: ${zoneFile} changed`,
	});
	assert.equal(await fs.readFile(zoneFile, 'utf8'), changed);
});

test('mac: the MAC the plan shows is the MAC the run keeps; one taken since is refused', async (t) => {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-stale-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	const bin = path.join(dir, 'bin');
	await fs.mkdir(bin);
	// An empty cluster: gnt-instance list prints no instance.
	await fs.writeFile(path.join(bin, 'gnt-instance'), '#!/bin/sh\nexit 0\n', {mode: 0o755});
	const dhcpdConf = path.join(dir, 'dhcpd.conf');
	await fs.writeFile(dhcpdConf, 'authoritative;\n');
	const settings = defaultSettings('gallifrey-dev', {dhcpdConf, commandPath: [bin], mac: ''});
	const context = stageContext(settings, dir);
	const [first, second] = candidateMacs('gallifrey-dev');
	const plan = await macStage.plan(context);
	assert.equal(plan.values?.['mac'], first);
	assert.match(plan.notes[0]!, new RegExp(`^MAC ${first}`));
	assert.equal((await macStage.plan(context)).values?.['mac'], first, 'the same MAC for every look');

	// Someone gives that MAC to another host before the admin approves.
	await fs.writeFile(dhcpdConf, `host other { hardware ethernet ${first}; fixed-address 10.10.60.9; }\n`);
	await assert.rejects(macStage.apply(context, plan), {name: 'StalePlanError'});
	assert.equal(settings.mac, '');
	const again = await macStage.plan(context);
	assert.equal(again.values?.['mac'], second);
	await macStage.apply(context, again);
	assert.equal(settings.mac, second);
});
