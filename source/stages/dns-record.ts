import {
	absoluteName,
	addZoneRecord,
	inspectZone,
	parseZone,
	readZoneIncludes,
	removeZoneRecord,
	ZoneConflictError,
	type ZoneRecordRequest,
} from '../host/zone-file.js';
import {fqdn, type FarmSettings} from '../settings/schema.js';
import {
	assertPlanCanApply,
	assertUnchanged,
	changeDiffs,
	contentHash,
	fileEdits,
	runChecker,
	writeChecked,
	type Checker,
} from './checked-edit.js';
import {
	StageError,
	type Plan,
	type PreflightContext,
	type Stage,
	type LookContext,
	type StageContext,
} from './types.js';
import {checkerRefusal, readSettingFile, refusedBy} from './preflight-kit.js';
import {stageState} from './state.js';

/** The zone's serials around this run's edit (the undo needs them), and the backups. */
type DnsRecordState = {
	backup: string;
	serialBefore: string;
	serialAfter: string;
	undoBackup: string;
	undoSerial: string;
};

const dnsRecordState = stageState<DnsRecordState>('dns-record');

function zoneRequest(settings: FarmSettings): ZoneRecordRequest {
	return {zone: settings.zone, record: settings.record, ip: settings.ip, farm: settings.name};
}

/**
 * `-i local`: the integrity checks named itself makes when loading the zone,
 * without looking up out-of-zone names through this machine's resolver.
 */
function checker(settings: FarmSettings): Checker {
	return {
		argv: ['named-checkzone', '-i', 'local', settings.zone, settings.zoneFile],
		explain: (output) => output.trim(),
	};
}

async function readZone(context: LookContext): Promise<string> {
	const text = await context.host.readFileIfExists(context.settings.zoneFile);
	if (text === undefined) {
		throw new StageError(`${context.settings.zoneFile} does not exist`, 'check the zoneFile setting');
	}

	return text;
}

/** The SOA serial the DNS server answers with, or undefined when none answers. */
async function servedSerial(context: LookContext): Promise<string | undefined> {
	const {zone, dnsServer, dnsPort} = context.settings;
	const argv = ['dig', `@${dnsServer}`, '-p', String(dnsPort), '+short', '+norecurse', '+time=2', '+tries=1'];
	const result = await context.host.run([...argv, zone, 'SOA'], {reject: false, quiet: true});
	const serial = result.stdout.trim().split(/\s+/)[2];
	return result.exitCode === 0 && serial && /^\d+$/.test(serial) ? serial : undefined;
}

/** Whether other servers may hold the zone's serial, and what says so. */
export function zoneSecondaries(
	settings: Pick<FarmSettings, 'zone' | 'zoneSecondaries'>,
	text: string,
): {some: boolean; why: string} {
	if (settings.zoneSecondaries !== 'auto') {
		return {some: settings.zoneSecondaries === 'yes', why: `zoneSecondaries is ${settings.zoneSecondaries}`};
	}

	let servers: string[] = [];
	try {
		const apex = absoluteName(settings.zone, '.').toLowerCase();
		const records = parseZone(text, settings.zone).records;
		servers = records
			.filter((record) => record.type === 'NS' && record.owner.toLowerCase() === apex)
			.map((r) => r.rdata[0] ?? '');
	} catch {}

	return servers.length > 1
		? {some: true, why: `the zone names ${servers.length} name servers`}
		: {some: false, why: 'the zone names one name server (zoneSecondaries: auto)'};
}

/**
 * The serial undo writes. Secondaries never accept a lower serial, so once
 * the run's serial may have reached one, undo bumps it once more: the file
 * then differs from before the run by its serial alone. The old serial
 * comes back, and the file byte for byte, when nobody can hold the run's
 * serial: the server still serves the one from before the run (a secondary
 * only learns a serial from the server), or the zone has no secondaries
 * (caches keep records by their TTL, never by serial).
 */
async function undoSerial(
	context: StageContext,
	text: string,
): Promise<{restore?: string; served?: string; why: string}> {
	const before = dnsRecordState.of(context).serialBefore;
	const after = dnsRecordState.of(context).serialAfter;
	const served = await servedSerial(context);
	let current: string | undefined;
	try {
		current = inspectZone(text, zoneRequest(context.settings)).serial;
	} catch {}

	const transfers = zoneSecondaries(context.settings, text);
	if (typeof before === 'string' && current === after) {
		if (served === before) {
			return {
				restore: before,
				served,
				why: `the server still serves ${before}: ${after} was never served, ${before} comes back`,
			};
		}

		if (!transfers.some) return {restore: before, served, why: `no secondary can hold ${after}: ${transfers.why}`};
	}

	const why = `secondaries never accept a lower serial, so undo bumps it again instead of restoring it (${transfers.why})`;
	return {served, why: served === undefined ? `${why}; no DNS server answered: reload it yourself` : why};
}

function bumped(context: LookContext, serial: string | undefined): string {
	const before = dnsRecordState.of(context).serialBefore;
	return typeof before === 'string' && before !== serial ? `bumped ${before} -> ${serial}` : String(serial);
}

function describeRecord(settings: FarmSettings): string {
	return `${fqdn(settings)} IN A ${settings.ip}`;
}

/**
 * The record and the SOA serial, computed once: apply writes this content, so
 * a date rolling over between the gate and Enter changes nothing.
 */
async function planRecord(context: LookContext): Promise<Plan> {
	const {settings} = context;
	const text = await readZone(context);
	const included = await readZoneIncludes(context.host, settings.zoneFile, text, settings.zone);
	const refused = (refusal: string, notes: string[]): Plan => ({commands: [], diffs: [], notes, refusal});
	let state;
	try {
		state = inspectZone(text, zoneRequest(settings), included);
	} catch (error) {
		const why = `cannot read ${settings.zoneFile}: ${(error as Error).message}`;
		return refused(why, [why]);
	}

	if (state.conflicts.length > 0)
		return refused(`${settings.zoneFile}:\n${state.conflicts.join('\n')}`, state.conflicts);
	let edit;
	try {
		edit = addZoneRecord(text, zoneRequest(settings), new Date(), included);
	} catch (error) {
		if (error instanceof ZoneConflictError) throw new StageError(`${settings.zoneFile}:\n${error.message}`);
		throw new StageError(`cannot read ${settings.zoneFile}: ${(error as Error).message}`);
	}

	const change = {path: settings.zoneFile, before: text, after: edit.text};
	return {
		commands: edit.text === text ? [] : [checker(settings).argv],
		diffs: changeDiffs([change]),
		notes: [
			...(edit.text === text ? [`${describeRecord(settings)} is already there: nothing to change`] : []),
			...(edit.serialAfter === edit.serialBefore ? [] : [`SOA serial ${edit.serialBefore} -> ${edit.serialAfter}`]),
			...state.notes,
			'the zone file is put back if named-checkzone refuses it; BIND reloads it in the reload stage',
		],
		edits: fileEdits([change]),
		values: {
			serialBefore: edit.serialBefore,
			serialAfter: edit.serialAfter,
			line: edit.line ?? '',
			zoneHash: contentHash(text),
		},
	};
}

/** The zone file: named-checkzone accepts it, and no other record has our name or address. */
export async function zonePreflight(context: PreflightContext): Promise<void> {
	const {host, settings, add} = context;
	const text = await readSettingFile(context, 'zoneFile');
	if (text === undefined) return;
	const refusal = await checkerRefusal(
		host,
		['named-checkzone', '-i', 'local', settings.zone, settings.zoneFile],
		(output) => output.trim(),
	);
	if (refusal) add('zoneFile', refusedBy('named-checkzone', refusal));
	try {
		const included = await readZoneIncludes(host, settings.zoneFile, text, settings.zone);
		const state = inspectZone(
			text,
			{zone: settings.zone, record: settings.record, ip: settings.ip, farm: settings.name},
			included,
		);
		for (const concern of state.concerns) add(concern.setting, concern.text);
	} catch (error) {
		if (!refusal) add('zoneFile', `farmclone cannot read it: ${(error as Error).message}`);
	}
}

export const dnsRecordStage: Stage = {
	id: 'dns-record',
	title: 'DNS record',
	summary: `add "<record> IN A <ip>" to the zone file, bump the SOA serial, named-checkzone`,
	danger: 'none',
	skippable: true,
	preflight: [zonePreflight],
	async check(context) {
		const {settings} = context;
		const text = await context.host.readFileIfExists(settings.zoneFile);
		if (text === undefined) return {status: 'conflict', detail: `${settings.zoneFile} does not exist`};
		try {
			const included = await readZoneIncludes(context.host, settings.zoneFile, text, settings.zone);
			const state = inspectZone(text, zoneRequest(settings), included);
			const notes = state.notes.map((note) => `\n${note}`).join('');
			if (state.conflicts.length > 0) {
				return {status: 'conflict', detail: `${settings.zoneFile}:\n${state.conflicts.join('\n')}${notes}`};
			}

			if (state.status === 'ours') {
				return {
					status: 'done',
					detail: `${describeRecord(settings)} is in ${settings.zoneFile}, serial ${bumped(context, state.serial)}`,
				};
			}

			if (state.status === 'manual') {
				return {
					status: 'done',
					detail: `${describeRecord(settings)} is already in ${settings.zoneFile}, not added by farmclone: undo leaves it${notes}`,
				};
			}

			return {status: 'pending', detail: `${settings.zoneFile} has no record for ${fqdn(settings)} yet${notes}`};
		} catch (error) {
			return {status: 'conflict', detail: `cannot read ${settings.zoneFile}: ${(error as Error).message}`};
		}
	},
	plan: planRecord,
	async apply(context, approved) {
		const {settings} = context;
		const plan = approved ?? (await planRecord(context));
		assertPlanCanApply(plan);
		const values = plan.values ?? {};
		const edits = plan.edits ?? [];
		if (edits.length === 0) {
			// Nothing to write: the record was already there when the plan was made, and must still be.
			await assertUnchanged(context, [{path: settings.zoneFile, beforeHash: values['zoneHash'] ?? ''}]);
			context.log(`${describeRecord(settings)} is already in ${settings.zoneFile}`);
			return;
		}

		const backups = await writeChecked(context, edits, checker(settings), 'the zone with the new record');
		await dnsRecordState.save(context, {
			backup: backups[settings.zoneFile],
			serialBefore: values['serialBefore'],
			serialAfter: values['serialAfter'],
		});
		context.log(
			`added "${values['line']}" to ${settings.zoneFile}; serial ${values['serialBefore']} -> ${values['serialAfter']}`,
		);
	},
	async verify(context) {
		const {settings} = context;
		const state = inspectZone(await readZone(context), zoneRequest(settings));
		if (state.status === 'absent') throw new StageError(`${describeRecord(settings)} is not in ${settings.zoneFile}`);
		const problem = await runChecker(context, checker(settings));
		if (problem) throw new StageError(`named-checkzone refuses ${settings.zoneFile}:\n${problem}`);
	},
	async undo(context) {
		const {settings} = context;
		const text = await readZone(context);
		const decision = await undoSerial(context, text);
		const edit = removeZoneRecord(text, zoneRequest(settings), new Date(), decision.restore);
		if (edit.removed.length === 0) {
			context.log(`nothing of ${settings.name} in ${settings.zoneFile}`);
			return;
		}

		const backups = await writeChecked(
			context,
			[{path: settings.zoneFile, before: text, after: edit.text}],
			checker(settings),
			'the zone without the record',
		);
		await dnsRecordState.save(context, {
			undoBackup: backups[settings.zoneFile],
			undoSerial: edit.serialAfter,
		});
		context.log(
			`removed ${edit.removed.length} line(s) from ${settings.zoneFile}; serial ${edit.serialBefore} -> ${edit.serialAfter}: ${decision.why}`,
		);
		if (decision.served === undefined || decision.served === edit.serialAfter) return;
		// The server has loaded our record: it must load the zone without it.
		const reload = await context.host.run([...settings.rndc, settings.zone], {reject: false});
		const now = await servedSerial(context);
		if (reload.exitCode !== 0 || now !== edit.serialAfter) {
			throw new StageError(
				`${settings.zoneFile} no longer has the record, but the DNS server serves serial ${now ?? 'none'}, not ${edit.serialAfter}: ${`${reload.stdout}${reload.stderr}`.trim()}`,
				`reload the zone by hand: ${[...settings.rndc, settings.zone].join(' ')}`,
			);
		}

		context.log(`DNS reloaded: serial ${now} served, without ${fqdn(settings)}`);
	},
	async undoPlan(context) {
		const {settings} = context;
		const text = await readZone(context);
		const decision = await undoSerial(context, text);
		const edit = removeZoneRecord(text, zoneRequest(settings), new Date(), decision.restore);
		const needsReload = decision.served !== undefined && decision.served !== edit.serialAfter;
		const reload = needsReload ? [[...settings.rndc, settings.zone]] : [];
		return {
			commands: edit.removed.length > 0 ? [checker(settings).argv, ...reload] : [],
			diffs: changeDiffs([{path: settings.zoneFile, before: text, after: edit.text}]),
			notes:
				edit.removed.length > 0
					? [`SOA serial ${edit.serialBefore} -> ${edit.serialAfter}: ${decision.why}`]
					: [`nothing of ${settings.name} in ${settings.zoneFile}`],
		};
	},
};
