import {randomBytes} from 'node:crypto';
import {removeDhcpHost} from '../host/dhcpd-conf.js';
import {listInstances} from '../host/ganeti.js';
import type {Host} from '../host/host.js';
import {macProblem} from '../settings/validate.js';
import {StageError, type Stage, type StageContext} from './types.js';

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
	host: Host,
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

function ours(context: StageContext): string {
	return `${context.settings.record}.${context.settings.zone}`;
}

async function conflictFor(context: StageContext, mac: string): Promise<string | undefined> {
	const problem = macProblem(mac);
	if (problem) return `mac ${mac}: ${problem}`;
	const used = await macsInUse(context.host, context.settings.dhcpdConf, ours(context), context.settings.name);
	const owner = used.get(mac.toLowerCase());
	return owner ? `mac ${mac} is already used by ${owner}` : undefined;
}

export const macStage: Stage = {
	id: 'mac',
	title: 'MAC address',
	summary: 'pick a random 52:54:xx:xx:xx:xx unique on the host and keep it in the farm settings',
	danger: 'none',
	skippable: false,
	async check(context) {
		const {mac} = context.settings;
		if (!mac) return {status: 'pending', detail: 'no MAC chosen yet'};
		const conflict = await conflictFor(context, mac);
		return conflict
			? {status: 'conflict', detail: conflict}
			: {status: 'done', detail: `MAC ${mac} kept in the settings`};
	},
	async plan(context) {
		return {
			commands: [['gnt-instance', 'list', '--no-headers', '--separator=|', '-o', 'name,nic.macs']],
			diffs: [],
			notes: [
				`a random 52:54:xx:xx:xx:xx not in ${context.settings.dhcpdConf} nor in the Ganeti cluster`,
				'saved in the farm settings so a resumed run reuses it',
			],
		};
	},
	async apply(context) {
		const used = await macsInUse(context.host, context.settings.dhcpdConf, ours(context), context.settings.name);
		for (let attempt = 0; attempt < 100; attempt++) {
			const mac = randomMac();
			if (used.has(mac)) continue;
			await context.updateSettings({mac});
			await context.record({'mac.generated': mac});
			context.log(`MAC ${mac}`);
			return;
		}

		throw new StageError('could not find a free MAC address in 100 tries');
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
