/**
 * Stand-in for Ganeti 3.0's `gnt-cluster` and `gnt-instance` on the simulated
 * one-node cluster: only the commands and options farmclone and the simulated
 * farm's tests run, with Ganeti's output formats, refusals and exit codes; any
 * other is refused as Ganeti refuses an unknown command or option. Instances
 * are real QEMU processes inside the simulated host's namespace, with their
 * CPUs stopped.
 */
import {randomBytes, randomUUID} from 'node:crypto';
import fs from 'node:fs/promises';
import {
	feedback,
	formatGenericInfo,
	formatTable,
	formatTime,
	GanetiError,
	parseIdentKeyValues,
	parseKeyValues,
	parseOptions,
	pythonStr,
	UsageError,
	type Column,
	type InfoValue,
	type OptionSpec,
	type ParsedOptions,
} from '../ganeti-format.js';
import {
	defaultDiskPolicy,
	filledBeparams,
	formatUnit,
	ganetiFiles,
	ganetiVersion,
	lookupInstance,
	lookupNode,
	monitorSocketFor,
	normalizeMac,
	nowSeconds,
	parseUnit,
	readGanetiState,
	withGanetiState,
	type GanetiCluster,
	type GanetiDisk,
	type GanetiInstance,
	type GanetiNic,
	type GanetiState,
} from '../ganeti-state.js';
import {balloonActual, monitorCommand, startVm, stopVm, vmPid} from '../kvm.js';
import {
	findLv,
	isLvOpen,
	lvDevicePath,
	LvmError,
	readLvmState,
	removeLvDevice,
	renameLv,
	withLvmState,
} from '../lvm-state.js';
import {ensureSimServices, runInNamespace} from '../services.js';

const exitUnknownField = 14;

function simRoot(): string {
	const root = process.env['FARMCLONE_SIM_ROOT'];
	if (!root) throw new Error('FARMCLONE_SIM_ROOT is not set: run this through the shim in the sim tree');
	return root;
}

const out = (text: string) => process.stdout.write(text);
const err = (text: string) => process.stderr.write(text);

function unknownInstance(name: string): GanetiError {
	return new GanetiError(`Instance '${name}' not known`, 'prereq', 'unknown_entity');
}

function expandInstance(state: GanetiState, name: string): GanetiInstance {
	const instance = lookupInstance(state, name);
	if (!instance) throw unknownInstance(name);
	return instance;
}

function single(parsed: ParsedOptions, usage: string): string {
	if (parsed.args.length !== 1) throw new UsageError(`wrong number of arguments`, usage);
	return parsed.args[0]!;
}

// ---------------------------------------------------------------- an unreachable node (injected by tests)

/**
 * What a real cluster does when its master cannot reach the node in time (a
 * loaded host: Ganeti's RPC connect timeout is 5 s), injected by a test as
 * counts in ganeti-unreachable.json: the next `jobs` commands that submit a job
 * fail their prerequisites with the node check's SSL timeout, and the next
 * `lists` runs of `gnt-instance list` show ERROR_nodedown and `?` for live
 * fields. Each use counts one down.
 */
export type Unreachable = {jobs?: number; lists?: number};

async function nodeUnreachable(root: string, kind: keyof Unreachable): Promise<boolean> {
	const file = ganetiFiles(root).unreachableFile;
	const counts = JSON.parse(await fs.readFile(file, 'utf8').catch(() => '{}')) as Unreachable;
	if (!counts[kind]) return false;
	counts[kind] -= 1;
	await fs.writeFile(file, JSON.stringify(counts));
	return true;
}

async function failIfUnreachable(root: string): Promise<void> {
	if (!(await nodeUnreachable(root, 'jobs'))) return;
	const state = await readGanetiState(root);
	throw new GanetiError(`Error checking node ${state.cluster.node}: Error 28: SSL connection timeout`);
}

// ---------------------------------------------------------------- runtime

/** nodeDown: the node did not answer, so nothing live is known (`?`). */
type Runtime = {running: boolean; memory?: number; nodeDown?: boolean};

async function runtimeOf(cluster: GanetiCluster, instance: GanetiInstance): Promise<Runtime> {
	if (!(await vmPid(cluster, instance.name))) return {running: false};
	// Ganeti's KVM driver reports the balloon's size as the instance's memory.
	const memory = await balloonActual(monitorSocketFor(cluster, instance.name)).catch(() => undefined);
	return {running: true, memory};
}

function instanceStatus(instance: GanetiInstance, runtime: Runtime): string {
	if (instance.adminState === 'offline') return 'ADMIN_offline';
	if (runtime.running) return instance.adminState === 'up' ? 'running' : 'ERROR_up';
	return instance.adminState === 'up' ? 'ERROR_down' : 'ADMIN_down';
}

// ---------------------------------------------------------------- gnt-instance list

type Kind = 'text' | 'bool' | 'unit' | 'other' | 'unknown';
type FieldValue = {value: unknown} | {unavailable: true} | {noData: true};
type Field = {
	title: string;
	kind: Kind;
	get: (instance: GanetiInstance, runtime: Runtime, cluster: GanetiCluster) => FieldValue;
	/** gnt-instance list prints these lists comma-joined rather than as Python lists. */
	joined?: boolean;
};

const value = (value: unknown): FieldValue => ({value});
const live = (runtime: Runtime, get: () => unknown): FieldValue =>
	runtime.nodeDown
		? {noData: true}
		: runtime.running
			? get() === undefined
				? {noData: true}
				: value(get())
			: {unavailable: true};

function beField(title: string, key: 'maxmem' | 'minmem'): Field {
	return {title, kind: 'unit', get: (instance, _runtime, cluster) => value(filledBeparams(cluster, instance)[key])};
}

// The fields farmclone (name, status, pnode, nic.macs, nic.ips, be/maxmem, be/minmem), the default listing and the
// stand-in's tests ask for; any other is an unknown field, as Ganeti answers one.
const fields: Record<string, Field> = {
	name: {title: 'Instance', kind: 'text', get: (instance) => value(instance.name)},
	status: {
		title: 'Status',
		kind: 'text',
		get: (instance, runtime) => value(runtime.nodeDown ? 'ERROR_nodedown' : instanceStatus(instance, runtime)),
	},
	admin_state: {title: 'InstanceState', kind: 'text', get: (instance) => value(instance.adminState)},
	oper_state: {
		title: 'Running',
		kind: 'bool',
		get: (_instance, runtime) => (runtime.nodeDown ? {noData: true} : value(runtime.running)),
	},
	oper_ram: {title: 'Memory', kind: 'unit', get: (_instance, runtime) => live(runtime, () => runtime.memory)},
	pnode: {title: 'Primary_node', kind: 'text', get: (instance) => value(instance.pnode)},
	os: {title: 'OS', kind: 'text', get: (instance) => value(instance.os)},
	hypervisor: {title: 'Hypervisor', kind: 'text', get: (instance) => value(instance.hypervisor)},
	'nic.macs': {
		title: 'NIC_MACs',
		kind: 'other',
		joined: true,
		get: (instance) => value(instance.nics.map((nic) => nic.mac)),
	},
	'nic.ips': {
		title: 'NIC_IPs',
		kind: 'other',
		joined: true,
		get: (instance) => value(instance.nics.map((nic) => nic.ip)),
	},
	'be/maxmem': beField('ConfigMaxMem', 'maxmem'),
	'be/minmem': beField('ConfigMinMem', 'minmem'),
};

const defaultListFields = ['name', 'hypervisor', 'os', 'pnode', 'status', 'oper_ram'];

function formatCell(field: Field, cell: FieldValue, units: 'h' | 'm'): string {
	if ('unavailable' in cell) return '-';
	if ('noData' in cell) return '?';
	const {value: raw} = cell;
	if (field.joined && Array.isArray(raw)) return raw.map((item) => pythonStr(item)).join(',');
	switch (field.kind) {
		case 'bool': {
			return raw ? 'Y' : 'N';
		}

		case 'unit': {
			return typeof raw === 'number' ? formatUnit(raw, units) : pythonStr(raw);
		}

		default: {
			return pythonStr(raw);
		}
	}
}

const listUsage = 'gnt-instance list [<instance>...]';
const listOptions: OptionSpec[] = [
	{names: ['--no-headers'], key: 'noHeaders'},
	{names: ['--separator'], key: 'separator', value: true},
	{names: ['-o', '--output'], key: 'output', value: true},
];

async function listInstances(root: string, argv: string[]): Promise<number> {
	const parsed = parseOptions(argv, listOptions, listUsage);
	const output = parsed.options.get('output') as string | undefined;
	const names =
		output === undefined
			? defaultListFields
			: output.startsWith('+')
				? [...defaultListFields, ...output.slice(1).split(',')]
				: output.split(',');
	const separator = parsed.options.get('separator') as string | undefined;
	// Ganeti's units without --units (farmclone never gives it): mebibytes with a separator, human-readable without.
	const units = separator ? 'm' : 'h';
	const state = await readGanetiState(root);
	const instances =
		parsed.args.length > 0
			? parsed.args.map((name) => {
					const instance = lookupInstance(state, name);
					if (!instance) throw new GanetiError(`Instance name ${name} not found`, 'prereq', 'unknown_entity');
					return instance;
				})
			: [...state.instances].sort((a, b) => a.name.localeCompare(b.name));

	const selected = names.map((name) => {
		const field = fields[name];
		return field ?? {title: name, kind: 'unknown' as const, get: () => ({value: undefined})};
	});
	const rows: string[][] = [];
	const nodeDown = await nodeUnreachable(root, 'lists');
	for (const instance of instances) {
		const runtime = nodeDown ? {running: true, nodeDown} : await runtimeOf(state.cluster, instance);
		rows.push(
			selected.map((field) =>
				field.kind === 'unknown' ? '??' : formatCell(field, field.get(instance, runtime, state.cluster), units),
			),
		);
	}

	const columns: Column[] = selected.map((field) => ({
		title: field.title,
		alignRight: field.kind === 'unit',
	}));
	const lines = formatTable(rows, columns, !parsed.options.get('noHeaders'), separator);
	if (lines.length > 0) out(`${lines.join('\n')}\n`);
	const unknown = names.filter((name) => !fields[name]);
	if (unknown.length > 0) {
		err(`Warning: Queried for unknown fields ${unknown.join(', ')}\n`);
		return exitUnknownField;
	}

	return 0;
}

// ---------------------------------------------------------------- gnt-instance add

const addUsage = '-t [-n node:secondary-node] -o <os-type> <instance-name>';
const addOptions: OptionSpec[] = [
	{names: ['-n', '--node'], key: 'node', value: true},
	{names: ['-B', '--backend-parameters'], key: 'beparams', value: true},
	{names: ['-o', '--os-type'], key: 'os', value: true},
	{names: ['-t', '--disk-template'], key: 'template', value: true},
	{names: ['--disk'], key: 'disks', value: true, multiple: true},
	{names: ['--net'], key: 'nets', value: true, multiple: true},
	{names: ['--no-install'], key: 'noInstall'},
	{names: ['--no-start'], key: 'noStart'},
	{names: ['--no-name-check'], key: 'noNameCheck'},
	{names: ['--no-ip-check'], key: 'noIpCheck'},
];

type DiskRequest = {adopt?: string; size?: number; vg: string};

/** -B: maxmem and minmem, all farmclone sets (Ganeti 2.6+); another parameter is refused here. */
function parseBeparams(text: string | undefined): {maxmem?: number; minmem?: number} {
	const result: {maxmem?: number; minmem?: number} = {};
	if (!text) return result;
	for (const [key, raw] of parseKeyValues(text)) {
		const size = (name: string) => {
			try {
				return parseUnit(raw);
			} catch (error) {
				throw new GanetiError(
					`Parameter '${name}' fails validation: ${(error as Error).message}`,
					'prereq',
					'wrong_input',
				);
			}
		};
		switch (key) {
			case 'maxmem':
			case 'minmem': {
				result[key] = size(key);
				break;
			}

			default: {
				throw new GanetiError(`Unknown parameter '${key}'`, 'prereq', 'wrong_input');
			}
		}
	}

	return result;
}

/** The name as the instance's DNS says it (getaddrinfo in Ganeti): asked of the sim's named, inside the namespace. */
async function resolveName(root: string, name: string): Promise<string> {
	let namespace: string;
	try {
		namespace = await ensureSimServices(root, ['named']);
	} catch {
		throw new GanetiError(
			`The given name (${name}) does not resolve: Temporary failure in name resolution`,
			'prereq',
			'resolver_error',
		);
	}

	const result = await runInNamespace(namespace, ['/usr/bin/dig', '+short', '+time=2', '+tries=1', name, 'A']);
	const address = result.stdout.split('\n').find((line) => /^\d+\.\d+\.\d+\.\d+$/.test(line.trim()));
	if (address) return address.trim();
	const reason = result.exitCode === 0 ? 'Name or service not known' : 'Temporary failure in name resolution';
	throw new GanetiError(`The given name (${name}) does not resolve: ${reason}`, 'prereq', 'resolver_error');
}

/**
 * Ganeti pings the instance's IP on the node daemon's port before creating it.
 * No simulated VM has a running CPU to answer, so only the host's own
 * addresses can: ask the namespace which addresses are local, without
 * sending a packet.
 */
async function ipAnswers(root: string, ip: string): Promise<boolean> {
	const namespace = await ensureSimServices(root);
	const result = await runInNamespace(namespace, ['/usr/sbin/ip', '-4', '-o', 'address', 'show']);
	return result.stdout.split('\n').some((line) => line.includes(` ${ip}/`));
}

function normalizeName(name: string): string {
	const normalized = name.toLowerCase().replace(/\.$/, '');
	if (!/^[a-z\d._-]{1,255}$/.test(normalized)) {
		throw new GanetiError(`Invalid hostname '${name}'`, 'prereq', 'wrong_input');
	}

	return normalized;
}

function generateMac(state: GanetiState): string {
	for (;;) {
		const bytes = [...randomBytes(3)].map((byte) => byte.toString(16).padStart(2, '0'));
		const mac = `${state.cluster.macPrefix}:${bytes.join(':')}`;
		if (!state.instances.some((instance) => instance.nics.some((nic) => nic.mac === mac))) return mac;
	}
}

async function addInstance(root: string, argv: string[]): Promise<number> {
	const parsed = parseOptions(argv, addOptions, addUsage);
	let name = single(parsed, addUsage);
	const flag = (key: string) => parsed.options.get(key) === true;
	let start = !flag('noStart');
	const nameCheck = !flag('noNameCheck');
	const ipCheck = !flag('noIpCheck');

	const template = (parsed.options.get('template') as string | undefined) ?? 'plain';
	if (template !== 'plain') {
		throw new GanetiError(
			`Disk template ${template} is not enabled in cluster. Enabled disk templates are: plain`,
			'prereq',
			'wrong_input',
		);
	}

	const state0 = await readGanetiState(root);
	const disks: DiskRequest[] = ((parsed.options.get('disks') as string[] | undefined) ?? []).map((text) => {
		const {ident, params} = parseIdentKeyValues(text, '--disk');
		if (!/^\d+$/.test(ident)) throw new GanetiError(`Invalid disk index passed: ${ident}`, 'prereq', 'wrong_input');
		const adopt = params.get('adopt');
		const size = params.get('size');
		if (adopt && size) throw new GanetiError('Disk adoption and size are mutually exclusive', 'prereq', 'wrong_input');
		if (!adopt && !size)
			throw new GanetiError(`Missing size or adoption source for disk ${ident}`, 'prereq', 'wrong_input');
		return {adopt, size: size ? parseUnit(size) : undefined, vg: params.get('vg') ?? state0.cluster.vg};
	});
	if (disks.length === 0) throw new GanetiError('No disk information specified', 'prereq', 'wrong_input');
	const adopting = disks.filter((disk) => disk.adopt).length;
	if (adopting > 0 && adopting !== disks.length) {
		throw new GanetiError('Either all disks are adopted or none is', 'prereq', 'wrong_input');
	}

	if (adopting === 0) {
		throw new GanetiError(
			'the simulated cluster only adopts existing volumes (--disk N:adopt=LV), it does not create new ones',
			'prereq',
			'wrong_input',
		);
	}

	const os = parsed.options.get('os') as string | undefined;
	if (!os) throw new GanetiError('No guest OS or OS image specified', 'prereq', 'wrong_input');
	const beparams = parseBeparams(parsed.options.get('beparams') as string | undefined);

	const lines: string[] = [];
	// CheckArguments: an instance with no OS installed is not started.
	if (flag('noInstall') && start) {
		lines.push(feedback(' - INFO: No-installation mode selected, disabling startup'));
		start = false;
	}

	name = normalizeName(name);
	if (ipCheck && !nameCheck) {
		throw new GanetiError('Cannot do IP address check without a name check', 'prereq', 'wrong_input');
	}

	let resolvedIp: string | undefined;
	if (nameCheck) resolvedIp = await resolveName(root, name);

	const added = await withGanetiState(root, async (state) => {
		const {cluster} = state;
		if (state.instances.some((instance) => instance.name === name)) {
			throw new GanetiError(`Instance '${name}' is already in the cluster`, 'prereq', 'already_exists');
		}

		const nodeOption = (parsed.options.get('node') as string | undefined)?.split(':')[0];
		const node = nodeOption === undefined ? cluster.node : lookupNode(state, nodeOption);
		if (!node) throw new GanetiError(`Node '${nodeOption}' not known`, 'prereq', 'unknown_entity');

		if (ipCheck && resolvedIp && (await ipAnswers(root, resolvedIp))) {
			throw new GanetiError(`IP ${resolvedIp} of instance ${name} already in use`, 'prereq', 'resource_not_unique');
		}

		const nics: GanetiNic[] = [];
		const nicTexts = (parsed.options.get('nets') as string[] | undefined) ?? ['0:'];
		for (const text of nicTexts) {
			const {params} = parseIdentKeyValues(text, '--net');
			const requested = params.get('mac') ?? 'auto';
			let mac: string;
			if (requested === 'auto' || requested === 'generate') {
				mac = generateMac(state);
			} else {
				const normalized = normalizeMac(requested);
				if (!normalized) throw new GanetiError(`Invalid MAC address '${requested}'`, 'prereq', 'wrong_input');
				const taken =
					state.instances.some((instance) => instance.nics.some((nic) => nic.mac === normalized)) ||
					nics.some((nic) => nic.mac === normalized);
				if (taken) {
					throw new GanetiError(`MAC address ${normalized} already in use in cluster`, 'prereq', 'resource_not_unique');
				}

				mac = normalized;
			}

			const ip = params.get('ip');
			nics.push({
				uuid: randomUUID(),
				mac,
				ip: ip === undefined || ip.toLowerCase() === 'none' ? null : ip === 'auto' ? (resolvedIp ?? null) : ip,
				mode: 'bridged',
				link: params.get('link') ?? cluster.nicparams.link,
				name: params.get('name') ?? null,
			});
		}

		// The adoption checks, in Ganeti's order: reserved by an instance, present, not open.
		const wanted = disks.map((disk) => `${disk.vg}/${disk.adopt}`);
		if (new Set(wanted).size !== wanted.length) {
			throw new GanetiError('Duplicate volume names given for adoption', 'prereq', 'wrong_input');
		}

		for (const [index, disk] of disks.entries()) {
			const owner = state.instances.find((instance) =>
				instance.disks.some((used) => used.vg === disk.vg && used.lv === disk.adopt),
			);
			if (owner)
				throw new GanetiError(`LV named ${wanted[index]} used by another instance`, 'prereq', 'resource_not_unique');
		}

		const lvm = await readLvmState(root);
		const missing = disks
			.filter((disk) => !findLv(lvm, disk.vg, disk.adopt!))
			.map((disk) => `${disk.vg}/${disk.adopt}`);
		if (missing.length > 0) {
			throw new GanetiError(`Missing logical volume(s): ${missing.join(', ')}`, 'prereq', 'wrong_input');
		}

		const online: string[] = [];
		for (const disk of disks) if (await isLvOpen(root, disk.vg, disk.adopt!)) online.push(`${disk.vg}/${disk.adopt}`);
		if (online.length > 0) {
			throw new GanetiError(
				`Online logical volumes found, cannot adopt: ${online.join(', ')}`,
				'prereq',
				'wrong_state',
			);
		}

		// The instance policy, checked before anything changes: Ganeti 3.0 refuses a disk under 1 GiB by default.
		const policy = state.cluster.diskPolicy ?? defaultDiskPolicy;
		for (const [index, disk] of disks.entries()) {
			const sizeMiB = Math.floor(findLv(lvm, disk.vg, disk.adopt!)!.size / 1024 / 1024);
			if (sizeMiB < policy.minMiB || sizeMiB > policy.maxMiB) {
				const group = state.cluster.nodeGroup;
				throw new GanetiError(
					`Instance allocation to group ${group.name} (${group.uuid}) violates policy: disk-size/${index} value ${sizeMiB} is not in range [${policy.minMiB}, ${policy.maxMiB}]`,
					'prereq',
					'wrong_input',
				);
			}
		}

		// Exec: the adopted volumes get Ganeti's own unique names.
		const instanceDisks: GanetiDisk[] = [];
		for (const [index, disk] of disks.entries()) {
			const lv = findLv(lvm, disk.vg, disk.adopt!)!;
			const newName = `${randomUUID()}.disk${index}`;
			try {
				await renameLv(root, disk.vg, disk.adopt!, newName);
			} catch (error) {
				throw new GanetiError(`Failed to rename adoped LVs: ${(error as Error).message}`, 'exec');
			}

			instanceDisks.push({
				uuid: randomUUID(),
				vg: disk.vg,
				lv: newName,
				sizeMiB: Math.floor(lv.size / 1024 / 1024),
				name: null,
				mode: 'rw',
			});
		}

		lines.push(feedback(`adding instance ${name} to cluster config`));
		lines.push(feedback('adding disks to cluster config'));
		const now = nowSeconds();
		const instance: GanetiInstance = {
			name,
			uuid: randomUUID(),
			ctime: now,
			mtime: now,
			serialNo: 1,
			pnode: node,
			os,
			hypervisor: 'kvm',
			diskTemplate: 'plain',
			disks: instanceDisks,
			nics,
			beparams,
			adminState: start ? 'up' : 'down',
			adminStateSource: 'admin',
			networkPort: 11_000 + state.instances.length,
		};
		state.instances.push(instance);
		return instance;
	});
	out(lines.join(''));
	if (start) {
		// Like Ganeti, the instance stays in the cluster when its first start fails.
		out(feedback('* starting instance...'));
		await withGanetiState(root, async (state) => startOrFail(root, state.cluster, expandInstance(state, added.name)));
	}

	return 0;
}

async function startOrFail(root: string, cluster: GanetiCluster, instance: GanetiInstance): Promise<void> {
	try {
		const namespace = await ensureSimServices(root);
		await startVm(root, namespace, cluster, instance);
	} catch (error) {
		throw new GanetiError(`Could not start instance: ${(error as Error).message}`, 'exec');
	}
}

// ---------------------------------------------------------------- start, shutdown, remove

// farmclone runs `start NAME`, `shutdown NAME`, `remove -f NAME` and `modify --runtime-memory SIZE NAME`: no other option.

async function startInstance(root: string, argv: string[]): Promise<number> {
	const usage = '<instance>';
	const name = single(parseOptions(argv, [], usage), usage);
	return withGanetiState(root, async (state) => {
		const instance = expandInstance(state, name);
		if (instance.adminState === 'offline') {
			throw new GanetiError(`Instance '${instance.name}' is marked to be offline`, 'prereq', 'wrong_state');
		}

		instance.adminState = 'up';
		instance.adminStateSource = 'admin';
		instance.mtime = nowSeconds();
		instance.serialNo++;
		await startOrFail(root, state.cluster, instance);
		return 0;
	});
}

async function shutdownInstance(root: string, argv: string[]): Promise<number> {
	const usage = '<instance>';
	const name = single(parseOptions(argv, [], usage), usage);
	return withGanetiState(root, async (state) => {
		const instance = expandInstance(state, name);
		// No guest answers ACPI: this is the hard stop Ganeti falls back to after its timeout.
		await stopVm(state.cluster, instance.name);
		instance.adminState = 'down';
		instance.adminStateSource = 'admin';
		instance.mtime = nowSeconds();
		instance.serialNo++;
		return 0;
	});
}

async function removeInstance(root: string, argv: string[]): Promise<number> {
	const usage = '<instance>';
	const parsed = parseOptions(argv, [{names: ['-f', '--force'], key: 'force'}], usage);
	const name = single(parsed, usage);
	if (!parsed.options.get('force')) {
		// Ganeti asks on the terminal; farmclone always gives -f, so the stand-in answers as Ganeti does without one: no.
		expandInstance(await readGanetiState(root), name);
		return 1;
	}

	return withGanetiState(root, async (state) => {
		const instance = expandInstance(state, name);
		await stopVm(state.cluster, instance.name);
		for (const disk of instance.disks) {
			try {
				await withLvmState(root, async (lvm) => {
					if (!findLv(lvm, disk.vg, disk.lv)) return;
					if (await isLvOpen(root, disk.vg, disk.lv))
						throw new LvmError(`Logical volume ${disk.vg}/${disk.lv} in use.`);
					lvm.lvs = lvm.lvs.filter((lv) => !(lv.vg === disk.vg && lv.name === disk.lv));
					await removeLvDevice(root, disk.vg, disk.lv);
				});
			} catch (error) {
				throw new GanetiError(
					`Can't remove instance's disks: Could not remove disk ${disk.lv}: ${(error as Error).message}`,
					'exec',
				);
			}
		}

		state.instances = state.instances.filter((other) => other !== instance);
		return 0;
	});
}

// ---------------------------------------------------------------- modify

async function modifyInstance(root: string, argv: string[]): Promise<number> {
	const usage = '<instance>';
	const parsed = parseOptions(argv, [{names: ['--runtime-memory'], key: 'runtimeMemory', value: true}], usage);
	const name = single(parsed, usage);
	const runtimeText = parsed.options.get('runtimeMemory') as string | undefined;
	if (runtimeText === undefined) {
		err('Please give at least one of the parameters.\n');
		return 1;
	}

	const runtimeMemory = parseUnit(runtimeText);
	return withGanetiState(root, async (state) => {
		const instance = expandInstance(state, name);
		const {maxmem, minmem} = filledBeparams(state.cluster, instance);
		if (!(await vmPid(state.cluster, instance.name))) {
			throw new GanetiError(`Instance ${instance.name} is not running`, 'prereq', 'wrong_state');
		}

		if (runtimeMemory > maxmem || runtimeMemory < minmem) {
			throw new GanetiError(
				`Instance ${instance.name} must have memory between ${minmem} and ${maxmem} MB of memory unless --force is given`,
				'prereq',
				'wrong_input',
			);
		}

		const answer = await monitorCommand(
			monitorSocketFor(state.cluster, instance.name),
			`balloon ${runtimeMemory}`,
		).catch((error: Error) => `Error: ${error.message}`);
		if (answer.trim()) {
			throw new GanetiError(`Cannot modify instance runtime memory: ${answer.trim()}`, 'exec');
		}

		instance.runtimeMemory = runtimeMemory;
		instance.mtime = nowSeconds();
		instance.serialNo++;
		out(`Modified instance ${name}\n - runtime_memory -> ${runtimeMemory}\n`);
		out(
			"Please don't forget that most parameters take effect only at the next (re)start of the instance initiated by ganeti; restarting from within the instance will not be enough.\n",
		);
		return 0;
	});
}

// ---------------------------------------------------------------- info

const kvmHvparams: Record<string, string> = {
	acpi: 'True',
	boot_order: 'disk',
	cdrom_image_path: '',
	disk_cache: 'default',
	disk_type: 'paravirtual',
	kernel_path: '',
	kvm_flag: '',
	machine_version: '',
	nic_type: 'paravirtual',
	reboot_behavior: 'reboot',
	serial_console: 'True',
	serial_speed: '38400',
	use_chroot: 'False',
	vnc_bind_address: '',
};

function defaults(actual: Record<string, string>, own: Record<string, string> = {}): InfoValue {
	return {
		dict: Object.fromEntries(Object.entries(actual).map(([key, data]) => [key, own[key] ?? `default (${data})`])),
	};
}

function pythonBool(value: boolean): string {
	return value ? 'True' : 'False';
}

async function instanceInfo(root: string, cluster: GanetiCluster, instance: GanetiInstance, isStatic: boolean) {
	const runtime = isStatic ? undefined : await runtimeOf(cluster, instance);
	const be = filledBeparams(cluster, instance);
	const own: Record<string, string> = Object.fromEntries(
		Object.entries(instance.beparams).map(([key, data]) => [key, String(data)]),
	);
	const actual: Record<string, string> = {
		always_failover: pythonBool(be.always_failover),
		auto_balance: pythonBool(be.auto_balance),
		maxmem: String(be.maxmem),
		memory: String(be.maxmem),
		minmem: String(be.minmem),
		spindle_use: String(be.spindle_use),
		vcpus: String(be.vcpus),
	};
	let state = `configured to be ${instance.adminState}`;
	if (runtime) state += `, actual state is ${runtime.running ? 'up' : 'down'}`;
	return {
		pairs: [
			['Instance name', instance.name],
			['UUID', instance.uuid],
			['Serial number', String(instance.serialNo)],
			['Creation time', formatTime(instance.ctime)],
			['Modification time', formatTime(instance.mtime)],
			['State', state],
			[
				'Nodes',
				[
					{
						pairs: [
							['primary', instance.pnode],
							['group', `${cluster.nodeGroup.name} (UUID ${cluster.nodeGroup.uuid})`],
						],
					},
					{pairs: [['secondaries', '']]},
				],
			],
			['Operating system', instance.os],
			['Operating system parameters', {dict: {}}],
			['Allocated network port', String(instance.networkPort)],
			['Hypervisor', instance.hypervisor],
			['Hypervisor parameters', defaults(kvmHvparams)],
			['Back-end parameters', defaults(actual, own)],
			[
				'NICs',
				instance.nics.map((nic, index) => ({
					pairs: [
						[`nic/${index}`, ''],
						['MAC', nic.mac],
						['IP', pythonStr(nic.ip)],
						['mode', nic.mode],
						['link', nic.link],
						['vlan', ''],
						['network', 'None'],
						['UUID', nic.uuid],
						['name', pythonStr(nic.name)],
					],
				})),
			],
			['Disk template', instance.diskTemplate],
			[
				'Disks',
				instance.disks.map((disk, index) => ({
					pairs: [
						[`disk/${index}`, `${instance.diskTemplate}, size ${formatUnit(disk.sizeMiB, 'h')}`],
						['access mode', disk.mode],
						['logical_id', `${disk.vg}/${disk.lv}`],
						...(runtime
							? [['on primary', `${lvDevicePath(root, disk.vg, disk.lv)} (N/A:N/A)`] as [string, string]]
							: []),
						['name', pythonStr(disk.name)],
						['UUID', disk.uuid],
					],
				})),
			],
		],
	} satisfies InfoValue;
}

async function showInstanceInfo(root: string, argv: string[]): Promise<number> {
	const usage = '[-s] {--all | <instance>...}';
	const parsed = parseOptions(
		argv,
		[
			{names: ['-s', '--static'], key: 'static'},
			{names: ['--all'], key: 'all'},
		],
		usage,
	);
	if (parsed.args.length === 0 && !parsed.options.get('all')) {
		err(
			'No instance selected. Please pass in --all if you want to query all instances.\nNote that this can take a long time on a big cluster.\n',
		);
		return 1;
	}

	if (parsed.args.length > 0 && parsed.options.get('all')) {
		err('Cannot use --all if you specify instance names.\n');
		return 1;
	}

	const state = await readGanetiState(root);
	const instances = parsed.args.length > 0 ? parsed.args.map((name) => expandInstance(state, name)) : state.instances;
	if (instances.length === 0) {
		out('No instances.\n');
		return 1;
	}

	const blocks: InfoValue[] = [];
	for (const instance of instances) {
		blocks.push(await instanceInfo(root, state.cluster, instance, parsed.options.get('static') === true));
	}

	out(formatGenericInfo(blocks));
	return 0;
}

// ---------------------------------------------------------------- gnt-cluster

function versionLine(command: string): string {
	return `${command} (ganeti ${ganetiVersion.vcs}) ${ganetiVersion.release}\n`;
}

/** Only `gnt-cluster --version`: farmclone reads the version and nothing else of the cluster. */
function gntCluster(argv: string[]): number {
	if (argv[0] !== '--version') return usage('gnt-cluster', []);
	out(versionLine('gnt-cluster'));
	return 0;
}

async function gntInstance(root: string, argv: string[]): Promise<number> {
	const [command, ...rest] = argv;
	switch (command) {
		case '--version': {
			out(versionLine('gnt-instance'));
			return 0;
		}

		case 'list': {
			return listInstances(root, rest);
		}

		case 'add': {
			await failIfUnreachable(root);
			return addInstance(root, rest);
		}

		case 'start': {
			await failIfUnreachable(root);
			return startInstance(root, rest);
		}

		case 'shutdown': {
			await failIfUnreachable(root);
			return shutdownInstance(root, rest);
		}

		case 'remove': {
			await failIfUnreachable(root);
			return removeInstance(root, rest);
		}

		case 'modify': {
			await failIfUnreachable(root);
			return modifyInstance(root, rest);
		}

		case 'info': {
			return showInstanceInfo(root, rest);
		}

		default: {
			return usage('gnt-instance', ['add', 'info', 'list', 'modify', 'remove', 'shutdown', 'start']);
		}
	}
}

function usage(binary: string, commands: string[]): number {
	err(
		`Usage: ${binary} {command} [options...] [argument...]\n${binary} <command> --help to see details, or man ${binary}\n\nCommands:\n`,
	);
	for (const command of commands) err(` ${command}\n`);
	return 1;
}

async function main(argv: string[]): Promise<number> {
	const [binary = 'gnt-instance', ...rest] = argv;
	const root = simRoot();
	try {
		if (binary === 'gnt-cluster') return gntCluster(rest);
		if (binary === 'gnt-instance') return await gntInstance(root, rest);
		err(`${binary}: not a Ganeti command this stand-in knows\n`);
		return 1;
	} catch (error) {
		if (error instanceof GanetiError) {
			err(`${error.format()}\n`);
			return 1;
		}

		if (error instanceof UsageError) {
			err(`Usage: ${binary} ${rest[0] ?? ''} ${error.usage}\n\n${binary}: error: ${error.message}\n`);
			return 2;
		}

		throw error;
	}
}

// The shim passes the name it was called by first.
main(process.argv.slice(2)).then(
	(code) => {
		process.exitCode = code;
	},
	(error: unknown) => {
		err(`Unhandled exception: ${error instanceof Error ? error.message : String(error)}\n`);
		process.exitCode = 1;
	},
);
