import {StageError, type Stage, type LookContext} from './types.js';
import {clockTime} from '../host/clock.js';
import {inspectLoadedDhcpd, waitForLoadedDhcpd, type DhcpdLook, type RunningDhcpd} from '../host/dhcpd-process.js';
import {fqdn, type FarmSettings} from '../settings/schema.js';
import {stageState, type StatesView} from './state.js';
import {zonePreflight} from './dns-record.js';
import {dhcpPreflight} from './dhcp-host.js';

/** The DHCP server's restart: announced before it (epoch ms), and when it returned. */
type ReloadServicesState = {dhcpRestarting: boolean; dhcpRestartBegan: number; dhcpRestartedAt: number};

const reloadServicesState = stageState<ReloadServicesState>('reload-services');

/** Whether this run has restarted (or began restarting) the DHCP server: its lease of our host may be live. */
export const dhcpRestarted = (context: StatesView): boolean => {
	const state = reloadServicesState.of(context);
	return state.dhcpRestarting === true || state.dhcpRestartedAt !== undefined;
};

/** The serial `named-checkzone` read from the file. */
async function fileSerial(context: LookContext): Promise<string> {
	const {zone, zoneFile} = context.settings;
	// -i local: named's own integrity checks, without resolving out-of-zone names through this machine.
	const result = await context.host.run(['named-checkzone', '-i', 'local', zone, zoneFile], {reject: false});
	const serial = /loaded serial (\d+)/.exec(result.stdout)?.[1];
	if (result.exitCode !== 0 || !serial) {
		throw new StageError(`${zoneFile} does not load: ${result.stdout.trim() || result.stderr.trim()}`);
	}

	return serial;
}

function dig(context: LookContext, name: string, type: string): string[] {
	const {dnsServer, dnsPort} = context.settings;
	return ['dig', `@${dnsServer}`, '-p', String(dnsPort), '+short', '+norecurse', '+time=2', '+tries=2', name, type];
}

async function served(context: LookContext): Promise<{serial?: string; address: string[]}> {
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

async function dnsServesRecord(context: LookContext): Promise<string | undefined> {
	const wanted = await fileSerial(context);
	const now = await served(context);
	if (now.serial !== wanted) return `the DNS server serves serial ${now.serial ?? 'none'}, the file has ${wanted}`;
	if (!now.address.includes(context.settings.ip)) {
		return `${fqdn(context.settings)} resolves to ${now.address.join(', ') || 'nothing'}, not ${context.settings.ip}`;
	}

	return undefined;
}

function dhcpdHint(settings: FarmSettings, look: Extract<DhcpdLook, {problem: string}>): string {
	const log = 'see what dhcpd said in `journalctl -u isc-dhcp-server` (or /var/log/syslog)';
	if (look.kind === 'stale') return `${settings.dhcpRestart.join(' ')} did not start a new dhcpd: ${log}`;
	if (look.kind === 'other-conf') return `the DHCP server does not run with ${settings.dhcpdConf}: ${log}`;
	return `${log}; if dhcpd does run, set dhcpdPidFile to the pid file it writes (Ubuntu's unit: /run/dhcp-server/dhcpd.pid)`;
}

function describeDhcpd(dhcpd: RunningDhcpd): string {
	return `dhcpd pid ${dhcpd.pid} started ${clockTime(dhcpd.startedAt)} reads ${dhcpd.conf}`;
}

/**
 * After a DHCP server restart that began at `began` (ms since the epoch):
 * waits for the new dhcpd and logs it, or throws what is wrong with the one
 * that runs.
 */
export async function proveDhcpdRestarted(context: LookContext, began: number): Promise<void> {
	const {host, settings, signal} = context;
	const look = await waitForLoadedDhcpd(host, settings, {at: began, what: 'the restart'}, {signal});
	if (look.problem !== undefined) {
		throw new StageError(`after ${settings.dhcpRestart.join(' ')}: ${look.problem}`, dhcpdHint(settings, look));
	}

	context.log(describeDhcpd(look.dhcpd));
}

/** How a plan says the restart is checked. */
export function dhcpdCheckNote(settings: FarmSettings): string {
	return (
		`the restart's exit code is not trusted: ${settings.dhcpdPidFile} must then name a dhcpd started after it, ` +
		`reading ${settings.dhcpdConf}, unchanged since`
	);
}

/** The seed's "reload bind and dhcp": DNS first, proven by asking it; dhcpd.conf checked before the restart. */
export const reloadServicesStage: Stage = {
	id: 'reload-services',
	title: 'Reload DNS and DHCP',
	summary: 'rndc reload, check the new name resolves, dhcpd -t, restart the DHCP server',
	danger: 'confirm',
	skippable: false,
	preflight: [zonePreflight, dhcpPreflight],
	async check(context) {
		const dnsProblem = await dnsServesRecord(context);
		if (dnsProblem) return {status: 'pending', detail: dnsProblem};
		// Only this run's own restart counts: the DHCP host stage's undo restarts the server when this one did.
		if (reloadServicesState.of(context).dhcpRestarting !== true) {
			return {status: 'pending', detail: 'this run has not restarted the DHCP server yet'};
		}

		// Also right after a crash between the restart and its record: the running dhcpd tells.
		const look = await inspectLoadedDhcpd(context.host, context.settings);
		if (look.problem !== undefined) return {status: 'pending', detail: look.problem};
		return {status: 'done', detail: `${fqdn(context.settings)} served, ${describeDhcpd(look.dhcpd)}`};
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
			notes: [
				'rndc reload exits 0 even when the zone fails to load: the served SOA serial is compared with the file',
				dhcpdCheckNote(context.settings),
			],
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
		const began = Date.now();
		await reloadServicesState.save(context, {dhcpRestarting: true, dhcpRestartBegan: began});
		await context.host.run(dhcpRestart);
		await reloadServicesState.save(context, {dhcpRestartedAt: Date.now()});
		await proveDhcpdRestarted(context, began);
	},
	async verify(context) {
		const problem = await dnsServesRecord(context);
		if (problem) throw new StageError(problem);
		const began = reloadServicesState.of(context).dhcpRestartBegan;
		const after = typeof began === 'number' ? {at: began, what: 'the restart'} : undefined;
		const look = await inspectLoadedDhcpd(context.host, context.settings, after);
		if (look.problem !== undefined) throw new StageError(look.problem, dhcpdHint(context.settings, look));
	},
	async undo() {
		// Reloads are not undone: the stages that edited the files reload after their own undo.
	},
};
