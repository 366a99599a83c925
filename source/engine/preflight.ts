/**
 * Everything that can be known before stage 1 changes anything: the
 * settings, the service files as the real checkers and farmclone's own
 * inspections see them (what the checkers miss: a second A record, a
 * duplicate MAC or address, an address outside every subnet, a port
 * forwarded twice), the cluster, the volume group and which volumes the
 * instances own. Nobody wants to learn about a taken IP after a 30 GB copy. What this run already did (the
 * journal's facts, farmclone's marked lines) is not a conflict.
 */
import {lookingHost, type ReadOnlyHost} from '../host/host.js';
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
import type {FarmSettings} from '../settings/schema.js';
import {SettingsError, validateSettings, type FieldError} from '../settings/validate.js';
import {allStages} from '../stages/index.js';
import {candidateMacs} from '../stages/mac.js';
import type {StageStates} from '../stages/state.js';
import type {PreflightCheck, PreflightContext, Stage} from '../stages/types.js';
import {volumeOwnershipProblems} from '../stages/volume-ownership.js';

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
	host: ReadOnlyHost,
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

/** The checks the stages list, each once, in the order of the stages. */
function checksOf(stages: readonly Stage[]): PreflightCheck[] {
	const checks: PreflightCheck[] = [];
	for (const stage of stages)
		for (const check of stage.preflight ?? []) if (!checks.includes(check)) checks.push(check);
	return checks;
}

/**
 * Every problem the run of `stageIds` (default: all) would meet, in the order
 * of the stages: empty when it may start. Read-only: runs only the checkers
 * and listings. `states` of the journal tell what this farm's run already made.
 */
export async function preflight(
	host: ReadOnlyHost,
	settings: FarmSettings,
	states: Readonly<StageStates> = {},
	stageIds?: readonly string[],
	/** The other saved farms: a free address named in a refusal is none of theirs. */
	otherFarms: FarmSettings[] = [],
): Promise<Finding[]> {
	const stages = allStages.filter((stage) => !stageIds || stageIds.includes(stage.id));
	return preflightOf(host, settings, states, stages, otherFarms);
}

/** The same for the given stages: the checks each lists. */
export async function preflightOf(
	machine: ReadOnlyHost,
	settings: FarmSettings,
	states: Readonly<StageStates>,
	stages: readonly Stage[],
	otherFarms: FarmSettings[] = [],
	onProgress?: (progress: PreflightProgress) => void,
): Promise<Finding[]> {
	const checks = checksOf(stages);
	if (checks.length === 0) return [];
	// One look: checks side by side that list the same volumes or instances share one read.
	const host = lookingHost(machine);
	const findings: Finding[] = validateSettings(settings as unknown as Record<string, unknown>);
	if (findings.length > 0) return findings;
	const add = (field: keyof FarmSettings, reason: string) => {
		if (!findings.some((finding) => finding.field === field && finding.reason === reason)) {
			findings.push({field, value: settings[field], reason});
		}
	};

	// The checks only read, each its own files and commands: they run side by side (shorewall check alone
	// takes seconds), and their findings are told in the order of the stages.
	const running = new Set(checks.map((check) => checkName(check)));
	const report = () => onProgress?.({done: checks.length - running.size, total: checks.length, running: [...running]});
	report();
	// The slow ones first: each start is a process spawned from this one, a few ms each on a busy host.
	const slowFirst = [...checks.filter((check) => check.slow), ...checks.filter((check) => !check.slow)];
	const found = new Map<PreflightCheck, Array<[keyof FarmSettings, string]>>();
	await Promise.all(
		slowFirst.map(async (check) => {
			const own: Array<[keyof FarmSettings, string]> = [];
			const context: PreflightContext = {host, settings, states, add: (field, reason) => own.push([field, reason])};
			await check(context);
			found.set(check, own);
			running.delete(checkName(check));
			report();
		}),
	);
	for (const check of checks) for (const [field, reason] of found.get(check) ?? []) add(field, reason);
	savedFarmClashes(settings, otherFarms, stages, add);
	await nameFreeValues(host, settings, findings, otherFarms);
	return findings;
}

/** Which of the preflight's checks are done, and which still run. */
export type PreflightProgress = {done: number; total: number; running: string[]};

/** What the screen calls a check while it runs: `zonePreflight` is "zone". */
const checkName = (check: PreflightCheck) => check.name.replace(/Preflight$/, '') || 'check';

/**
 * What another saved farm's settings take: its run would meet this one's
 * record, address, port or MAC (a farm not run yet leaves no trace on the host).
 */
function savedFarmClashes(
	settings: FarmSettings,
	otherFarms: readonly FarmSettings[],
	stages: readonly Stage[],
	add: (field: keyof FarmSettings, reason: string) => void,
): void {
	const runs = (...ids: string[]) => stages.some((stage) => ids.includes(stage.id));
	const fields: Array<keyof FarmSettings> = [
		...(runs('dns-record') ? (['record', 'ip'] as const) : []),
		...(runs('mac', 'dhcp-host') ? (['mac'] as const) : []),
		...(runs('firewall-rule') ? (['sshPort'] as const) : []),
	];
	for (const other of otherFarms) {
		if (other.name === settings.name) continue;
		for (const field of fields) {
			const value = String(settings[field] ?? '').toLowerCase();
			if (value !== '' && value === String(other[field] ?? '').toLowerCase()) {
				add(field, `farm ${other.name}'s settings take it too (saved; its run would clash with this one)`);
			}
		}
	}
}

/** The preflight of the run of `stages`, refusing to start with its findings. */
export async function assertPreflight(...args: Parameters<typeof preflightOf>): Promise<void> {
	const [, settings] = args;
	const findings = await preflightOf(...args);
	if (findings.length > 0) throw new PreflightError(settings.name, findings);
}
