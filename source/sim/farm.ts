import {randomUUID} from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {defaultSettings, type FarmSettings} from '../settings/schema.js';
import {
	defaultDiskPolicy,
	newClusterState,
	nowSeconds,
	parseUnit,
	withGanetiState,
	writeGanetiState,
	type GanetiInstance,
	type GanetiState,
} from './ganeti-state.js';
import {startVm} from './kvm.js';
import {findLv, readLvmState} from './lvm-state.js';
import {assertRoot} from './netns.js';
import {simPaths} from './paths.js';
import {
	readServicesState,
	simServiceFiles,
	type SimServicesState,
	startSimServices,
	stopSimServices,
	writeServiceWrappers,
} from './services.js';
import {writeShim} from './shim.js';
import {writeShorewallTree} from './shorewall-tree.js';
import {buildSimTree, simFarm} from './tree.js';

export type SimFarm = {root: string; settings: FarmSettings; stop(): Promise<void>};

export type SimFarmOptions = {
	/** Default: a new temporary directory. */
	root?: string;
	/** Size of the source VM's disk, in bytes. */
	sourceSize?: number;
	/** The clone's name, the farm's key: `gallifrey-dev`. */
	farm?: string;
	/** Run the source instance's QEMU, as on a farm whose VM is up (default true). */
	startSource?: boolean;
	/** Starts the namespace, the daemons and the firewall (tests make it fail midway). */
	startServices?: (root: string) => Promise<SimServicesState>;
};

/** The simulated host did not come up; what it had started is stopped again. */
export class SimStartError extends Error {
	constructor(root: string, cause: unknown, stopFailure?: unknown) {
		const reason = cause instanceof Error ? cause.message : String(cause);
		const stopped =
			stopFailure === undefined
				? 'what it had started (daemons, VMs, its network namespace) is stopped'
				: `stopping what it had started failed too: ${stopFailure instanceof Error ? stopFailure.message : String(stopFailure)}`;
		super(`the simulated host in ${root} did not start: ${reason}\n${stopped}; the tree stays in ${root}`);
		this.name = 'SimStartError';
	}
}

/**
 * A one-node cluster with the farm's VMs: every machine of the sim tree that
 * has a disk and a DHCP entry is an instance with that disk and MAC. The one
 * being cloned is up; the others are down, to keep the sim light.
 */
async function ganetiCluster(
	root: string,
	settings: Partial<FarmSettings>,
	startSource: boolean,
): Promise<GanetiState> {
	const lvm = await readLvmState(root);
	const state = newClusterState(root, {vg: simFarm.vg, node: settings.ganetiNode ?? simFarm.node});
	if (settings.monitorSocket) state.cluster.monitorSocket = settings.monitorSocket;
	// Ganeti's default policy refuses disks under 1 GiB. Test farms copy 8-32 MiB disks (a CI run copies
	// one ~100 times): their cluster's lower bound is the source's size, as an admin sets it with
	// `gnt-cluster modify --ipolicy-bounds-specs min:disk-size=N,...`. A 1 GiB source (the demo's) keeps the default.
	const source = findLv(lvm, simFarm.vg, simFarm.sourceLv);
	const sourceMiB = source ? Math.floor(source.size / 1024 ** 2) : defaultDiskPolicy.minMiB;
	if (sourceMiB < defaultDiskPolicy.minMiB) state.cluster.diskPolicy = {...defaultDiskPolicy, minMiB: sourceMiB};
	const created = nowSeconds() - 3 * 365 * 24 * 3600;
	const memory = parseUnit('4G');
	for (const [index, host] of simFarm.hosts.entries()) {
		if (!host.lv || !host.mac) continue;
		const lv = findLv(lvm, simFarm.vg, host.lv);
		if (!lv) throw new Error(`the sim tree has no volume ${simFarm.vg}/${host.lv} for ${host.record}`);
		const name = `${host.record}.${simFarm.zone}`;
		const up = startSource && name === simFarm.sourceInstance;
		state.instances.push({
			name,
			uuid: randomUUID(),
			ctime: created,
			mtime: created,
			serialNo: 3,
			pnode: state.cluster.node,
			os: 'debootstrap+default',
			hypervisor: 'kvm',
			diskTemplate: 'plain',
			disks: [
				{
					uuid: randomUUID(),
					vg: simFarm.vg,
					lv: host.lv,
					sizeMiB: Math.floor(lv.size / 1024 ** 2),
					name: null,
					mode: 'rw',
				},
			],
			nics: [
				{uuid: randomUUID(), mac: host.mac, ip: null, mode: 'bridged', link: state.cluster.nicparams.link, name: null},
			],
			beparams: {maxmem: memory, minmem: memory},
			adminState: up ? 'up' : 'down',
			adminStateSource: 'admin',
			networkPort: 11_000 + index,
		} satisfies GanetiInstance);
	}

	await writeGanetiState(root, state);
	return state;
}

/** The stand-ins and wrappers in root/bin: Ganeti, systemctl, and the real daemons' clients inside the namespace. */
async function writeCommands(root: string): Promise<void> {
	await writeShim(root, 'gnt-instance', 'ganeti');
	await writeShim(root, 'gnt-cluster', 'ganeti');
	await writeShim(root, 'systemctl', 'systemctl');
	await writeShim(root, 'farmclone-sim', 'services');
	await writeServiceWrappers(root, 'farmclone-sim');
}

/**
 * A simulated farm host: the sim tree (LVM, BIND, DHCP, nginx files), its
 * Shorewall configuration, a Ganeti cluster running the source VM, and the
 * real named, dhcpd and nginx inside a network namespace of its own. The
 * settings it returns point farmclone at all of it.
 */
export async function createSimFarm(options: SimFarmOptions = {}): Promise<SimFarm> {
	assertRoot();
	const root = path.resolve(options.root ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-sim-'))));
	const farm = options.farm ?? 'gallifrey-dev';
	// A sim left running in this directory would keep VMs holding the volumes being rebuilt.
	if (await readServicesState(root)) await stopSimServices(root);
	const tree = await buildSimTree({root, sourceSize: options.sourceSize, farm});
	const shorewallDir = await writeShorewallTree(root);
	const startSource = options.startSource ?? true;
	const cluster = await ganetiCluster(root, tree.settings, startSource);
	await writeCommands(root);
	let services: SimServicesState;
	try {
		services = await (options.startServices ?? startSimServices)(root);
		if (startSource) {
			await withGanetiState(root, async (state) => {
				for (const instance of state.instances) {
					if (instance.adminState === 'up') await startVm(root, services.namespace, state.cluster, instance);
				}
			});
		}
	} catch (error) {
		// A start that fails midway leaves nothing running: no orphan dhcpd or nginx, no namespace.
		const stopFailure = await stopSimServices(root).then(
			() => undefined,
			(stopError: unknown) => stopError ?? new Error('stop failed'),
		);
		throw new SimStartError(root, error, stopFailure);
	}

	const settings = defaultSettings(farm, {
		...tree.settings,
		commandPath: [simPaths(root).bin, ...(tree.settings.commandPath ?? []).filter((dir) => dir !== simPaths(root).bin)],
		shorewallDir,
		dhcpRestart: ['systemctl', 'restart', 'isc-dhcp-server'],
		// The sim's dhcpd (started with -pf, also by its systemctl restart) writes its pid there.
		dhcpdPidFile: simServiceFiles(root).dhcpdPid,
		nginxReload: ['systemctl', 'reload', 'nginx'],
		monitorSocket: cluster.cluster.monitorSocket,
		ganetiNode: cluster.cluster.node,
		sourceInstance: simFarm.sourceInstance,
	});
	return {root, settings, stop: async () => stopSimServices(root)};
}
