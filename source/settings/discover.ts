/**
 * A new farm's settings read off the host: the source instance's disk and
 * node from Ganeti, a free address from the zone, dhcpd.conf, the cluster and
 * the other farms, its SSH port by the seed's convention where Shorewall does
 * not forward it yet. Each value comes with where it came from. Read-only:
 * listings and file reads, nothing else.
 */
import path from 'node:path';
import {readDhcpdIncludes} from '../host/dhcpd-conf.js';
import {
	listInstances,
	parseInstanceOses,
	parseInstanceVolumes,
	queryGaneti,
	type GanetiInstance,
} from '../host/ganeti.js';
import type {ReadOnlyHost} from '../host/host.js';
import {listLvs} from '../host/lvm.js';
import {isOurSite} from '../host/nginx-site.js';
import {parseParams, readShorewallIncludes} from '../host/shorewall-files.js';
import {absoluteName, readZoneIncludes} from '../host/zone-file.js';
import {
	addressBook,
	pickAddress,
	subnetOf,
	type AddressBook,
	type HostPicture,
	type ReadFile,
} from './discover-addresses.js';
import {defaultSettings, fqdn, shorewallParamFor, type FarmSettings} from './schema.js';
import {completeSettings} from './validate.js';

/** Why no farm can be made from what the host says: bad input, the command exits 2. */
export class DiscoveryError extends Error {
	constructor(message: string) {
		super(message);
		this.name = 'DiscoveryError';
	}
}

/** One chosen setting: its value and where it came from. */
export type Choice = {field: string; value: string; from: string};

export type Discovery = {settings: FarmSettings; choices: Choice[]; notes: string[]};

/** What belongs to one farm: a new farm never takes these from another. */
const ownFields = new Set<keyof FarmSettings>([
	'name',
	'sourceInstance',
	'sourceLv',
	'vg',
	'snapshotLv',
	'targetLv',
	'record',
	'ip',
	'mac',
	'ganetiNode',
	'ganetiOs',
	'sshPort',
	'shorewallParam',
	'serverName',
	'subnetMask',
]);

/** The host's part of a farm's settings (file paths, commands, zone, timeouts), shared by the farms of one host. */
export function hostSettings(settings: FarmSettings): Partial<FarmSettings> {
	return Object.fromEntries(
		Object.entries(settings).filter(([field]) => !ownFields.has(field as keyof FarmSettings)),
	) as Partial<FarmSettings>;
}

async function readWithIncludes(
	host: ReadOnlyHost,
	file: string,
	includes: (text: string) => Promise<ReadFile['included']>,
): Promise<ReadFile | undefined> {
	const text = await host.readFileIfExists(file);
	return text === undefined ? undefined : {file, text, included: await includes(text)};
}

/** The zone, dhcpd.conf, Shorewall's rules and params as `settings` locate them, and the cluster. */
export async function readHostPicture(
	host: ReadOnlyHost,
	settings: Pick<FarmSettings, 'zone' | 'zoneFile' | 'dhcpdConf' | 'shorewallDir'>,
	farms: FarmSettings[],
	instances?: GanetiInstance[],
): Promise<HostPicture> {
	const rulesFile = path.join(settings.shorewallDir, 'rules');
	const paramsFile = path.join(settings.shorewallDir, 'params');
	const params = await host.readFileIfExists(paramsFile);
	return {
		zone: settings.zone,
		zoneFile: await readWithIncludes(host, settings.zoneFile, async (text) =>
			readZoneIncludes(host, settings.zoneFile, text, settings.zone),
		),
		dhcpdConf: await readWithIncludes(host, settings.dhcpdConf, async (text) =>
			readDhcpdIncludes(host, settings.dhcpdConf, text),
		),
		rules: await readWithIncludes(host, rulesFile, async (text) =>
			readShorewallIncludes(host, settings.shorewallDir, text),
		),
		params: params === undefined ? undefined : {file: paramsFile, text: params},
		instances: instances ?? (await listInstances(host)),
		farms,
	};
}

export type DiscoveryRequest = {
	name: string;
	/** The Ganeti instance to clone, as typed: a full name or its first labels. */
	from: string;
	/** Settings whose host part (file paths, commands, zone, timeouts) the new farm shares. */
	base: FarmSettings;
	/** Where `base` comes from, as the admin reads it: `farm gallifrey-dev`. */
	baseFrom: string;
	/** Every saved farm: their names, addresses and ports are taken. */
	farms: FarmSettings[];
};

/** The instance as Ganeti would expand the name: exact, else the one whose name starts with it. */
function findSource(instances: GanetiInstance[], from: string): GanetiInstance {
	const exact = instances.find((instance) => instance.name.toLowerCase() === from.toLowerCase());
	if (exact) return exact;
	const expanded = instances.filter((instance) => instance.name.toLowerCase().startsWith(`${from.toLowerCase()}.`));
	if (expanded.length === 1) return expanded[0]!;
	const known = instances.map((instance) => instance.name);
	const list = known.length > 6 ? `${known.slice(0, 6).join(', ')}, …` : known.join(', ');
	throw new DiscoveryError(
		expanded.length > 1
			? `--from ${from} names several Ganeti instances (${expanded.map((instance) => instance.name).join(', ')}): give the full name`
			: `no Ganeti instance ${from} (gnt-instance list knows: ${list || 'none'})`,
	);
}

async function instanceInfo(host: ReadOnlyHost, name: string): Promise<string> {
	const result = await queryGaneti(host, ['gnt-instance', 'info', '--static', name], {quiet: true});
	if (result.exitCode !== 0) {
		const why = (result.stderr.trim() || result.stdout.trim()).split('\n').at(-1);
		throw new DiscoveryError(`gnt-instance info --static ${name} fails: ${why ?? `exit ${result.exitCode}`}`);
	}

	return result.stdout;
}

function required(file: ReadFile | undefined, field: string, value: string): ReadFile {
	if (!file) {
		throw new DiscoveryError(
			`${field} ${value}: no such file (farm new reads the host's files where the other settings say; --like FARM takes them from a saved farm)`,
		);
	}

	return file;
}

/** The clone's record: the source's, its first label replaced by the farm's name (gallifrey.xivo.vm -> dev2.xivo.vm). */
function cloneRecord(name: string, source: string, zone: string): {record: string; from: string} {
	const suffix = `.${zone.replace(/\.$/, '')}`;
	if (!source.toLowerCase().endsWith(suffix.toLowerCase())) {
		return {record: name, from: `the farm's name (${source} is not in ${zone})`};
	}

	const labels = source.slice(0, -suffix.length).split('.');
	return {record: [name, ...labels.slice(1)].join('.'), from: `as ${labels.join('.')}, zone ${zone}`};
}

/** Everything that already has the names the new farm would take. */
async function nameTaken(host: ReadOnlyHost, settings: FarmSettings, picture: HostPicture, book: AddressBook) {
	const name = fqdn(settings);
	const taken: string[] = [];
	const inZone = book.names.get(absoluteName(name, '.').toLowerCase());
	if (inZone) taken.push(`${name} already has an A record (${inZone}) in ${path.basename(settings.zoneFile)}`);
	if (picture.instances.some((instance) => instance.name === name)) taken.push(`Ganeti instance ${name} exists`);
	const params = parseParams(picture.params?.text ?? '').find((param) => param.name === settings.shorewallParam);
	if (params) taken.push(`${settings.shorewallParam} is already set in params line ${params.line + 1}`);
	const lvs = await listLvs(host, settings.vg).catch(() => []);
	for (const lv of [settings.targetLv, settings.snapshotLv]) {
		if (lvs.some((volume) => volume.name === lv)) taken.push(`volume ${settings.vg}/${lv} exists`);
	}

	const site = path.join(settings.sitesAvailable, settings.serverName);
	const siteText = await host.readFileIfExists(site).catch(() => undefined);
	if (siteText !== undefined && !isOurSite(siteText, settings.name)) taken.push(`${site} exists`);
	const other = picture.farms.find((farm) => farm.serverName === settings.serverName || fqdn(farm) === name);
	if (other) taken.push(`farm ${other.name} has the same record or server name`);
	if (taken.length > 0) {
		throw new DiscoveryError(`the name ${settings.name} is taken on this host: ${taken.join('; ')}; choose another`);
	}
}

/** The first free addresses, named in the note on the chosen one: at most three. */
function skippedNote(skipped: Array<{ip: string; holder: string}>): string | undefined {
	if (skipped.length === 0) return undefined;
	const shown = skipped.slice(0, 3).map((entry) => `${entry.ip}: ${entry.holder}`);
	const more = skipped.length > 3 ? ` and ${skipped.length - 3} more` : '';
	return `taken: ${shown.join('; ')}${more}`;
}

/**
 * The settings of a new farm `name` cloning `from`, each chosen value with
 * where it came from. Throws DiscoveryError when there is nothing to clone
 * (no such instance, no LVM disk), when the name is taken on the host, or
 * when no address is free.
 */
export async function discoverFarm(host: ReadOnlyHost, request: DiscoveryRequest): Promise<Discovery> {
	const {name, base} = request;
	let instances: GanetiInstance[];
	try {
		instances = await listInstances(host);
	} catch (error) {
		throw new DiscoveryError(`gnt-instance list fails: ${(error as Error).message}`);
	}

	const source = findSource(instances, request.from);
	const info = await instanceInfo(host, source.name);
	const disks = parseInstanceVolumes(info).get(source.name) ?? [];
	const disk = disks[0];
	if (!disk) {
		throw new DiscoveryError(
			`${source.name} has no disk on LVM (gnt-instance info --static shows no VG/LV logical_id): farmclone copies an LVM volume`,
		);
	}

	const os = parseInstanceOses(info).get(source.name);
	const {record, from: recordFrom} = cloneRecord(name, source.name, base.zone);
	const defaults = defaultSettings(name, {...hostSettings(base), record});
	const serverDomain = base.serverName.split('.').slice(1).join('.');
	let picture: HostPicture;
	let book: AddressBook;
	try {
		picture = await readHostPicture(host, defaults, request.farms, instances);
		book = addressBook(picture);
	} catch (error) {
		if (error instanceof DiscoveryError) throw error;
		throw new DiscoveryError(`farmclone cannot read the host's files: ${(error as Error).message}`);
	}

	const zoneFile = required(picture.zoneFile, 'zoneFile', defaults.zoneFile);
	const dhcpdConf = required(picture.dhcpdConf, 'dhcpdConf', defaults.dhcpdConf);
	required(picture.rules, 'shorewallDir', path.join(defaults.shorewallDir, 'rules'));
	const sourceIp =
		book.names.get(absoluteName(source.name, '.').toLowerCase()) ??
		source.ips[0] ??
		[...book.ips.entries()].find(([, holder]) => holder.endsWith(`(host ${source.name})`))?.[0];
	const subnet = (sourceIp && subnetOf(book, sourceIp)) || book.subnets[0];
	if (!subnet) throw new DiscoveryError(`${dhcpdConf.file} declares no subnet: dhcpd would answer no clone`);
	const pick = pickAddress(book, subnet, sourceIp);
	if (!pick) {
		throw new DiscoveryError(
			`no free address in ${subnet.network}/${subnet.netmask} (${subnet.where}): every one is in ${path.basename(zoneFile.file)}, dhcpd.conf, the cluster, a range or another farm`,
		);
	}

	const sshPort = pick.sshPort;
	const settings = completeSettings({
		...defaults,
		name,
		sourceInstance: source.name,
		vg: disk.vg,
		sourceLv: disk.lv,
		ganetiNode: source.pnode || defaults.ganetiNode,
		ganetiOs: os ?? defaults.ganetiOs,
		record,
		ip: pick.ip,
		sshPort,
		subnetMask: subnet.netmask,
		shorewallParam: shorewallParamFor(record),
		serverName: serverDomain ? `${name}.${serverDomain}` : defaults.serverName,
		mac: '',
	});
	await nameTaken(host, settings, picture, book);

	const after = sourceIp ? `after ${source.name.split('.')[0]} ${sourceIp}` : `in ${subnet.network}`;
	const disksNote = disks.length > 1 ? ` (of ${disks.length})` : '';
	const choices: Choice[] = [
		{
			field: 'sourceInstance',
			value: source.name,
			from: source.name === request.from ? '--from' : `--from ${request.from}`,
		},
		{field: 'vg', value: settings.vg, from: `disk 0 of gnt-instance info --static${disksNote}`},
		{field: 'sourceLv', value: settings.sourceLv, from: 'the same disk'},
		{field: 'ganetiNode', value: settings.ganetiNode, from: 'its primary node (gnt-instance list)'},
		{field: 'ganetiOs', value: settings.ganetiOs, from: os ? 'its OS (gnt-instance info)' : 'the default'},
		{field: 'record', value: settings.record, from: recordFrom},
		{field: 'ip', value: settings.ip, from: `first free ${after}`},
		{field: 'subnetMask', value: settings.subnetMask, from: `subnet ${subnet.network}, ${subnet.where}`},
		{field: 'sshPort', value: String(sshPort), from: '22000 + last octet; not forwarded'},
		{field: 'shorewallParam', value: settings.shorewallParam, from: 'from the record, as the seed'},
		{
			field: 'serverName',
			value: settings.serverName,
			from: serverDomain ? `the domain of ${base.serverName}` : 'the default',
		},
		{field: 'targetLv', value: settings.targetLv, from: `the farm's name, free in ${settings.vg}`},
		{field: 'mac', value: '(none yet)', from: 'the mac stage picks a free one'},
	];
	const notes = [
		skippedNote(pick.skipped),
		`the other settings (file paths, commands, timeouts): as ${request.baseFrom}`,
	].filter((note): note is string => note !== undefined);
	return {settings, choices, notes};
}
