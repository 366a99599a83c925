/**
 * Everything that can be known before stage 1 changes anything: the
 * settings, the service files as the real checkers and farmclone's own
 * inspections see them (what the checkers miss: a second A record, a
 * duplicate MAC or address, an address outside every subnet, a port
 * forwarded twice), the cluster, the volume group and which volumes the
 * instances own. Nobody wants to learn about a taken IP after a 30 GB copy. What this run already did (the
 * journal's facts, farmclone's marked lines) is not a conflict.
 */
import path from 'node:path';
import {dhcpdErrors, inspectDhcpd, readDhcpdIncludes} from '../host/dhcpd-conf.js';
import {listInstances, type GanetiInstance} from '../host/ganeti.js';
import {missingProgram, type Host} from '../host/host.js';
import {isDeviceMounted} from '../host/image.js';
import {formatBytes, getVg, listLvs, parseSize, roundUpToExtent, type LogicalVolume} from '../host/lvm.js';
import {isOurSite, nginxErrors} from '../host/nginx-site.js';
import {inspectShorewall, readShorewallIncludes, ruleRequest, shorewallErrors} from '../host/shorewall-files.js';
import {inspectZone, readZoneIncludes} from '../host/zone-file.js';
import {farmcloneCommand} from '../host/self.js';
import {
	addressBook,
	conventionalPort,
	freeMac,
	freePort,
	pickAddress,
	subnetOf,
	type AddressBook,
} from '../settings/discover-addresses.js';
import {readHostPicture} from '../settings/discover.js';
import {fqdn, type FarmSettings} from '../settings/schema.js';
import {SettingsError, validateSettings, type FieldError} from '../settings/validate.js';
import {candidateMacs} from '../stages/mac.js';
import type {Facts} from '../stages/types.js';
import {
	noSuchInstance,
	volumeOwnershipProblems,
	type VolumeField,
	type VolumeProblem,
} from '../stages/volume-ownership.js';

export {volumeOwnershipProblems};

/** One reason not to start: the setting (or file) concerned, its value, and why. */
export type Finding = FieldError;

/** The findings of the preflight; bad input, so the command exits 2 like any other bad setting. */
export class PreflightError extends SettingsError {
	constructor(farm: string, findings: Finding[]) {
		super(farm, findings);
		this.name = 'PreflightError';
		this.message =
			`preflight refuses to start ${farm}; nothing was changed:\n` +
			findings
				.map((finding) => `  ${finding.field} = ${JSON.stringify(finding.value)}: ${indent(finding.reason)}`)
				.join('\n');
	}
}

const indent = (text: string) => text.trim().split('\n').join('\n      ');

type Collect = (field: keyof FarmSettings, reason: string) => void;

/** The part of a checker's output that says what is wrong. */
async function checker(
	host: Host,
	argv: string[],
	explain: (output: string) => string,
	inputs?: string,
): Promise<string | undefined> {
	const result = inputs ? await host.runCheck(argv, inputs, {reject: false}) : await host.run(argv, {reject: false});
	if (result.exitCode === 0) return undefined;
	return explain(`${result.stdout}\n${result.stderr}`) || `${argv.join(' ')} exited ${result.exitCode}`;
}

async function readSetting(
	host: Host,
	settings: FarmSettings,
	field: 'zoneFile' | 'dhcpdConf' | 'nginxConf',
	add: Collect,
): Promise<string | undefined> {
	try {
		const text = await host.readFileIfExists(settings[field]);
		if (text === undefined) add(field, 'no such file');
		return text;
	} catch (error) {
		add(field, `cannot be read: ${(error as Error).message}`);
		return undefined;
	}
}

async function zone(host: Host, settings: FarmSettings, add: Collect): Promise<void> {
	const text = await readSetting(host, settings, 'zoneFile', add);
	if (text === undefined) return;
	const refusal = await checker(host, ['named-checkzone', '-i', 'local', settings.zone, settings.zoneFile], (output) =>
		output.trim(),
	);
	if (refusal) add('zoneFile', `named-checkzone refuses it:\n${refusal}`);
	try {
		const included = await readZoneIncludes(host, settings.zoneFile, text, settings.zone);
		const state = inspectZone(
			text,
			{zone: settings.zone, record: settings.record, ip: settings.ip, farm: settings.name},
			included,
		);
		for (const conflict of state.conflicts) {
			add(/holds /.test(conflict) ? 'ip' : /uses the name/.test(conflict) ? 'record' : 'zoneFile', conflict);
		}
	} catch (error) {
		if (!refusal) add('zoneFile', `farmclone cannot read it: ${(error as Error).message}`);
	}
}

async function dhcp(host: Host, settings: FarmSettings, add: Collect): Promise<void> {
	const text = await readSetting(host, settings, 'dhcpdConf', add);
	if (text === undefined) return;
	const refusal = await checker(host, ['dhcpd', '-t', '-cf', settings.dhcpdConf], dhcpdErrors);
	if (refusal) add('dhcpdConf', `dhcpd -t refuses it:\n${refusal}`);
	try {
		const name = fqdn(settings);
		const request = {name, fqdn: name, mac: settings.mac, ip: settings.ip, subnetMask: settings.subnetMask};
		const included = await readDhcpdIncludes(host, settings.dhcpdConf, text);
		const state = inspectDhcpd(text, {...request, farm: settings.name}, included);
		for (const conflict of state.conflicts) {
			add(/hardware ethernet/.test(conflict) ? 'mac' : /uses the name/.test(conflict) ? 'record' : 'ip', conflict);
		}

		const mask = state.subnet?.split(' netmask ')[1];
		if (mask && mask !== settings.subnetMask) {
			add('subnetMask', `the subnet holding ${settings.ip} in ${settings.dhcpdConf} is ${state.subnet}`);
		}
	} catch (error) {
		if (!refusal) add('dhcpdConf', `farmclone cannot read it: ${(error as Error).message}`);
	}
}

async function cluster(host: Host, settings: FarmSettings, add: Collect): Promise<void> {
	let instances: GanetiInstance[];
	try {
		instances = await listInstances(host);
	} catch (error) {
		add('sourceInstance', `gnt-instance list fails: ${(error as Error).message}`);
		return;
	}

	const name = fqdn(settings);
	if (!instances.some((instance) => instance.name === settings.sourceInstance)) add('sourceInstance', noSuchInstance);

	const mac = settings.mac.toLowerCase();
	for (const instance of instances) {
		if (instance.name === name) {
			// Ours when it has our MAC: a resumed run created it.
			if (!mac || !instance.macs.includes(mac)) {
				add('record', `Ganeti instance ${name} already exists (MAC ${instance.macs.join(', ') || 'none'})`);
			}

			continue;
		}

		if (instance.ips.includes(settings.ip)) add('ip', `used by Ganeti instance ${instance.name} (nic.ips)`);
		if (mac && instance.macs.includes(mac)) add('mac', `used by Ganeti instance ${instance.name} (nic.macs)`);
	}
}

/**
 * Snapshot only the source instance's disk, write only to a volume this run
 * creates and no instance owns, and room for both in the VG.
 */
async function volumes(host: Host, settings: FarmSettings, facts: Facts, add: Collect): Promise<void> {
	const {vg, sourceLv, snapshotLv, targetLv, snapshotSize} = settings;
	let lvs: LogicalVolume[];
	try {
		lvs = await listLvs(host, vg);
	} catch (error) {
		add('vg', `lvs cannot list it: ${(error as Error).message}`);
		return;
	}

	const source = lvs.find((lv) => lv.name === sourceLv);
	const snapshot = lvs.find((lv) => lv.name === snapshotLv);
	const target = lvs.find((lv) => lv.name === targetLv);
	const copied = facts['copy.completed'] === true;
	if (!source && !copied) add('sourceLv', `no such volume in ${vg} (lvs)`);
	if (source?.snapshot) add('sourceLv', `is a snapshot of ${source.origin}, not a VM's disk`);
	let owners: VolumeProblem[] = [];
	try {
		owners = await volumeOwnershipProblems(host, settings, facts, lvs);
	} catch (error) {
		add('sourceInstance', `gnt-instance info fails: ${(error as Error).message}`);
	}

	for (const problem of owners) add(problem.field, problem.reason);
	// An instance's disk is said so once, not also as a volume that merely exists.
	const owned = (field: VolumeField) => owners.some((problem) => problem.field === field);
	const ourSnapshot = facts['snapshot.created'] === true && facts['snapshot.uuid'] === snapshot?.uuid;
	if (snapshot && !ourSnapshot && !owned('snapshotLv')) {
		add('snapshotLv', `${vg}/${snapshotLv} already exists and this run did not create it`);
	}

	// A target of this run may be open: the detached copy of an earlier session writing it.
	if (target && facts['create-volume.uuid'] !== target.uuid && !owned('targetLv')) {
		const busy = target.open || (await isDeviceMounted(host, target.path)) ? ', and it is open or mounted' : '';
		add('targetLv', `${vg}/${targetLv} already exists and this run did not create it${busy}: it is never written to`);
	}

	if (target || facts['create-volume.uuid'] || !source) return;
	try {
		const group = await getVg(host, vg);
		const needs =
			(snapshot ? 0 : roundUpToExtent(parseSize(snapshotSize), group.extentSize)) +
			roundUpToExtent(source.size, group.extentSize);
		if (group.free < needs) {
			add(
				'vg',
				`${formatBytes(group.free)} free, but the snapshot (${snapshotSize}) and the target (${formatBytes(source.size)}) need ${formatBytes(needs)}`,
			);
		}
	} catch (error) {
		add('vg', `vgs cannot read it: ${(error as Error).message}`);
	}
}

async function firewall(host: Host, settings: FarmSettings, add: Collect): Promise<void> {
	const rulesPath = path.join(settings.shorewallDir, 'rules');
	const rules = await host.readFileIfExists(rulesPath).catch(() => undefined);
	if (rules === undefined) {
		add('shorewallDir', `${rulesPath} does not exist or cannot be read`);
		return;
	}

	const params = (await host.readFileIfExists(path.join(settings.shorewallDir, 'params')).catch(() => '')) ?? '';
	const refusal = await checker(
		host,
		['shorewall', 'check', settings.shorewallDir],
		shorewallErrors,
		settings.shorewallDir,
	);
	if (refusal) add('shorewallDir', `shorewall check refuses it:\n${refusal}`);
	const included = await readShorewallIncludes(host, settings.shorewallDir, rules);
	const state = inspectShorewall(params, rules, ruleRequest(settings), included);
	for (const conflict of state.conflicts) {
		add(
			/forwarded/.test(conflict) ? 'sshPort' : /already set/.test(conflict) ? 'shorewallParam' : 'shorewallDir',
			conflict,
		);
	}
}

async function proxy(host: Host, settings: FarmSettings, add: Collect): Promise<void> {
	if ((await readSetting(host, settings, 'nginxConf', add)) === undefined) return;
	const refusal = await checker(host, ['nginx', '-t', '-c', settings.nginxConf], nginxErrors);
	if (refusal) add('nginxConf', `nginx -t refuses it:\n${refusal}`);
	// The stage proves nginx loaded the site by asking it with curl; a farm host need not have curl
	// (Debian's ganeti pulls only libcurl): found out at the last stage, after the firewall restart.
	if (!(await host.which('curl'))) {
		add('serverName', `${missingProgram('curl')}: the reverse proxy stage asks the site with it`);
	}
	const site = path.join(settings.sitesAvailable, settings.serverName);
	const text = await host.readFileIfExists(site).catch(() => undefined);
	if (text !== undefined && !isOurSite(text, settings.name)) {
		add('serverName', `${site} already exists and was not written by farmclone`);
	}
}

/** Each check, and the stages whose writes it protects: a run of other stages does not need it. */
const checks: Array<{
	stages: string[];
	run: (host: Host, settings: FarmSettings, facts: Facts, add: Collect) => Promise<void>;
}> = [
	{stages: ['snapshot', 'create-volume', 'copy'], run: volumes},
	{stages: ['dns-record', 'reload-services'], run: async (host, settings, _facts, add) => zone(host, settings, add)},
	{
		stages: ['mac', 'dhcp-host', 'reload-services'],
		run: async (host, settings, _facts, add) => dhcp(host, settings, add),
	},
	{stages: ['mac', 'ganeti-instance'], run: async (host, settings, _facts, add) => cluster(host, settings, add)},
	{
		stages: ['firewall-rule', 'firewall-restart'],
		run: async (host, settings, _facts, add) => firewall(host, settings, add),
	},
	{stages: ['reverse-proxy'], run: async (host, settings, _facts, add) => proxy(host, settings, add)},
];

/** The free values a refusal names, each with the command that takes it: by field. */
export function freeValues(
	book: AddressBook,
	settings: FarmSettings,
	refused: ReadonlySet<string>,
): Partial<Record<'ip' | 'sshPort' | 'mac', string>> {
	const set = (...assignments: string[]) => farmcloneCommand(['farm', 'set', settings.name, ...assignments]);
	const free: Partial<Record<'ip' | 'sshPort' | 'mac', string>> = {};
	if (refused.has('ip')) {
		const subnet = subnetOf(book, settings.ip) ?? book.subnets[0];
		const pick = subnet && pickAddress(book, subnet, settings.ip);
		// The port follows the address when it follows the seed's convention (or is refused too).
		const withPort = refused.has('sshPort') || settings.sshPort === conventionalPort(settings.ip);
		if (pick) {
			free.ip = `${pick.ip} is free: ${set(`ip=${pick.ip}`, ...(withPort ? [`sshPort=${pick.sshPort}`] : []))}`;
		}
	}

	if (refused.has('sshPort') && !free.ip) {
		const port = freePort(book, conventionalPort(settings.ip));
		if (port) free.sshPort = `${port} is free: ${set(`sshPort=${port}`)}`;
	}

	if (refused.has('mac')) {
		const mac = freeMac(book, candidateMacs(settings.name));
		if (mac) free.mac = `${mac} is free: ${set(`mac=${mac}`)}`;
	}

	return free;
}

/** A refused ip, port or MAC: its last finding names a free one. */
async function nameFreeValues(
	host: Host,
	settings: FarmSettings,
	findings: Finding[],
	otherFarms: FarmSettings[],
): Promise<void> {
	const refused = new Set(
		findings.map((finding) => finding.field).filter((field) => ['ip', 'sshPort', 'mac'].includes(field)),
	);
	if (refused.size === 0) return;
	let book: AddressBook;
	try {
		book = addressBook(await readHostPicture(host, settings, otherFarms));
	} catch {
		// The findings already say what cannot be read.
		return;
	}

	for (const [field, text] of Object.entries(freeValues(book, settings, refused))) {
		const last = findings.filter((finding) => finding.field === field).at(-1);
		if (last) last.reason = `${last.reason}; ${text}`;
	}
}

/**
 * Every problem the run of `stageIds` (default: all) would meet, in the order
 * of the stages: empty when it may start. Read-only: runs only the checkers
 * and listings. `facts` of the journal tell what this farm's run already made.
 */
export async function preflight(
	host: Host,
	settings: FarmSettings,
	facts: Facts = {},
	stageIds?: readonly string[],
	/** The other saved farms: a free address named in a refusal is none of theirs. */
	otherFarms: FarmSettings[] = [],
): Promise<Finding[]> {
	const wanted = checks.filter((check) => !stageIds || check.stages.some((stage) => stageIds.includes(stage)));
	if (wanted.length === 0) return [];
	const findings: Finding[] = validateSettings(settings as unknown as Record<string, unknown>);
	if (findings.length > 0) return findings;
	const add: Collect = (field, reason) => {
		if (!findings.some((finding) => finding.field === field && finding.reason === reason)) {
			findings.push({field, value: settings[field], reason});
		}
	};

	for (const check of wanted) await check.run(host, settings, facts, add);
	await nameFreeValues(host, settings, findings, otherFarms);
	return findings;
}

/** The preflight, refusing to start with its findings. */
export async function assertPreflight(
	host: Host,
	settings: FarmSettings,
	facts: Facts = {},
	stageIds?: readonly string[],
	otherFarms: FarmSettings[] = [],
): Promise<void> {
	const findings = await preflight(host, settings, facts, stageIds, otherFarms);
	if (findings.length > 0) throw new PreflightError(settings.name, findings);
}
