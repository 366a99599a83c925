import fs from 'node:fs/promises';
import path from 'node:path';
import {execa} from 'execa';
import type {FarmSettings} from '../settings/schema.js';
import {defaultSimDiskSeed, writeSimDisk} from './disk.js';
import {defaultExtentSize, lvDevicePath, newLvmUuid, withLvmState, type SimLv} from './lvm-state.js';
import {simPaths} from './paths.js';
import {writeShim} from './shim.js';

export type SimTreeOptions = {
	root: string;
	/** Size of the source VM's disk in bytes, rounded up to whole extents; default 256 MiB. */
	sourceSize?: number;
	/** The clone's name: `gallifrey-dev`. */
	farm?: string;
};

/** A machine of the farm: in the zone, and with a MAC when dhcpd.conf has a host entry for it. */
export type SimHost = {record: string; ip: string; mac?: string; lv?: string};

/** The farm the tree describes, as the seed's: host01 runs Ganeti and BIND for zone `farm` on 10.10.60.0/24. */
export const simFarm = {
	vg: 'all',
	zone: 'farm',
	subnet: '10.10.60.0',
	netmask: '255.255.255.0',
	router: '10.10.60.1',
	node: 'host01.farm',
	sourceInstance: 'gallifrey.xivo.vm.farm',
	sourceLv: 'f3e8d23f-21c0-417d-9b5e-91bb4da9b926.disk0',
	/** The clone's address: free in the zone (nothing at .6), as in the seed. */
	cloneIp: '10.10.60.6',
	hosts: [
		{record: 'host01', ip: '10.10.60.1'},
		{
			record: 'gallifrey.xivo.vm',
			ip: '10.10.60.5',
			mac: '52:54:a1:3c:5e:01',
			lv: 'f3e8d23f-21c0-417d-9b5e-91bb4da9b926.disk0',
		},
		{
			record: 'skaro.xivo.vm',
			ip: '10.10.60.7',
			mac: '52:54:0b:7d:22:9f',
			lv: '7c1e5a90-3d2b-4f6e-8a41-5b9d0c2e6f13.disk0',
		},
		{record: 'mondas.xivo.vm', ip: '10.10.60.8'},
	] as readonly SimHost[],
} as const;

/** Where each file of the tree is. */
export function simTreePaths(root: string) {
	const paths = simPaths(root);
	const bind = path.join(paths.etc, 'bind');
	const nginx = path.join(paths.etc, 'nginx');
	return {
		...paths,
		zoneFile: path.join(bind, 'db.farm'),
		namedConf: path.join(bind, 'named.conf'),
		rndcKey: path.join(bind, 'rndc.key'),
		rndcConf: path.join(bind, 'rndc.conf'),
		namedDirectory: path.join(paths.root, 'var', 'cache', 'bind'),
		namedRun: path.join(paths.run, 'named'),
		namedLog: path.join(paths.root, 'var', 'log', 'named'),
		dhcpdConf: path.join(paths.etc, 'dhcp', 'dhcpd.conf'),
		dhcpdLeases: path.join(paths.root, 'var', 'lib', 'dhcp', 'dhcpd.leases'),
		nginxConf: path.join(nginx, 'nginx.conf'),
		sitesAvailable: path.join(nginx, 'sites-available'),
		sitesEnabled: path.join(nginx, 'sites-enabled'),
		nginxLogDir: path.join(paths.root, 'var', 'log', 'nginx'),
		nginxTemp: path.join(paths.root, 'var', 'lib', 'nginx'),
		webRoot: path.join(paths.root, 'var', 'www', 'html'),
		monitorDir: path.join(paths.root, 'var', 'run', 'ganeti', 'kvm-hypervisor', 'ctrl'),
	};
}

type TreePaths = ReturnType<typeof simTreePaths>;

/** The LVM commands the stand-in answers to, written to root/bin. */
export const lvmCommands = ['lvs', 'vgs', 'lvcreate', 'lvremove', 'lvextend', 'lvm-sim'];

const mebibyte = 1024 * 1024;

function roundUp(size: number, unit: number): number {
	return Math.ceil(size / unit) * unit;
}

function zoneFile(): string {
	const hosts = simFarm.hosts.map((host) => `${host.record}\tIN\tA\t${host.ip}`);
	return [
		'; Zone "farm" of the simulated farm host (farmclone).',
		'$TTL 3600',
		`@\tIN\tSOA\t${simFarm.node}. hostmaster.${simFarm.zone}. (`,
		'\t\t\t2011072501\t; serial',
		'\t\t\t3600\t\t; refresh',
		'\t\t\t900\t\t; retry',
		'\t\t\t604800\t\t; expire',
		'\t\t\t3600 )\t\t; negative cache TTL',
		';',
		`@\tIN\tNS\t${simFarm.node}.`,
		...hosts,
		'',
	].join('\n');
}

function namedConf(paths: TreePaths): string {
	return `// named for the simulated farm: master of zone "${simFarm.zone}", answering on 127.0.0.1
// inside the farm's network namespace. Every path is under the sim's root.
include "${paths.rndcKey}";

options {
	directory "${paths.namedDirectory}";
	pid-file "${paths.namedRun}/named.pid";
	session-keyfile "${paths.namedRun}/session.key";
	managed-keys-directory "${paths.namedDirectory}";
	dump-file "${paths.namedDirectory}/named_dump.db";
	statistics-file "${paths.namedDirectory}/named.stats";
	memstatistics-file "${paths.namedDirectory}/named.memstats";
	listen-on port 53 { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	allow-transfer { none; };
	dnssec-validation no;
	notify no;
};

controls {
	inet 127.0.0.1 port 953 allow { 127.0.0.1; } keys { "rndc-key"; };
};

logging {
	channel farm_log {
		file "${paths.namedLog}/named.log" versions 2 size 1m;
		print-time yes;
		print-severity yes;
		severity info;
	};
	category default { farm_log; };
};

zone "${simFarm.zone}" {
	type master;
	file "${paths.zoneFile}";
};
`;
}

function rndcConf(key: string): string {
	return `// rndc for the simulated farm's named (127.0.0.1 port 953 inside the farm's namespace).
${key.trim()}

options {
	default-key "rndc-key";
	default-server 127.0.0.1;
	default-port 953;
};
`;
}

function dhcpdConf(): string {
	const hosts = simFarm.hosts.flatMap((host) =>
		host.mac
			? [
					'',
					`host ${host.record}.${simFarm.zone} {`,
					`\thardware ethernet ${host.mac};`,
					`\tfixed-address ${host.ip};`,
					`\toption subnet-mask ${simFarm.netmask};`,
					'}',
				]
			: [],
	);
	return [
		'# dhcpd.conf of the simulated farm host (farmclone).',
		'ddns-update-style none;',
		`option domain-name "${simFarm.zone}";`,
		`option domain-name-servers ${simFarm.router};`,
		'default-lease-time 600;',
		'max-lease-time 7200;',
		'authoritative;',
		'log-facility local7;',
		'',
		`subnet ${simFarm.subnet} netmask ${simFarm.netmask} {`,
		'\trange 10.10.60.100 10.10.60.200;',
		`\toption routers ${simFarm.router};`,
		'\toption broadcast-address 10.10.60.255;',
		'}',
		...hosts,
		'',
	].join('\n');
}

function nginxConf(paths: TreePaths): string {
	const temp = (name: string) => path.join(paths.nginxTemp, name);
	return `# nginx of the simulated farm host: a Debian-like main configuration, every path under the sim's root.
worker_processes 1;
pid ${path.join(paths.run, 'nginx.pid')};
error_log ${path.join(paths.nginxLogDir, 'error.log')};

events {
	worker_connections 64;
}

http {
	types {
		text/html html htm;
		text/plain txt;
		text/css css;
		application/javascript js;
	}
	default_type application/octet-stream;
	sendfile on;
	access_log ${path.join(paths.nginxLogDir, 'access.log')};
	client_body_temp_path ${temp('body')};
	proxy_temp_path ${temp('proxy')};
	fastcgi_temp_path ${temp('fastcgi')};
	uwsgi_temp_path ${temp('uwsgi')};
	scgi_temp_path ${temp('scgi')};

	include ${paths.sitesEnabled}/*;
}
`;
}

function defaultSite(paths: TreePaths): string {
	return `# Default server, as Debian installs it.
server {
	listen 80 default_server;
	server_name _;
	root ${paths.webRoot};
	index index.html;

	location / {
		try_files $uri $uri/ =404;
	}
}
`;
}

async function assertEmpty(root: string): Promise<void> {
	let entries: string[];
	try {
		entries = await fs.readdir(root);
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
		throw error;
	}

	if (entries.length > 0) {
		throw new Error(
			`${root} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}): a simulated host is built in a new or empty directory; give another --dir`,
		);
	}
}

async function writeText(file: string, content: string, mode = 0o644): Promise<void> {
	await fs.mkdir(path.dirname(file), {recursive: true});
	await fs.writeFile(file, content, {mode});
}

/** The VG `all` with the source VM's disk and another instance's, filled with the deterministic pattern. */
async function writeVolumes(root: string, sourceSize: number): Promise<void> {
	const others = simFarm.hosts.flatMap((host) => (host.lv && host.lv !== simFarm.sourceLv ? [host.lv] : []));
	const otherSize = 16 * mebibyte;
	// Room for the snapshot, the copy and some headroom besides the volumes already there.
	const vgSize = roundUp(3 * sourceSize + 2 * 1024 * mebibyte + others.length * otherSize, defaultExtentSize);
	const volumes: Array<{name: string; size: number; seed: number}> = [
		{name: simFarm.sourceLv, size: sourceSize, seed: defaultSimDiskSeed},
		...others.map((name, index) => ({name, size: otherSize, seed: defaultSimDiskSeed + index + 1})),
	];
	await withLvmState(root, async (state) => {
		state.vgs.push({name: simFarm.vg, size: vgSize, extentSize: defaultExtentSize, uuid: newLvmUuid()});
		for (const volume of volumes) {
			const device = lvDevicePath(root, simFarm.vg, volume.name);
			await fs.mkdir(path.dirname(device), {recursive: true});
			await writeSimDisk(device, volume.size, volume.seed);
			const lv: SimLv = {name: volume.name, vg: simFarm.vg, uuid: newLvmUuid(), size: volume.size, tags: []};
			state.lvs.push(lv);
		}
	});
}

async function writeBind(paths: TreePaths): Promise<void> {
	await writeText(paths.zoneFile, zoneFile());
	await Promise.all(
		[paths.namedDirectory, paths.namedRun, paths.namedLog].map((dir) => fs.mkdir(dir, {recursive: true})),
	);
	const sbin = '/usr/local/sbin:/usr/sbin:/sbin';
	await execa('rndc-confgen', ['-a', '-A', 'hmac-sha256', '-k', 'rndc-key', '-c', paths.rndcKey], {
		env: {PATH: `${process.env['PATH'] ?? '/usr/bin:/bin'}:${sbin}`},
	});
	await writeText(paths.rndcConf, rndcConf(await fs.readFile(paths.rndcKey, 'utf8')), 0o600);
	await writeText(paths.namedConf, namedConf(paths));
}

async function writeNginx(paths: TreePaths): Promise<void> {
	await writeText(paths.nginxConf, nginxConf(paths));
	await writeText(path.join(paths.sitesAvailable, 'default'), defaultSite(paths));
	await fs.mkdir(paths.sitesEnabled, {recursive: true});
	// Relative, as Debian links it.
	await fs.symlink('../sites-available/default', path.join(paths.sitesEnabled, 'default'));
	await writeText(path.join(paths.webRoot, 'index.html'), '<!doctype html><title>farm</title><p>host01.farm</p>\n');
	const temps = ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((name) => path.join(paths.nginxTemp, name));
	await Promise.all([paths.nginxLogDir, ...temps].map((dir) => fs.mkdir(dir, {recursive: true})));
}

/**
 * Writes a simulated farm host under `root` (which must be new or empty):
 * the VG `all` with the source VM's disk, BIND's zone and configuration,
 * dhcpd.conf, nginx's configuration, Ganeti's monitor directory, and the LVM
 * stand-ins in root/bin. Returns the farm settings that point into it.
 */
export async function buildSimTree(options: SimTreeOptions): Promise<{root: string; settings: Partial<FarmSettings>}> {
	const root = path.resolve(options.root);
	await assertEmpty(root);
	const farm = options.farm ?? 'gallifrey-dev';
	const sourceSize = roundUp(options.sourceSize ?? 256 * mebibyte, defaultExtentSize);
	if (sourceSize <= 0) throw new Error(`the simulated source disk cannot be ${options.sourceSize} bytes`);
	const paths = simTreePaths(root);
	await fs.mkdir(root, {recursive: true});
	await writeVolumes(root, sourceSize);
	await writeBind(paths);
	await writeText(paths.dhcpdConf, dhcpdConf());
	await writeText(paths.dhcpdLeases, '');
	await writeNginx(paths);
	await fs.mkdir(paths.monitorDir, {recursive: true});
	for (const command of lvmCommands) await writeShim(root, command, 'lvm');
	const settings: Partial<FarmSettings> = {
		name: farm,
		commandPath: [paths.bin],
		vg: simFarm.vg,
		sourceInstance: simFarm.sourceInstance,
		sourceLv: simFarm.sourceLv,
		zoneFile: paths.zoneFile,
		zone: simFarm.zone,
		record: `${farm}.xivo.vm`,
		ip: simFarm.cloneIp,
		rndc: ['rndc', '-c', paths.rndcConf, 'reload'],
		dnsServer: '127.0.0.1',
		dnsPort: 53,
		dhcpdConf: paths.dhcpdConf,
		ganetiNode: simFarm.node,
		nginxConf: paths.nginxConf,
		sitesAvailable: paths.sitesAvailable,
		sitesEnabled: paths.sitesEnabled,
		nginxLogDir: paths.nginxLogDir,
		monitorSocket: path.join(paths.monitorDir, '{instance}.monitor'),
	};
	return {root, settings};
}
