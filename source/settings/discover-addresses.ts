/**
 * Who holds which address, port and MAC on the host, from the files and the
 * cluster as farmclone already parses them, and the first free ones: what
 * `farmclone farm new` picks and what a preflight refusal names instead of
 * a taken value. Pure: the texts come in, nothing is read here.
 */
import path from 'node:path';
import {inSubnet, ipv4ToNumber, normalizeMac, parseDhcpdConf} from '../host/dhcpd-conf.js';
import type {GanetiInstance} from '../host/ganeti.js';
import {whereIn, type Includes} from '../host/include-files.js';
import {parseParams, parseRules, portListHas} from '../host/shorewall-files.js';
import {absoluteName, parseZone} from '../host/zone-file.js';
import {lastOctet, type FarmSettings} from './schema.js';
import {isIpv4} from './validate.js';

/** A file as read, with the files it includes (`origin`: the zone origin of an included zone file). */
export type ReadFile = {file: string; text: string; included?: Includes};

export type HostPicture = {
	zone: string;
	zoneFile?: ReadFile;
	dhcpdConf?: ReadFile;
	/** Shorewall's rules file and its params file. */
	rules?: ReadFile;
	params?: ReadFile;
	instances: GanetiInstance[];
	/** The other farms' settings: what they will take when they run. */
	farms: FarmSettings[];
};

export type Subnet = {network: string; netmask: string; where: string};
type Range = {low: number; high: number; text: string; where: string};

export type AddressBook = {
	/** Address -> who holds it: `db.farm line 12 (skaro.xivo.vm)`. */
	ips: Map<string, string>;
	/** Zone names (absolute, lower case) -> their A record's address. */
	names: Map<string, string>;
	/** Port lists forwarded by DNAT or REDIRECT rules (`22005`, `22000:22010`, `-`), with where. */
	forwarded: Array<{ports: string; where: string}>;
	/** Ports other farms' settings take. */
	farmPorts: Map<number, string>;
	/** MAC (normalized) -> who holds it. */
	macs: Map<string, string>;
	subnets: Subnet[];
	ranges: Range[];
};

/** `db.farm line 12` for the main file, the full path for an included one. */
function where(main: string, file: string | undefined, line: number): string {
	return file === undefined || file === main ? `${path.basename(main)} line ${line + 1}` : whereIn(file, line);
}

function sources(read: ReadFile): Array<{file: string; text: string; origin?: string}> {
	return [{file: read.file, text: read.text}, ...(read.included?.files ?? [])];
}

function relative(owner: string, zone: string): string {
	const suffix = `.${absoluteName(zone, '.')}`;
	return owner.toLowerCase().endsWith(suffix.toLowerCase()) ? owner.slice(0, -suffix.length) : owner;
}

export function addressBook(picture: HostPicture): AddressBook {
	const book: AddressBook = {
		ips: new Map(),
		names: new Map(),
		forwarded: [],
		farmPorts: new Map(),
		macs: new Map(),
		subnets: [],
		ranges: [],
	};
	const take = (ip: string, holder: string) => {
		if (isIpv4(ip) && !book.ips.has(ip)) book.ips.set(ip, holder);
	};

	if (picture.zoneFile) {
		const main = picture.zoneFile.file;
		for (const source of sources(picture.zoneFile)) {
			for (const record of parseZone(source.text, source.origin ?? picture.zone).records) {
				if (record.type !== 'A' || !record.rdata[0]) continue;
				take(
					record.rdata[0],
					`${where(main, source.file, record.firstLine)} (${relative(record.owner, picture.zone)})`,
				);
				if (!book.names.has(record.owner.toLowerCase())) book.names.set(record.owner.toLowerCase(), record.rdata[0]);
			}
		}
	}

	if (picture.dhcpdConf) {
		const main = picture.dhcpdConf.file;
		for (const source of sources(picture.dhcpdConf)) {
			const parsed = parseDhcpdConf(source.text);
			for (const host of parsed.hosts) {
				const at = `${where(main, source.file, host.statement.words[0]!.line)} (host ${host.name})`;
				for (const address of host.fixedAddresses) take(address, at);
				for (const mac of host.macs) if (!book.macs.has(normalizeMac(mac))) book.macs.set(normalizeMac(mac), at);
			}

			for (const subnet of parsed.subnets) {
				book.subnets.push({...subnet, where: where(main, source.file, subnet.line)});
			}

			for (const range of parsed.ranges) {
				const [low, high] = [ipv4ToNumber(range.low), ipv4ToNumber(range.high)];
				if (low === undefined || high === undefined) continue;
				const text = `${range.low}-${range.high}`;
				book.ranges.push({low, high, text, where: where(main, source.file, range.line)});
			}
		}
	}

	for (const instance of picture.instances) {
		for (const ip of instance.ips) take(ip, `Ganeti instance ${instance.name} (nic.ips)`);
		for (const mac of instance.macs) {
			if (!book.macs.has(normalizeMac(mac))) book.macs.set(normalizeMac(mac), `Ganeti instance ${instance.name}`);
		}
	}

	if (picture.params) {
		for (const param of parseParams(picture.params.text)) {
			take(param.value, `${where(picture.params.file, undefined, param.line)} (${param.name})`);
		}
	}

	if (picture.rules) {
		const main = picture.rules.file;
		for (const source of sources(picture.rules)) {
			for (const rule of parseRules(source.text).rules) {
				const [action = '', , , proto = '-', ports = '-'] = rule.columns;
				if (!/DNAT|REDIRECT/i.test(action)) continue;
				const tcp = ['-', 'all'].includes(proto) || proto.split(',').some((item) => /^(tcp|6)$/i.test(item));
				if (tcp) book.forwarded.push({ports, where: where(main, source.file, rule.line)});
			}
		}
	}

	for (const farm of picture.farms) {
		take(farm.ip, `farm ${farm.name}'s settings`);
		if (!book.farmPorts.has(farm.sshPort)) book.farmPorts.set(farm.sshPort, `farm ${farm.name}'s settings`);
		if (farm.mac && !book.macs.has(normalizeMac(farm.mac))) {
			book.macs.set(normalizeMac(farm.mac), `farm ${farm.name}'s settings`);
		}
	}

	return book;
}

function toIp(value: number): string {
	return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join('.');
}

/** Who holds `ip`, or why it cannot be given: undefined when it is free for a new machine. */
export function ipHolder(book: AddressBook, ip: string, subnet?: Subnet): string | undefined {
	const held = book.ips.get(ip);
	if (held) return held;
	const address = ipv4ToNumber(ip);
	if (address === undefined) return 'not an IPv4 address';
	const range = book.ranges.find((candidate) => candidate.low <= address && address <= candidate.high);
	if (range) return `${range.where}: the dynamic range ${range.text}`;
	if (subnet) {
		const [network, mask] = [ipv4ToNumber(subnet.network)!, ipv4ToNumber(subnet.netmask)!];
		const host = (address & ~mask) >>> 0;
		if (host === 0) return `the network address of ${subnet.network}`;
		if (host === ~mask >>> 0) return `the broadcast address of ${subnet.network}`;
		if ((address & mask) >>> 0 !== (network & mask) >>> 0) return `outside ${subnet.network}/${subnet.netmask}`;
	}

	return undefined;
}

/** Who holds `port`: a forwarding rule or another farm. */
export function portHolder(book: AddressBook, port: number): string | undefined {
	const rule = book.forwarded.find((candidate) => candidate.ports === '-' || portListHas(candidate.ports, port));
	if (rule) return `${rule.where} (forwarded)`;
	return book.farmPorts.get(port);
}

/** The seed's convention: port 22000 + the last octet of the clone's address (10.10.60.6 -> 22006). */
export function conventionalPort(ip: string): number {
	return 22_000 + lastOctet(ip);
}

/** The subnet declared in dhcpd.conf that holds `ip`. */
export function subnetOf(book: AddressBook, ip: string): Subnet | undefined {
	return book.subnets.find((subnet) => inSubnet(ip, subnet.network, subnet.netmask));
}

export type AddressPick = {
	ip: string;
	sshPort: number;
	/** The addresses passed over before it, each with who holds it. */
	skipped: Array<{ip: string; holder: string}>;
};

/** More than any farm's subnet: a /16 would otherwise be walked whole. */
const candidateLimit = 4096;

/**
 * The first address of `subnet` after `after` (wrapping round to the start)
 * that no record, host, range, instance or farm holds, and whose
 * conventional SSH port nobody forwards; the admin's own addresses sit next
 * to each other, so the clone goes next to its source.
 */
export function pickAddress(book: AddressBook, subnet: Subnet, after?: string): AddressPick | undefined {
	const [network, mask] = [ipv4ToNumber(subnet.network)!, ipv4ToNumber(subnet.netmask)!];
	const first = ((network & mask) >>> 0) + 1;
	const size = (~mask >>> 0) - 1;
	if (size < 1) return undefined;
	const start =
		after !== undefined && inSubnet(after, subnet.network, subnet.netmask) ? ipv4ToNumber(after)! + 1 : first;
	const skipped: AddressPick['skipped'] = [];
	for (let step = 0; step < Math.min(size, candidateLimit); step++) {
		const ip = toIp(first + ((start - first + step) % size));
		const holder = ipHolder(book, ip, subnet);
		if (holder) {
			// The dynamic range is one reason, not a hundred.
			const inRange = holder.includes('the dynamic range');
			if (!inRange || !skipped.some((earlier) => earlier.holder === holder)) skipped.push({ip, holder});
			continue;
		}

		const port = conventionalPort(ip);
		const portTaken = portHolder(book, port);
		if (portTaken) {
			skipped.push({ip, holder: `its port ${port}: ${portTaken}`});
			continue;
		}

		return {ip, sshPort: port, skipped};
	}

	return undefined;
}

/** The first port from `from` up that nobody forwards nor another farm takes. */
export function freePort(book: AddressBook, from: number): number | undefined {
	for (let port = Math.max(1, from); port <= 65_535; port++) if (!portHolder(book, port)) return port;
	return undefined;
}

/** The first of `candidates` that nobody's host entry, instance or farm has. */
export function freeMac(book: AddressBook, candidates: string[]): string | undefined {
	return candidates.find((mac) => !book.macs.has(normalizeMac(mac)));
}
