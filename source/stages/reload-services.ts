import {StageError, type Stage, type StageContext} from './types.js';
import {fqdn} from '../settings/schema.js';

/** The serial `named-checkzone` read from the file. */
async function fileSerial(context: StageContext): Promise<string> {
	const {zone, zoneFile} = context.settings;
	// -i local: named's own integrity checks, without resolving out-of-zone names through this machine.
	const result = await context.host.run(['named-checkzone', '-i', 'local', zone, zoneFile], {reject: false});
	const serial = /loaded serial (\d+)/.exec(result.stdout)?.[1];
	if (result.exitCode !== 0 || !serial) {
		throw new StageError(`${zoneFile} does not load: ${result.stdout.trim() || result.stderr.trim()}`);
	}

	return serial;
}

function dig(context: StageContext, name: string, type: string): string[] {
	const {dnsServer, dnsPort} = context.settings;
	return ['dig', `@${dnsServer}`, '-p', String(dnsPort), '+short', '+norecurse', '+time=2', '+tries=2', name, type];
}

async function served(context: StageContext): Promise<{serial?: string; address: string[]}> {
	const {zone} = context.settings;
	const soa = await context.host.run(dig(context, zone, 'SOA'), {reject: false});
	const a = await context.host.run(dig(context, fqdn(context.settings), 'A'), {reject: false});
	return {
		serial: soa.stdout.trim().split(/\s+/)[2],
		address: a.stdout
			.split('\n')
			.map((line) => line.trim())
			.filter(Boolean),
	};
}

async function dnsServesRecord(context: StageContext): Promise<string | undefined> {
	const wanted = await fileSerial(context);
	const now = await served(context);
	if (now.serial !== wanted) return `the DNS server serves serial ${now.serial ?? 'none'}, the file has ${wanted}`;
	if (!now.address.includes(context.settings.ip)) {
		return `${fqdn(context.settings)} resolves to ${now.address.join(', ') || 'nothing'}, not ${context.settings.ip}`;
	}

	return undefined;
}

/** The seed's "reload bind and dhcp": DNS first, proven by asking it; dhcpd.conf checked before the restart. */
export const reloadServicesStage: Stage = {
	id: 'reload-services',
	title: 'Reload DNS and DHCP',
	summary: 'rndc reload, check the new name resolves, dhcpd -t, restart the DHCP server',
	danger: 'confirm',
	skippable: false,
	async check(context) {
		const dnsProblem = await dnsServesRecord(context);
		if (dnsProblem) return {status: 'pending', detail: dnsProblem};
		const restartedAt = context.facts['reload-services.dhcpRestartedAt'];
		const conf = await import('node:fs/promises').then(async (fs) => fs.stat(context.settings.dhcpdConf));
		if (typeof restartedAt !== 'number' || conf.mtimeMs > restartedAt) {
			return {status: 'pending', detail: 'the DHCP server has not been restarted since dhcpd.conf changed'};
		}

		return {status: 'done', detail: `${fqdn(context.settings)} served, DHCP server restarted`};
	},
	async plan(context) {
		const {zone, dhcpdConf, dhcpRestart, rndc} = context.settings;
		return {
			commands: [
				['named-checkzone', '-i', 'local', zone, context.settings.zoneFile],
				[...rndc, zone],
				dig(context, zone, 'SOA'),
				dig(context, fqdn(context.settings), 'A'),
				['dhcpd', '-t', '-cf', dhcpdConf],
				dhcpRestart,
			],
			diffs: [],
			notes: ['rndc reload exits 0 even when the zone fails to load: the served SOA serial is compared with the file'],
		};
	},
	async apply(context) {
		const {zone, dhcpdConf, dhcpRestart, rndc} = context.settings;
		const wanted = await fileSerial(context);
		await context.host.run([...rndc, zone]);
		let problem: string | undefined;
		for (let attempt = 0; attempt < 20; attempt++) {
			problem = await dnsServesRecord(context);
			if (!problem) break;
			await new Promise((resolve) => setTimeout(resolve, 250));
		}

		if (problem) throw new StageError(`after rndc reload: ${problem}`, "look at named's log: the zone did not load");
		context.log(`DNS serves serial ${wanted} and ${fqdn(context.settings)} -> ${context.settings.ip}`);
		const check = await context.host.run(['dhcpd', '-t', '-cf', dhcpdConf], {reject: false});
		if (check.exitCode !== 0) {
			throw new StageError(`dhcpd -t refuses ${dhcpdConf}: ${check.stderr.trim().split('\n').slice(-4).join(' ')}`);
		}

		// Recorded first: the DHCP host stage's undo restarts the server whenever this one may have loaded the block.
		await context.record({'reload-services.dhcpRestarting': true});
		await context.host.run(dhcpRestart);
		await context.record({'reload-services.dhcpRestartedAt': Date.now()});
	},
	async verify(context) {
		const problem = await dnsServesRecord(context);
		if (problem) throw new StageError(problem);
	},
	async undo() {
		// Reloads are not undone: the stages that edited the files reload after their own undo.
	},
};
