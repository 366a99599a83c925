import {setTimeout as sleep} from 'node:timers/promises';
import {CommandError, type Host, type ReadOnlyHost} from './host.js';

export type GanetiInstance = {
	name: string;
	status: string;
	pnode: string;
	macs: string[];
	ips: string[];
	maxmem: number | undefined;
	minmem: number | undefined;
};

const fields = ['name', 'status', 'pnode', 'nic.macs', 'nic.ips', 'be/maxmem', 'be/minmem'];

function list(value: string | undefined): string[] {
	return (value ?? '')
		.split(',')
		.map((item) => item.trim())
		.filter((item) => item && item !== '-' && item !== '(none)' && item !== 'None');
}

function mebibytes(value: string | undefined): number | undefined {
	const match = /^(\d+(?:\.\d+)?)([MGT]?)$/i.exec((value ?? '').trim());
	if (!match) return undefined;
	const factor = {'': 1, m: 1, g: 1024, t: 1024 * 1024}[match[2]!.toLowerCase() as '' | 'm' | 'g' | 't'];
	return Math.round(Number(match[1]) * factor);
}

/** `gnt-instance list` with a separator no field can hold. */
export async function listInstances(host: ReadOnlyHost): Promise<GanetiInstance[]> {
	const argv = ['gnt-instance', 'list', '--no-headers', '--separator=|', '-o', fields.join(',')];
	const result = await queryGaneti(host, argv);
	if (result.exitCode !== 0) throw new CommandError(argv, result);
	return result.stdout
		.split('\n')
		.filter((line) => line.trim())
		.map((line) => {
			const [name = '', status = '', pnode = '', macs, ips, maxmem, minmem] = line.split('|');
			return {
				name,
				status,
				pnode,
				macs: list(macs).map((mac) => mac.toLowerCase()),
				ips: list(ips),
				maxmem: mebibytes(maxmem),
				minmem: mebibytes(minmem),
			};
		});
}

/** A logical volume an instance's disk lives on. */
export type InstanceVolume = {vg: string; lv: string};

const lvmName = '[A-Za-z\\d+_.-]+';
// "- Instance name: X" since Ganeti 2.7 (PrintGenericInfo), "Instance name: X" before.
const instanceLine = /^\s*(?:-\s+)?Instance name:\s*(\S+)\s*$/;
const disksLine = /^\s*Disks:\s*$/;
// Only a plain disk's logical_id reads VG/LV; DRBD's is spread over nodeA/nodeB/port lines (or printed as a
// Python tuple by older versions), file and RBD ones are tuples: none of them matches. The LVs under a DRBD
// disk are its "child" devices, each with a logical_id line of its own. Older versions align the values.
const logicalIdLine = new RegExp(`^\\s*(?:-\\s+)?logical_id:\\s*(${lvmName})/(${lvmName})\\s*$`);

/**
 * The volumes of each instance in the text of `gnt-instance info`: every
 * VG/LV logical_id under its "Disks:", children included. Status lines
 * ("on primary:") and numbers (which `--roman` would turn into numerals) are
 * not read.
 */
export function parseInstanceVolumes(text: string): Map<string, InstanceVolume[]> {
	const volumes = new Map<string, InstanceVolume[]>();
	let disks: InstanceVolume[] | undefined;
	let inDisks = false;
	for (const line of text.split('\n')) {
		const instance = instanceLine.exec(line);
		if (instance) {
			disks = [];
			inDisks = false;
			volumes.set(instance[1]!, disks);
			continue;
		}

		if (disksLine.test(line)) {
			inDisks = true;
			continue;
		}

		const id = logicalIdLine.exec(line);
		if (id && disks && inDisks) disks.push({vg: id[1]!, lv: id[2]!});
	}

	return volumes;
}

const osLine = /^\s*(?:-\s+)?Operating system:\s*(\S+)\s*$/;

/** The OS of each instance in the text of `gnt-instance info` (its "Operating system:" line). */
export function parseInstanceOses(text: string): Map<string, string> {
	const oses = new Map<string, string>();
	let instance: string | undefined;
	for (const line of text.split('\n')) {
		instance = instanceLine.exec(line)?.[1] ?? instance;
		const os = osLine.exec(line)?.[1];
		if (instance && os && !oses.has(instance)) oses.set(instance, os);
	}

	return oses;
}

/**
 * Which volumes each instance owns, from Ganeti's configuration
 * (`gnt-instance info --static --all`: no node is asked, no lock taken).
 */
export async function instanceVolumes(host: ReadOnlyHost): Promise<Map<string, InstanceVolume[]>> {
	const argv = ['gnt-instance', 'info', '--static', '--all'];
	// Quiet: the whole configuration of every instance is no news in the command log.
	const result = await queryGaneti(host, argv, {quiet: true});
	if (result.exitCode === 0) return parseInstanceVolumes(result.stdout);
	// An empty cluster is an error to gnt-instance info, not to us.
	if (/^No instances\.$/m.test(result.stdout)) return new Map();
	throw new CommandError(argv, result);
}

/** The instance whose disk vg/lv is, if any. */
export function volumeOwner(volumes: Map<string, InstanceVolume[]>, vg: string, lv: string): string | undefined {
	for (const [instance, disks] of volumes) {
		if (disks.some((disk) => disk.vg === vg && disk.lv === lv)) return instance;
	}

	return undefined;
}

/**
 * How long farmclone waits for a Ganeti node that does not answer. On a
 * loaded host the master misses Ganeti's 5 s RPC connect timeout: a job then
 * fails with "Error 28: SSL connection timeout" and `gnt-instance list`
 * shows ERROR_nodedown. That is slowness, not an answer: waited for, never
 * read as "not running" nor as success. FARMCLONE_GANETI_RETRY_MS shortens
 * the pause (tests); the number of tries is fixed.
 */
export const ganetiPatience = {
	jobAttempts: 6,
	listAttempts: 30,
	pauseMs: Number(process.env['FARMCLONE_GANETI_RETRY_MS'] ?? 10_000),
};

/** Ganeti's words for a node the master could not reach in time; undefined for any other failure. */
export function nodeUnreachable(output: string): string | undefined {
	return output
		.split('\n')
		.map((line) => line.trim())
		.find((line) =>
			/Error 28\b|SSL connection timeout|Error checking node .*(?:time[ds]? ?out|unreachable|refused)/i.test(line),
		);
}

/**
 * Ganeti's words for a job that never started, undefined for any other
 * failure. On a loaded host the job's process (Python, forked by the master)
 * may not answer the master in time: "job 6 failed to start: GenericError
 * "[start:job-6,pid=1907] Getting the lockfile of the client: user error
 * (Timeout in reading a response)"". Nothing of the job ran, so it is tried
 * again whatever it is, like any query Ganeti runs as a job (gnt-instance info).
 */
export function jobNotStarted(output: string): string | undefined {
	return output
		.split('\n')
		.map((line) => line.trim())
		.find((line) => /\bjob \d+ failed to start\b|Timeout in reading a response/i.test(line));
}

/** Why a Ganeti command failed for the host's slowness rather than for an answer; undefined for an answer. */
function slowness(output: string): string | undefined {
	const notStarted = jobNotStarted(output);
	if (notStarted) return `its job did not start in time: ${notStarted}`;
	const unreachable = nodeUnreachable(output);
	return unreachable ? `Ganeti could not reach its node: ${unreachable}` : undefined;
}

/**
 * A Ganeti query (list, info), asked again while it fails for slowness (see
 * slowness); its last result otherwise, for the caller to read or refuse.
 */
export async function queryGaneti(
	host: ReadOnlyHost,
	argv: string[],
	options: {quiet?: boolean; log?: (text: string) => void} = {},
) {
	for (let attempt = 1; ; attempt++) {
		const result = await host.run(argv, {reject: false, quiet: options.quiet});
		const why = result.exitCode === 0 ? undefined : slowness(`${result.stdout}\n${result.stderr}`);
		if (!why || attempt >= ganetiPatience.jobAttempts) return result;
		options.log?.(
			`${argv.slice(0, 2).join(' ')}: ${why}; asking again in ${pause()} s (try ${attempt + 1} of ${ganetiPatience.jobAttempts})`,
		);
		await sleep(ganetiPatience.pauseMs);
	}
}

/** Statuses that say the node did not answer: the instance's real state is unknown. */
const unknownStatus = /^ERROR_node(?:down|offline)$/;

export class GanetiUnreachableError extends Error {
	constructor(message: string) {
		super(message);
		this.name = 'GanetiUnreachableError';
	}
}

const pause = () => Math.round(ganetiPatience.pauseMs / 1000);

/**
 * A Ganeti job (`gnt-instance start/modify/add/remove/shutdown`), tried again
 * while it fails because the master could not reach the node. With
 * `onlyUnchanged` (add, remove: not idempotent) only a refusal of its
 * prerequisites is tried again, since Ganeti checked them before changing
 * anything. Any other failure throws at once, as the command's error.
 */
export async function runGanetiJob(
	host: Host,
	argv: string[],
	log: (text: string) => void,
	options: {onlyUnchanged?: boolean} = {},
): Promise<void> {
	const what = argv.slice(0, 2).join(' ');
	for (let attempt = 1; ; attempt++) {
		const result = await host.run(argv, {reject: false});
		if (result.exitCode === 0) return;
		const output = `${result.stdout}\n${result.stderr}`;
		const why = slowness(output);
		const unchanged = jobNotStarted(output) !== undefined || /prerequisites not met/.test(output);
		if (!why || (options.onlyUnchanged && !unchanged)) throw new CommandError(argv, result);
		if (attempt >= ganetiPatience.jobAttempts) {
			throw new GanetiUnreachableError(
				`${what} failed ${attempt} times because ${why.replace(/^its job/, 'the job')}: the job did not run to its end. Check the node with gnt-cluster verify, then run farmclone again: this stage starts over`,
			);
		}

		log(
			`${what}: ${why}${unchanged ? ', nothing was changed' : ''}; trying again in ${pause()} s (try ${attempt + 1} of ${ganetiPatience.jobAttempts})`,
		);
		await sleep(ganetiPatience.pauseMs);
	}
}

/**
 * The instance as `gnt-instance list` shows it once Ganeti reaches its node:
 * ERROR_nodedown (or nodeoffline) says the node did not answer, not that the
 * instance is down. Waits for a real status, saying so; throws when the node
 * stays silent.
 */
export async function findInstance(
	host: ReadOnlyHost,
	name: string,
	log: (text: string) => void = () => undefined,
): Promise<GanetiInstance | undefined> {
	for (let attempt = 1; ; attempt++) {
		const instance = (await listInstances(host)).find((row) => row.name === name);
		if (!instance || !unknownStatus.test(instance.status)) return instance;
		if (attempt >= ganetiPatience.listAttempts) {
			throw new GanetiUnreachableError(
				`gnt-instance list still shows ${name} as ${instance.status} after ${attempt} tries: Ganeti cannot reach node ${instance.pnode}, so whether ${name} runs is unknown. Check the node with gnt-cluster verify, then run farmclone again`,
			);
		}

		log(
			`gnt-instance list shows ${name} as ${instance.status}: Ganeti could not reach node ${instance.pnode}, its state is unknown; asking again in ${pause()} s (try ${attempt + 1} of ${ganetiPatience.listAttempts})`,
		);
		await sleep(ganetiPatience.pauseMs);
	}
}

/** Ganeti's version as [major, minor, patch], from `gnt-cluster --version`. */
export async function ganetiVersion(host: ReadOnlyHost): Promise<[number, number, number]> {
	const {stdout} = await host.run(['gnt-cluster', '--version']);
	const match = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(stdout);
	if (!match) throw new Error(`cannot read Ganeti's version from: ${stdout.trim()}`);
	return [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
}

/** maxmem/minmem (and so `modify --runtime-memory`) exist since Ganeti 2.6. */
export function hasRuntimeMemory(version: [number, number, number]): boolean {
	return version[0] > 2 || (version[0] === 2 && version[1] >= 6);
}

export function toMebibytes(size: string): number {
	const value = mebibytes(size);
	if (value === undefined) throw new Error(`not a Ganeti size: ${size}`);
	return value;
}
