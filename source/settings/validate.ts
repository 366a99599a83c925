import path from 'node:path';
import {copyRateProblem} from '../host/copy-rate.js';
import {defaultSettings, type FarmSettings} from './schema.js';

export type FieldError = {field: string; value: unknown; reason: string};

export class SettingsError extends Error {
	constructor(
		readonly farm: string,
		readonly errors: FieldError[],
	) {
		super(
			`bad settings for farm ${farm || '(unnamed)'}:\n` +
				errors.map((error) => `  ${error.field} = ${JSON.stringify(error.value)}: ${error.reason}`).join('\n'),
		);
		this.name = 'SettingsError';
	}
}

const label = /^(?!-)[a-z\d-]{1,63}(?<!-)$/i;
const lvName = /^[\w+.-]+$/;
const lvmSize = /^\+?\d+(\.\d+)?[bskmgtpe]?$/i;
const ganetiSize = /^\d+(\.\d+)?[mgt]?$/i;
const shellName = /^[A-Za-z_]\w*$/;

export function isHostName(name: string): boolean {
	return name.length <= 253 && name.split('.').every((part) => label.test(part));
}

export function isIpv4(ip: string): boolean {
	const parts = ip.split('.');
	return (
		parts.length === 4 &&
		parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255 && String(Number(part)) === part)
	);
}

export function macProblem(mac: string): string | undefined {
	if (!/^([\da-f]{2}:){5}[\da-f]{2}$/i.test(mac)) return 'not a MAC address (six hex pairs separated by colons)';
	const first = Number.parseInt(mac.slice(0, 2), 16);
	if (first & 1) return 'a multicast address cannot be a NIC address';
	if (!(first & 2)) return 'not locally administered: a made-up MAC must have bit 1 of its first byte set (52:54:…)';
	return undefined;
}

export function lvNameProblem(name: string): string | undefined {
	if (!name) return 'empty';
	if (name.length > 127) return 'longer than 127 characters';
	if (!lvName.test(name)) return 'LVM names may only hold letters, digits and + _ . -';
	if (name.startsWith('-')) return 'may not start with -';
	if (name === '.' || name === '..') return 'reserved name';
	if (
		/^(snapshot|pvmove)/.test(name) ||
		/_(cdata|cmeta|corig|mlog|mimage|pmspare|rimage|rmeta|tdata|tmeta|vdata|vorigin)/.test(name)
	) {
		return 'reserved by LVM';
	}

	return undefined;
}

type Rule = (value: unknown, settings: Record<string, unknown>) => string | undefined;

const string: Rule = (value) => (typeof value === 'string' ? undefined : 'must be a string');
const nonEmpty: Rule = (value) => string(value, {}) ?? ((value as string).trim() ? undefined : 'must not be empty');
const absolutePath: Rule = (value) =>
	nonEmpty(value, {}) ?? (path.isAbsolute(value as string) ? undefined : 'must be an absolute path');
const argv: Rule = (value) =>
	Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string' && item !== '')
		? undefined
		: 'must be a non-empty list of command words, e.g. ["systemctl", "restart", "isc-dhcp-server"]';
const integer =
	(min: number, max: number): Rule =>
	(value) =>
		Number.isInteger(value) && (value as number) >= min && (value as number) <= max
			? undefined
			: `must be a whole number from ${min} to ${max}`;
const boolean: Rule = (value) => (typeof value === 'boolean' ? undefined : 'must be true or false');
const matching =
	(test: (text: string) => boolean, reason: string): Rule =>
	(value) =>
		nonEmpty(value, {}) ?? (test(value as string) ? undefined : reason);

const rules: Record<keyof FarmSettings, Rule> = {
	name: matching((name) => label.test(name), 'must be one DNS label: letters, digits and -, at most 63'),
	commandPath: (value) =>
		Array.isArray(value) && value.every((item) => typeof item === 'string' && path.isAbsolute(item))
			? undefined
			: 'must be a list of absolute directories',
	vg: (value) => nonEmpty(value, {}) ?? lvNameProblem(value as string),
	sourceInstance: matching(isHostName, 'must be a host name (RFC 1123 labels separated by dots)'),
	sourceLv: (value) => nonEmpty(value, {}) ?? lvNameProblem(value as string),
	snapshotSize: matching((size) => lvmSize.test(size), 'must be an LVM size such as 1G or 512M'),
	snapshotLv: (value) => nonEmpty(value, {}) ?? lvNameProblem(value as string),
	targetLv: (value, all) =>
		nonEmpty(value, {}) ??
		lvNameProblem(value as string) ??
		(value === all['sourceLv'] ? 'is the source volume: the clone would overwrite the VM it copies' : undefined),
	copyBlockSize: (value) =>
		integer(4096, 64 * 1024 * 1024)(value, {}) ??
		((value as number) % 4096 === 0 ? undefined : 'must be a multiple of 4096'),
	copyRate: copyRateProblem,
	snapshotWarnPercent: integer(1, 99),
	snapshotExtendBy: (value) =>
		string(value, {}) ?? (value === '' || lvmSize.test(value as string) ? undefined : 'must be an LVM size or empty'),
	zoneFile: absolutePath,
	zone: matching((zone) => isHostName(zone.replace(/\.$/, '')), 'must be a zone name such as farm'),
	record: matching(
		(record) => isHostName(record) && !record.endsWith('.'),
		'must be a name relative to the zone, RFC 1123 labels',
	),
	ip: matching(isIpv4, 'must be an IPv4 address such as 10.10.60.6'),
	rndc: argv,
	dnsServer: matching(isIpv4, 'must be the IPv4 address of the DNS server to ask'),
	dnsPort: integer(1, 65_535),
	zoneSecondaries: (value) =>
		value === 'auto' || value === 'yes' || value === 'no' ? undefined : 'must be "auto", "yes" or "no"',
	dhcpdConf: absolutePath,
	mac: (value) => string(value, {}) ?? (value === '' ? undefined : macProblem(value as string)),
	subnetMask: matching(isIpv4, 'must be a dotted netmask such as 255.255.255.0'),
	dhcpRestart: argv,
	dhcpdPidFile: absolutePath,
	ganetiNode: matching(isHostName, 'must be the Ganeti node name'),
	ganetiOs: matching((os) => /^[\w.+-]+$/.test(os), 'must be a Ganeti OS name such as debootstrap+default'),
	memory: matching((size) => ganetiSize.test(size), 'must be a Ganeti size such as 4G or 4096'),
	balloonMemory: matching((size) => ganetiSize.test(size), 'must be a Ganeti size such as 1G or 1024'),
	monitorSocket: absolutePath,
	shorewallDir: absolutePath,
	sshPort: integer(1, 65_535),
	shorewallParam: matching((name) => shellName.test(name), 'must be a shell variable name (letters, digits, _)'),
	sourceZone: matching((zone) => /^[a-z][\w]{0,9}$/i.test(zone), 'must be a Shorewall zone name'),
	destZone: matching((zone) => /^[a-z][\w]{0,9}$/i.test(zone), 'must be a Shorewall zone name'),
	originalDest: matching(
		(dest) => dest === '-' || isIpv4(dest) || /^\$[A-Za-z_]\w*$/.test(dest),
		'must be -, an IPv4 address or a $PARAM',
	),
	firewallTimeout: integer(10, 3600),
	firewallRestartTimeout: integer(5, 3600),
	nginxConf: absolutePath,
	sitesAvailable: absolutePath,
	sitesEnabled: absolutePath,
	serverName: matching(isHostName, 'must be a host name'),
	listen: matching((listen) => /^([\d.]+:|\[[\da-f:]+\]:)?\d{1,5}$/i.test(listen), 'must be a port or address:port'),
	nginxLogDir: absolutePath,
	nginxReload: argv,
	identityHostname: boolean,
	identitySshKeys: boolean,
	identityMachineId: boolean,
	identityPersistentNet: boolean,
	identityDhcpLeases: boolean,
	identityGitRevision: boolean,
	packagingFarmConf: absolutePath,
};

function toGanetiMiB(size: string): number {
	const match = /^(\d+(?:\.\d+)?)([mgt]?)$/i.exec(size);
	if (!match) return Number.NaN;
	const factor = {'': 1, m: 1, g: 1024, t: 1024 * 1024}[match[2]!.toLowerCase() as '' | 'm' | 'g' | 't'];
	return Number(match[1]) * factor;
}

/** Every problem with `input`, one per field, in field order. */
export function validateSettings(input: Record<string, unknown>): FieldError[] {
	const errors: FieldError[] = [];
	for (const field of Object.keys(input)) {
		if (!(field in rules)) errors.push({field, value: input[field], reason: 'unknown setting'});
	}

	for (const [field, rule] of Object.entries(rules)) {
		if (!(field in input)) {
			errors.push({field, value: undefined, reason: 'missing'});
			continue;
		}

		const reason = rule(input[field], input);
		if (reason) errors.push({field, value: input[field], reason});
	}

	const memory = toGanetiMiB(String(input['memory']));
	const balloon = toGanetiMiB(String(input['balloonMemory']));
	if (balloon > memory) {
		errors.push({
			field: 'balloonMemory',
			value: input['balloonMemory'],
			reason: `is more than memory (${String(input['memory'])})`,
		});
	}

	if (input['snapshotLv'] === input['sourceLv'] || input['snapshotLv'] === input['targetLv']) {
		errors.push({field: 'snapshotLv', value: input['snapshotLv'], reason: 'must differ from sourceLv and targetLv'});
	}

	return errors;
}

/**
 * Settings from a partial JSON object (an import, an edit): the seed's
 * defaults for the farm's name fill what is missing, then every field is
 * checked. Throws SettingsError listing each bad field.
 */
export function completeSettings(input: unknown, nameHint?: string): FarmSettings {
	if (typeof input !== 'object' || input === null || Array.isArray(input)) {
		throw new SettingsError(nameHint ?? '', [{field: '(settings)', value: input, reason: 'must be a JSON object'}]);
	}

	const partial = input as Record<string, unknown>;
	const name = typeof partial['name'] === 'string' ? partial['name'] : nameHint;
	if (!name) throw new SettingsError('', [{field: 'name', value: partial['name'], reason: 'missing'}]);
	const merged = {...defaultSettings(name, partial as Partial<FarmSettings>), ...partial, name};
	const errors = validateSettings(merged);
	if (errors.length > 0) throw new SettingsError(name, errors);
	return merged as FarmSettings;
}
