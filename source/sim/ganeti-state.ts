import {randomUUID} from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {withFileLock} from './file-lock.js';
import {simNetwork} from './netns.js';
import {simPaths} from './paths.js';

/** The Ganeti release the stand-in behaves like. */
export const ganetiVersion = {release: '3.0.2', vcs: 'v3.0.2'};

export type GanetiDisk = {
	uuid: string;
	vg: string;
	/** The LV's name inside `vg`: Ganeti's logical_id. */
	lv: string;
	sizeMiB: number;
	name: string | null;
	mode: 'rw' | 'ro';
};

export type GanetiNic = {
	uuid: string;
	mac: string;
	ip: string | null;
	mode: 'bridged';
	link: string;
	name: string | null;
};

/** Backend parameters set on the instance itself (the rest come from the cluster). */
export type BackendParameters = {maxmem?: number; minmem?: number; vcpus?: number};

export type GanetiInstance = {
	name: string;
	uuid: string;
	ctime: number;
	mtime: number;
	serialNo: number;
	pnode: string;
	os: string;
	hypervisor: 'kvm';
	diskTemplate: 'plain';
	disks: GanetiDisk[];
	nics: GanetiNic[];
	beparams: BackendParameters;
	adminState: 'up' | 'down' | 'offline';
	adminStateSource: 'admin' | 'user';
	networkPort: number;
	/** Last `--runtime-memory` asked for, in MiB. */
	runtimeMemory?: number;
};

export type GanetiCluster = {
	name: string;
	uuid: string;
	ctime: number;
	mtime: number;
	serialNo: number;
	masterNode: string;
	/** The one node of the simulated cluster: this host. */
	node: string;
	nodeGroup: {name: string; uuid: string};
	vg: string;
	macPrefix: string;
	masterNetdev: string;
	nicparams: {mode: 'bridged'; link: string};
	beparams: Required<BackendParameters> & {auto_balance: boolean; always_failover: boolean; spindle_use: number};
	osList: string[];
	/** KVM's monitor socket, `{instance}` standing for the instance's name (Ganeti: <ctrl dir>/<name>.monitor). */
	monitorSocket: string;
	/** KVM's runtime directory (pid/, ctrl/). */
	kvmRunDir: string;
	/** The instance policy's disk-size bounds in MiB; absent: Ganeti's default (defaultDiskPolicy). */
	diskPolicy?: DiskPolicy;
};

export type DiskPolicy = {minMiB: number; maxMiB: number};

/** Ganeti 3.0's default instance policy for disk-size (ISPECS_MINMAX): a real cluster refuses a 512 MiB disk. */
export const defaultDiskPolicy: DiskPolicy = {minMiB: 1024, maxMiB: 1024 * 1024};

export type GanetiState = {cluster: GanetiCluster; instances: GanetiInstance[]};

export function ganetiFiles(root: string) {
	const paths = simPaths(root);
	return {
		stateFile: path.join(paths.state, 'ganeti.json'),
		lockFile: path.join(paths.state, 'ganeti.lock'),
		/** A test's injected unreachable node (see bin/ganeti.ts, nodeUnreachable). */
		unreachableFile: path.join(paths.state, 'ganeti-unreachable.json'),
		kvmRunDir: path.join(paths.root, 'var', 'run', 'ganeti', 'kvm-hypervisor'),
	};
}

export function nowSeconds(): number {
	return Date.now() / 1000;
}

export type ClusterOptions = {node?: string; vg?: string; name?: string; link?: string};

export function newClusterState(root: string, options: ClusterOptions = {}): GanetiState {
	const {kvmRunDir} = ganetiFiles(root);
	const now = nowSeconds();
	const node = options.node ?? 'host01.farm';
	return {
		cluster: {
			name: options.name ?? 'cluster.farm',
			uuid: randomUUID(),
			ctime: now,
			mtime: now,
			serialNo: 1,
			masterNode: node,
			node,
			nodeGroup: {name: 'default', uuid: randomUUID()},
			vg: options.vg ?? 'all',
			macPrefix: 'aa:00:00',
			masterNetdev: options.link ?? simNetwork.bridge,
			nicparams: {mode: 'bridged', link: options.link ?? simNetwork.bridge},
			beparams: {maxmem: 128, minmem: 128, vcpus: 1, auto_balance: true, always_failover: false, spindle_use: 1},
			osList: ['debootstrap+default'],
			monitorSocket: path.join(kvmRunDir, 'ctrl', '{instance}.monitor'),
			kvmRunDir,
		},
		instances: [],
	};
}

export async function readGanetiState(root: string): Promise<GanetiState> {
	const {stateFile} = ganetiFiles(root);
	try {
		return JSON.parse(await fs.readFile(stateFile, 'utf8')) as GanetiState;
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
			throw new Error(`no simulated Ganeti cluster in ${root} (${stateFile} is missing)`);
		}

		throw error;
	}
}

export async function writeGanetiState(root: string, state: GanetiState): Promise<void> {
	const {stateFile} = ganetiFiles(root);
	await fs.mkdir(path.dirname(stateFile), {recursive: true});
	const temporary = `${stateFile}.${process.pid}.tmp`;
	await fs.writeFile(temporary, `${JSON.stringify(state, null, '\t')}\n`);
	await fs.rename(temporary, stateFile);
}

/**
 * Reads the cluster, lets `change` act on it, writes it back: one job at a
 * time, as Ganeti's locks would have it.
 */
export async function withGanetiState<T>(root: string, change: (state: GanetiState) => T | Promise<T>): Promise<T> {
	return withFileLock(ganetiFiles(root).lockFile, async () => {
		const state = await readGanetiState(root);
		const result = await change(state);
		await writeGanetiState(root, state);
		return result;
	});
}

/** Ganeti accepts a unique prefix of the name's dot-separated components: `gallifrey` for `gallifrey.xivo.vm.farm`. */
export function lookupInstance(state: GanetiState, name: string): GanetiInstance | undefined {
	const exact = state.instances.find((instance) => instance.name === name || instance.uuid === name);
	if (exact) return exact;
	const partial = state.instances.filter((instance) => instance.name.startsWith(`${name}.`));
	return partial.length === 1 ? partial[0] : undefined;
}

export function lookupNode(state: GanetiState, name: string): string | undefined {
	const {node} = state.cluster;
	return name === node || node.startsWith(`${name}.`) ? node : undefined;
}

export function filledBeparams(cluster: GanetiCluster, instance: GanetiInstance): GanetiCluster['beparams'] {
	return {...cluster.beparams, ...instance.beparams};
}

export function monitorSocketFor(cluster: GanetiCluster, instanceName: string): string {
	return cluster.monitorSocket.replaceAll('{instance}', instanceName);
}

/** Ganeti's `utils.ParseUnit`: a size in MiB, rounded up to a multiple of 4. */
export function parseUnit(text: string): number {
	const match = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$/i.exec(text);
	if (!match) throw new Error('Invalid format');
	let value = Number(match[1]);
	const unit = (match[2] ?? '').toLowerCase() || 'm';
	if (['g', 'gb', 'gib'].includes(unit)) value *= 1024;
	else if (['t', 'tb', 'tib'].includes(unit)) value *= 1024 * 1024;
	else if (!['m', 'mb', 'mib'].includes(unit)) throw new Error(`Unknown unit: ${match[2]}`);
	value = Math.ceil(value);
	if (value % 4) value += 4 - (value % 4);
	return value;
}

/** Ganeti's `utils.FormatUnit` with units `h` (human) or `m` (MiB). */
export function formatUnit(mebibytes: number, units: 'h' | 'm'): string {
	if (units === 'm') return String(Math.round(mebibytes));
	if (mebibytes < 1024) return `${Math.round(mebibytes)}M`;
	if (mebibytes < 1024 * 1024) return `${(mebibytes / 1024).toFixed(1)}G`;
	return `${(mebibytes / 1024 / 1024).toFixed(1)}T`;
}

export function normalizeMac(mac: string): string | undefined {
	const lower = mac.toLowerCase();
	return /^([\da-f]{2}:){5}[\da-f]{2}$/.test(lower) ? lower : undefined;
}
