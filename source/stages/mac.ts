import {createHash, randomBytes} from 'node:crypto';
import {removeDhcpHost} from '../host/dhcpd-conf.js';
import {listInstances} from '../host/ganeti.js';
import type {ReadOnlyHost} from '../host/host.js';
import {macProblem} from '../settings/validate.js';
import {StageError, StalePlanError, type Plan, type Stage, type LookContext} from './types.js';
import {stageState} from './state.js';
import {dhcpPreflight} from './dhcp-host.js';
import {clusterPreflight} from './ganeti-instance.js';

type MacState = {generated: string};

const macState = stageState<MacState>('mac');

/** Every `hardware ethernet` in dhcpd.conf, lower case; comments ignored. */
export function dhcpdMacs(text: string): string[] {
	const macs: string[] = [];
	for (const line of text.split('\n')) {
		const code = line.replace(/#.*/, '');
		for (const match of code.matchAll(/hardware\s+ethernet\s+([\da-f:]+)\s*;/gi)) macs.push(match[1]!.toLowerCase());
	}

	return macs;
}

async function macsInUse(
	host: ReadOnlyHost,
	dhcpdConf: string,
	ignoreInstance: string,
	farm: string,
): Promise<Map<string, string>> {
	const used = new Map<string, string>();
	// This farm's own host block (a resumed run, or one undo has not removed yet) holds the MAC legitimately.
	const others = removeDhcpHost((await host.readFileIfExists(dhcpdConf)) ?? '', farm).text;
	for (const mac of dhcpdMacs(others)) used.set(mac, dhcpdConf);
	for (const instance of await listInstances(host)) {
		if (instance.name === ignoreInstance) continue;
		for (const mac of instance.macs) used.set(mac, `Ganeti instance ${instance.name}`);
	}

	return used;
}

/** The seed's `52:54:` + four random bytes (QEMU's locally administered prefix). */
export function randomMac(random: (size: number) => Buffer = randomBytes): string {
	const bytes = [...random(4)].map((byte) => byte.toString(16).padStart(2, '0'));
	return ['52', '54', ...bytes].join(':');
}

/**
 * The MAC the stage picks: the first free one of a sequence drawn from the
 * farm's name. It is the same for `farmclone plan` and the run, so the MAC the
 * plan shows (and uses in the DHCP block and the instance) is the one the run
 * keeps, unless the host took it meanwhile: then the run's plan shows another.
 */
export function candidateMacs(farm: string, count = 100): string[] {
	const macs: string[] = [];
	for (let attempt = 0; attempt < count; attempt++) {
		macs.push(randomMac(() => createHash('sha256').update(`farmclone mac ${farm} ${attempt}`).digest().subarray(0, 4)));
	}

	return macs;
}

async function planMac(context: LookContext): Promise<Plan> {
	const notes = [
		`not in ${context.settings.dhcpdConf} nor in the Ganeti cluster`,
		'saved in the farm settings so a resumed run reuses it',
	];
	const commands = [['gnt-instance', 'list', '--no-headers', '--separator=|', '-o', 'name,nic.macs']];
	if (context.settings.mac) return {commands, diffs: [], notes: [`MAC ${context.settings.mac} kept in the settings`]};
	const used = await macsInUse(context.host, context.settings.dhcpdConf, ours(context), context.settings.name);
	const mac = candidateMacs(context.settings.name).find((candidate) => !used.has(candidate));
	if (!mac) return {commands, diffs: [], notes, refusal: 'could not find a free MAC address in 100 tries'};
	return {
		commands,
		diffs: [],
		notes: [`MAC ${mac} (52:54: and 4 bytes drawn from the farm name)`, ...notes],
		values: {mac},
	};
}

function ours(context: LookContext): string {
	return `${context.settings.record}.${context.settings.zone}`;
}

async function conflictFor(context: LookContext, mac: string): Promise<string | undefined> {
	const problem = macProblem(mac);
	if (problem) return `mac ${mac}: ${problem}`;
	const used = await macsInUse(context.host, context.settings.dhcpdConf, ours(context), context.settings.name);
	const owner = used.get(mac.toLowerCase());
	return owner ? `mac ${mac} is already used by ${owner}` : undefined;
}

export const macStage: Stage = {
	id: 'mac',
	title: 'MAC address',
	summary: 'pick a MAC unique on the host; keep it in the farm settings',
	danger: 'none',
	skippable: false,
	preflight: [dhcpPreflight, clusterPreflight],
	async check(context) {
		const {mac} = context.settings;
		if (!mac) return {status: 'pending', detail: 'no MAC chosen yet'};
		const conflict = await conflictFor(context, mac);
		return conflict
			? {status: 'conflict', detail: conflict}
			: {status: 'done', detail: `MAC ${mac} kept in the settings`};
	},
	plan: planMac,
	async apply(context, approved) {
		const plan = approved ?? (await planMac(context));
		if (plan.refusal) throw new StageError(plan.refusal);
		const mac = plan.values?.['mac'];
		if (!mac) {
			if (!context.settings.mac) throw new StalePlanError('the MAC in the settings is gone');
			return;
		}

		if (context.settings.mac && context.settings.mac !== mac) {
			throw new StalePlanError(`the settings hold MAC ${context.settings.mac} now`);
		}

		const conflict = await conflictFor(context, mac);
		if (conflict) throw new StalePlanError(conflict);
		await context.updateSettings({mac});
		await macState.save(context, {generated: mac});
		context.log(`MAC ${mac}`);
	},
	async verify(context) {
		const result = await this.check(context);
		if (result.status !== 'done') throw new StageError(result.detail);
	},
	async undo(context) {
		// The MAC stays in the settings: nothing on the host holds it once the DHCP host and instance are gone.
		context.log(`MAC ${context.settings.mac} kept in the settings for the next run`);
	},
};
