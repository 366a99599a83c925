import path from 'node:path';
import {parseBraceConfig, walkStatements, type BraceStatement} from './brace-config.js';
import type {Host} from './host.js';
import {followIncludes, whereIn, type Includes} from './include-files.js';
import {insertLines, isMarkedLine, markLine, removeMarkedLines, splitLines} from './markers.js';

/** ISC dhcpd.conf: hosts, subnets (also inside shared-network and group), ranges. */

export type DhcpHost = {
	name: string;
	macs: string[];
	fixedAddresses: string[];
	statement: BraceStatement;
	topLevel: boolean;
};
export type DhcpSubnet = {network: string; netmask: string; line: number};
export type DhcpRange = {low: string; high: string; line: number};
export type ParsedDhcpd = {
	hosts: DhcpHost[];
	subnets: DhcpSubnet[];
	ranges: DhcpRange[];
	includes: Array<{file: string; line: number}>;
	statements: BraceStatement[];
};

export function parseDhcpdConf(text: string): ParsedDhcpd {
	const statements = parseBraceConfig(text, {punctuation: ',', quotes: '"'});
	const parsed: ParsedDhcpd = {hosts: [], subnets: [], ranges: [], includes: [], statements};
	for (const {statement, parents} of walkStatements(statements)) {
		const words = statement.words.map((word) => word.text);
		const keyword = words[0]?.toLowerCase();
		if (keyword === 'host' && statement.children && words[1]) {
			const host: DhcpHost = {name: words[1], macs: [], fixedAddresses: [], statement, topLevel: parents.length === 0};
			for (const child of statement.children) {
				const childWords = child.words.map((word) => word.text);
				if (childWords[0] === 'hardware' && childWords[1] === 'ethernet' && childWords[2]) {
					host.macs.push(childWords[2]);
				} else if (childWords[0] === 'fixed-address') {
					host.fixedAddresses.push(...childWords.slice(1).filter((word) => word !== ','));
				}
			}

			parsed.hosts.push(host);
		} else if (keyword === 'subnet' && words[1] && words[2] === 'netmask' && words[3]) {
			parsed.subnets.push({network: words[1], netmask: words[3], line: statement.words[0]!.line});
		} else if (keyword === 'include' && words[1]) {
			parsed.includes.push({file: words[1], line: statement.words[0]!.line});
		} else if (keyword === 'range' && !statement.children) {
			const addresses = words.slice(1).filter((word) => word !== 'dynamic-bootp');
			if (addresses[0]) {
				parsed.ranges.push({low: addresses[0], high: addresses[1] ?? addresses[0], line: statement.words[0]!.line});
			}
		}
	}

	return parsed;
}

export function ipv4ToNumber(ip: string): number | undefined {
	const parts = ip.split('.');
	if (parts.length !== 4 || !parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255)) return undefined;
	return parts.reduce((value, part) => value * 256 + Number(part), 0);
}

export function inSubnet(ip: string, network: string, netmask: string): boolean {
	const [address, net, mask] = [ipv4ToNumber(ip), ipv4ToNumber(network), ipv4ToNumber(netmask)];
	if (address === undefined || net === undefined || mask === undefined) return false;
	// Unsigned 32-bit arithmetic: `&` works on signed integers.
	return (address & mask) >>> 0 === (net & mask) >>> 0;
}

/** `52:54:0:B3:3F:10` -> `52:54:00:b3:3f:10`: dhcpd accepts one-digit and upper-case octets. */
export function normalizeMac(mac: string): string {
	return mac
		.split(':')
		.map((octet) => octet.toLowerCase().padStart(2, '0'))
		.join(':');
}

function sameHostName(a: string, b: string): boolean {
	return a.toLowerCase().replace(/\.$/, '') === b.toLowerCase().replace(/\.$/, '');
}

export type DhcpHostRequest = {
	/** Name of the host declaration (the seed uses the FQDN). */
	name: string;
	fqdn: string;
	/** Empty until the MAC stage ran: MAC checks are then skipped. */
	mac: string;
	ip: string;
	subnetMask: string;
	farm: string;
};

export type DhcpState = {
	status: 'absent' | 'ours' | 'manual';
	conflicts: string[];
	/** The same conflicts, each with the setting it concerns (the preflight names it). */
	concerns: Array<{setting: 'record' | 'mac' | 'ip'; text: string}>;
	notes: string[];
	subnet?: string;
};

/**
 * What dhcpd.conf (and, when given, the files it includes) says about the
 * host: already there, in the way, or free. Without `included`, include
 * statements are only noted.
 */
export function inspectDhcpd(text: string, request: DhcpHostRequest, included?: Includes): DhcpState {
	const mac = request.mac ? normalizeMac(request.mac) : '';
	const concerns: DhcpState['concerns'] = [];
	const conflict = (setting: DhcpState['concerns'][number]['setting'], text: string) => concerns.push({setting, text});
	let status: DhcpState['status'] = 'absent';
	const subnets: DhcpSubnet[] = [];
	const ranges: Array<DhcpRange & {where: string}> = [];
	const notes: string[] = [];
	const sources = [{file: undefined, text}, ...(included?.files ?? [])];
	for (const source of sources) {
		const parsed = parseDhcpdConf(source.text);
		const lines = splitLines(source.text);
		for (const host of parsed.hosts) {
			const where = `${whereIn(source.file, host.statement.words[0]!.line)}: host ${host.name}`;
			const named = sameHostName(host.name, request.name);
			const sameMac = mac !== '' && host.macs.some((other) => normalizeMac(other) === mac);
			const sharedAddresses = host.fixedAddresses.filter(
				(address) => address === request.ip || sameHostName(address, request.fqdn),
			);
			// farmclone writes only in the main file: a block elsewhere is never its own.
			const ours = source.file === undefined && isMarkedLine(lines[host.statement.words[0]!.line] ?? '', request.farm);
			if (named && sameMac && sharedAddresses.length > 0 && host.fixedAddresses.length === 1) {
				if (ours || status === 'absent') status = ours ? 'ours' : 'manual';
				continue;
			}

			if (named) conflict('record', `${where} already uses the name ${request.name}`);
			if (sameMac) conflict('mac', `${where} already has hardware ethernet ${request.mac}`);
			for (const address of sharedAddresses) conflict('ip', `${where} already has fixed-address ${address}`);
		}

		subnets.push(...parsed.subnets);
		ranges.push(...parsed.ranges.map((range) => ({...range, where: whereIn(source.file, range.line)})));
		if (!included) {
			notes.push(
				...parsed.includes.map(
					(include) =>
						`line ${include.line + 1}: include "${include.file}" is not read by farmclone; hosts there are not checked`,
				),
			);
		}
	}

	const subnet = subnets.find((candidate) => inSubnet(request.ip, candidate.network, candidate.netmask));
	if (!subnet) {
		const declared = subnets.map((candidate) => `${candidate.network}/${candidate.netmask}`).join(', ');
		conflict('ip', `${request.ip} is in no declared subnet (${declared || 'none declared'}): dhcpd would never answer`);
	}

	const address = ipv4ToNumber(request.ip);
	for (const range of ranges) {
		const [low, high] = [ipv4ToNumber(range.low), ipv4ToNumber(range.high)];
		if (address !== undefined && low !== undefined && high !== undefined && address >= low && address <= high) {
			conflict(
				'ip',
				`${range.where}: ${request.ip} is inside the dynamic range ${range.low}-${range.high}; it could be leased to another client`,
			);
		}
	}

	notes.push(...(included?.notes ?? []));
	const conflicts = concerns.map((concern) => concern.text);
	return {status, conflicts, concerns, notes, subnet: subnet && `${subnet.network} netmask ${subnet.netmask}`};
}

/**
 * The files dhcpd.conf includes, nested ones too, read only. dhcpd opens a
 * relative include from its working directory, which farmclone cannot know:
 * it is taken relative to the including file's directory, where admins keep
 * them (/etc/dhcp).
 */
export async function readDhcpdIncludes(
	host: Pick<Host, 'readFileIfExists'>,
	confPath: string,
	text: string,
): Promise<Includes> {
	return followIncludes(host, {file: confPath, text}, (file) =>
		parseDhcpdConf(file.text).includes.map((include) => ({
			path: path.resolve(path.dirname(file.file), include.file),
			line: include.line,
			label: `include "${include.file}"`,
		})),
	);
}

export class DhcpConflictError extends Error {
	constructor(readonly conflicts: string[]) {
		super(conflicts.join('\n'));
		this.name = 'DhcpConflictError';
	}
}

function indentUnit(lines: string[]): string {
	const indented = lines.map((line) => /^(\t| +)\S/.exec(line)?.[1]).find(Boolean);
	return indented ?? '\t';
}

/** The host block as added: every line marked. */
export function dhcpHostBlock(request: DhcpHostRequest, indent = '\t'): string[] {
	const name = /^[\w.-]+$/.test(request.name) ? request.name : `"${request.name}"`;
	return [
		`host ${name} {`,
		`${indent}hardware ethernet ${normalizeMac(request.mac)};`,
		`${indent}fixed-address ${request.ip};`,
		`${indent}option subnet-mask ${request.subnetMask};`,
		'}',
	].map((line) => markLine(line, request.farm));
}

/**
 * Add the host block. Unchanged text when it is already there; throws on
 * conflicts.
 *
 * The block goes at top level, after the last top-level host (else at the
 * end): dhcpd treats host declarations as global wherever they are written
 * (it warns "Host declarations are global" for one inside a subnet), the
 * subnet holding the fixed-address still supplies its options, and a
 * top-level block never changes which scope anyone else's lines are in.
 */
export function addDhcpHost(
	text: string,
	request: DhcpHostRequest,
	included?: Includes,
): {text: string; added: string[]} {
	if (!request.mac) throw new Error('no MAC address yet: the MAC stage chooses it');
	const state = inspectDhcpd(text, request, included);
	if (state.conflicts.length > 0) throw new DhcpConflictError(state.conflicts);
	if (state.status !== 'absent') return {text, added: []};
	const lines = splitLines(text);
	const {hosts, statements} = parseDhcpdConf(text);
	const lastHost = hosts.filter((host) => host.topLevel).at(-1);
	const closeLine = lastHost?.statement.end.line;
	// Only right after the host when nothing else follows its `}` on that line.
	const tokensAfter =
		closeLine !== undefined &&
		[...walkStatements(statements)].some(({statement}) =>
			[...statement.words, statement.end].some(
				(token) => token.line === closeLine && token.column > lastHost!.statement.end.column,
			),
		);
	const at = closeLine !== undefined && !tokensAfter ? closeLine + 1 : lines.length;
	const added = dhcpHostBlock(request, indentUnit(lines));
	return {text: insertLines(text, at, added), added};
}

export function removeDhcpHost(text: string, farm: string): {text: string; removed: string[]} {
	return removeMarkedLines(text, farm);
}

/** The part of `dhcpd -t` output that says what is wrong, without the banner. */
export function dhcpdErrors(output: string): string {
	const lines = output.split('\n');
	const end = lines.findIndex((line) => line.startsWith('If you think you have received'));
	return lines
		.slice(0, end < 0 ? undefined : end)
		.filter(
			(line) =>
				line.trim() !== '' &&
				!/^(Internet Systems Consortium|Copyright|All rights reserved|For info, please visit|Config file:|Database file:|PID file:|WARNING: Host declarations are global)/.test(
					line,
				),
		)
		.join('\n')
		.trim();
}
