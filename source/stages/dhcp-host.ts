import {
	addDhcpHost,
	dhcpdErrors,
	DhcpConflictError,
	inspectDhcpd,
	readDhcpdIncludes,
	removeDhcpHost,
	type DhcpHostRequest,
} from '../host/dhcpd-conf.js';
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
import {dhcpdCheckNote, proveDhcpdRestarted} from './reload-services.js';
import {StageError, type Plan, type PreflightContext, type Stage, type LookContext} from './types.js';
import {checkerRefusal, readSettingFile, refusedBy} from './preflight-kit.js';
import {stageState, type StatesView} from './state.js';
import {dhcpRestarted} from './reload-services.js';

/** The backup of dhcpd.conf and the MAC this run wrote into it. */
type DhcpHostState = {backup: string; mac: string};

const dhcpHostState = stageState<DhcpHostState>('dhcp-host');

/** The MAC the DHCP host entry was written with, once written. */
export const dhcpHostMac = (context: StatesView): string | undefined => dhcpHostState.of(context).mac;

function hostRequest(settings: FarmSettings): DhcpHostRequest {
	return {
		name: fqdn(settings),
		fqdn: fqdn(settings),
		mac: settings.mac,
		ip: settings.ip,
		subnetMask: settings.subnetMask,
		farm: settings.name,
	};
}

function checker(settings: FarmSettings): Checker {
	return {argv: ['dhcpd', '-t', '-cf', settings.dhcpdConf], explain: dhcpdErrors};
}

async function readConf(context: LookContext): Promise<string> {
	const text = await context.host.readFileIfExists(context.settings.dhcpdConf);
	if (text === undefined) throw new StageError(`${context.settings.dhcpdConf} does not exist`);
	return text;
}

/** The reload stage (re)started the DHCP server after the block was added: the running server has it. */
function serverHasTheBlock(context: LookContext): boolean {
	return dhcpRestarted(context);
}

const literalNote =
	'fixed-address is the IP literal, not the name as in the seed: with a name, dhcpd needs DNS (BIND) answering when it starts';

/** The host block, computed once: apply writes exactly this content. */
async function planHost(context: LookContext): Promise<Plan> {
	const {settings} = context;
	const text = await readConf(context);
	const plan: Plan = {
		commands: [checker(settings).argv],
		diffs: [],
		notes: [literalNote],
		values: {confHash: contentHash(text)},
	};
	const included = await readDhcpdIncludes(context.host, settings.dhcpdConf, text);
	try {
		plan.notes.push(...inspectDhcpd(text, hostRequest(settings), included).notes);
	} catch {}

	if (!settings.mac) {
		plan.notes.unshift('the MAC stage has not chosen the MAC yet: the block shows once it has');
		plan.refusal = 'no MAC address in the settings: run the MAC stage first';
		return plan;
	}

	try {
		const edit = addDhcpHost(text, hostRequest(settings), included);
		const change = {path: settings.dhcpdConf, before: text, after: edit.text};
		plan.diffs = changeDiffs([change]);
		plan.edits = fileEdits([change]);
		if (edit.added.length === 0) plan.notes.unshift(`host ${fqdn(settings)} is already there`);
	} catch (error) {
		plan.notes.unshift((error as Error).message);
		plan.refusal =
			error instanceof DhcpConflictError
				? `${settings.dhcpdConf}:\n${error.message}`
				: `cannot read ${settings.dhcpdConf}: ${(error as Error).message}`;
	}

	return plan;
}

/** dhcpd.conf: dhcpd -t accepts it, no other host has our name, MAC or address, and the subnet's mask is ours. */
export async function dhcpPreflight(context: PreflightContext): Promise<void> {
	const {host, settings, add} = context;
	const text = await readSettingFile(context, 'dhcpdConf');
	if (text === undefined) return;
	const refusal = await checkerRefusal(host, ['dhcpd', '-t', '-cf', settings.dhcpdConf], dhcpdErrors);
	if (refusal) add('dhcpdConf', refusedBy('dhcpd -t', refusal));
	try {
		const name = fqdn(settings);
		const request = {name, fqdn: name, mac: settings.mac, ip: settings.ip, subnetMask: settings.subnetMask};
		const included = await readDhcpdIncludes(host, settings.dhcpdConf, text);
		const state = inspectDhcpd(text, {...request, farm: settings.name}, included);
		for (const concern of state.concerns) add(concern.setting, concern.text);
		const mask = state.subnet?.split(' netmask ')[1];
		if (mask && mask !== settings.subnetMask) {
			add('subnetMask', `the subnet holding ${settings.ip} in ${settings.dhcpdConf} is ${state.subnet}`);
		}
	} catch (error) {
		if (!refusal) add('dhcpdConf', `farmclone cannot read it: ${(error as Error).message}`);
	}
}

export const dhcpHostStage: Stage = {
	id: 'dhcp-host',
	title: 'DHCP host',
	summary: 'add a host block binding the MAC to the IP in dhcpd.conf, checked with dhcpd -t',
	danger: 'none',
	skippable: true,
	preflight: [dhcpPreflight],
	async check(context) {
		const {settings} = context;
		const text = await context.host.readFileIfExists(settings.dhcpdConf);
		if (text === undefined) return {status: 'conflict', detail: `${settings.dhcpdConf} does not exist`};
		try {
			const included = await readDhcpdIncludes(context.host, settings.dhcpdConf, text);
			const state = inspectDhcpd(text, hostRequest(settings), included);
			const notes = state.notes.map((note) => `\n${note}`).join('');
			if (state.conflicts.length > 0) {
				return {status: 'conflict', detail: `${settings.dhcpdConf}:\n${state.conflicts.join('\n')}${notes}`};
			}

			if (state.status !== 'absent') {
				const by = state.status === 'ours' ? 'added by farmclone' : 'not added by farmclone: undo leaves it';
				return {
					status: 'done',
					detail: `host ${fqdn(settings)} (${settings.mac}, ${settings.ip}) is in ${settings.dhcpdConf}, ${by}`,
				};
			}

			const mac = settings.mac ? '' : ' (its MAC comes from the MAC stage)';
			return {status: 'pending', detail: `no host ${fqdn(settings)} in ${settings.dhcpdConf} yet${mac}${notes}`};
		} catch (error) {
			return {status: 'conflict', detail: `cannot read ${settings.dhcpdConf}: ${(error as Error).message}`};
		}
	},
	plan: planHost,
	async apply(context, approved) {
		const {settings} = context;
		const plan = approved ?? (await planHost(context));
		assertPlanCanApply(plan);
		const edits = plan.edits ?? [];
		if (edits.length === 0) {
			await assertUnchanged(context, [{path: settings.dhcpdConf, beforeHash: plan.values?.['confHash'] ?? ''}]);
			context.log(`host ${fqdn(settings)} is already in ${settings.dhcpdConf}`);
			return;
		}

		const backups = await writeChecked(context, edits, checker(settings), 'the new host block');
		await dhcpHostState.save(context, {backup: backups[settings.dhcpdConf], mac: settings.mac});
		context.log(`added host ${fqdn(settings)} (${settings.mac} -> ${settings.ip}) to ${settings.dhcpdConf}`);
		context.log(literalNote);
	},
	async verify(context) {
		const {settings} = context;
		const state = inspectDhcpd(await readConf(context), hostRequest(settings));
		if (state.status === 'absent') throw new StageError(`no host ${fqdn(settings)} in ${settings.dhcpdConf}`);
		const problem = await runChecker(context, checker(settings));
		if (problem) throw new StageError(`dhcpd -t refuses ${settings.dhcpdConf}:\n${problem}`);
	},
	async undo(context) {
		const {settings} = context;
		const text = await readConf(context);
		const edit = removeDhcpHost(text, settings.name);
		if (edit.removed.length === 0) {
			context.log(`nothing of ${settings.name} in ${settings.dhcpdConf}`);
			return;
		}

		await writeChecked(
			context,
			[{path: settings.dhcpdConf, before: text, after: edit.text}],
			checker(settings),
			'the file without the host block',
		);
		context.log(`removed host ${fqdn(settings)} from ${settings.dhcpdConf}`);
		if (!serverHasTheBlock(context)) return;
		const began = Date.now();
		await context.host.run(settings.dhcpRestart);
		await proveDhcpdRestarted(context, began);
		context.log(`DHCP server restarted without the host block (${settings.dhcpRestart.join(' ')})`);
	},
	async undoPlan(context) {
		const {settings} = context;
		const text = await readConf(context);
		const edit = removeDhcpHost(text, settings.name);
		const restart = serverHasTheBlock(context) ? [settings.dhcpRestart] : [];
		const notes = restart.length > 0 ? [dhcpdCheckNote(settings)] : [];
		return {
			commands: edit.removed.length > 0 ? [checker(settings).argv, ...restart] : [],
			diffs: changeDiffs([{path: settings.dhcpdConf, before: text, after: edit.text}]),
			notes: edit.removed.length > 0 ? notes : [`nothing of ${settings.name} in ${settings.dhcpdConf}`],
		};
	},
};
