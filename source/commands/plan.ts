import path from 'node:path';
import {lookContext, stageContext} from '../engine/engine.js';
import {newJournal, JournalWriter, readJournal} from '../engine/journal.js';
import {Host, lookingHost} from '../host/host.js';
import {withScratchDir} from '../host/scratch.js';
import type {SettingsStore} from '../settings/store.js';
import {allStages} from '../stages/index.js';
import type {CheckResult, Plan, Prompt} from '../stages/types.js';
import {farmDir} from './context.js';
import {preflight, type Finding} from '../engine/preflight.js';
import {formatArgv} from '../ui/format.js';

const refuse: Prompt = {
	confirm: async () => false,
	choose: async (_message, choices) => choices[0]!.value,
	typed: async () => false,
};

export type FarmPlan = {findings: Finding[]; stages: PlannedStage[]};

export type PlannedStage = {
	id: string;
	title: string;
	danger: string;
	check?: CheckResult;
	plan?: Plan;
	error?: string;
};

/**
 * The preflight's findings (what would stop `farmclone run` before stage 1),
 * then every stage's check and plan, without changing anything: the journal
 * is read but not written, commands are only the read-only ones the checks use.
 */
export async function planFarm(store: SettingsStore, farm: string): Promise<FarmPlan> {
	const stored = store.require(farm);
	// The MAC stage's plan names the MAC the run will pick; later stages plan with it. Not saved.
	const settings = {...stored};
	const journal = (await readJournal(farmDir(farm))) ?? newJournal(farm);
	return withScratchDir('farmclone-plan', async (scratch) => {
		const host = new Host({commandPath: settings.commandPath, backupDir: path.join(scratch, 'backups')});
		const writer = new JournalWriter(scratch, structuredClone(journal));
		const session = {journal: writer, host, currentStage: {id: ''}, emit: () => undefined};
		// Nothing changes the host while planning: one look, each listing read once.
		const look = lookingHost(host);
		// With the MAC as stored: a made-up one would only find made-up conflicts.
		const findings = await preflight(
			look,
			stored,
			journal.states,
			allStages.map((stage) => stage.id),
			store.list().filter((other) => other.name !== farm),
		);
		const planned: PlannedStage[] = [];
		for (const stage of allStages) {
			const context = lookContext(
				stageContext(session, settings, stage, refuse, new AbortController().signal, scratch),
				look,
			);
			const entry: PlannedStage = {id: stage.id, title: stage.title, danger: stage.danger};
			try {
				entry.check = await stage.check(context);
				entry.plan = await stage.plan(context);
				const mac = stage.id === 'mac' ? entry.plan.values?.['mac'] : undefined;
				if (mac) settings.mac = mac;
			} catch (error) {
				entry.error = error instanceof Error ? error.message : String(error);
			}

			planned.push(entry);
		}

		return {findings, stages: planned};
	});
}

/**
 * What `farmclone plan` says of a stage's check: what an earlier stage of
 * this plan will make (its check names it and that stage is not done) is
 * "not yet", not a conflict; a conflict is only what is really in the way.
 */
export function nowLine(stage: PlannedStage, stages: readonly PlannedStage[]): string | undefined {
	const {check} = stage;
	if (!check) return undefined;
	const awaited = check.status === 'done' ? -1 : stages.findIndex((other) => other.id === check.awaits);
	if (awaited !== -1 && stages[awaited]!.check?.status !== 'done') {
		return `not yet: ${check.detail} (stage ${awaited + 1}, ${stages[awaited]!.title}, comes first)`;
	}

	return `${check.status}: ${check.detail}`;
}

export function formatPlan({findings, stages}: FarmPlan): string {
	const lines: string[] = [];
	if (findings.length > 0) {
		lines.push(`preflight: farmclone run would refuse to start (${findings.length} problem(s)):`);
		for (const finding of findings) {
			const [first = '', ...rest] = finding.reason.trim().split('\n');
			lines.push(
				`  ✘ ${finding.field} = ${JSON.stringify(finding.value)}: ${first}`,
				...rest.map((line) => `      ${line}`),
			);
		}
	} else {
		lines.push('preflight: no problem found; farmclone run may start');
	}

	lines.push('');
	for (const [index, stage] of stages.entries()) {
		const danger = stage.danger === 'typed' ? '  [typed confirmation]' : stage.danger === 'confirm' ? '  [asks]' : '';
		lines.push(`${index + 1}. ${stage.title}${danger}`);
		const now = nowLine(stage, stages);
		const [first, ...more] = now?.split('\n') ?? [];
		if (first !== undefined) lines.push(`   now: ${first}`, ...more.map((line) => `        ${line}`));
		if (stage.error) lines.push(`   cannot plan yet: ${stage.error}`);
		for (const command of stage.plan?.commands ?? []) lines.push(`   $ ${formatArgv(command)}`);
		for (const diff of stage.plan?.diffs ?? [])
			lines.push(
				...diff.diff
					.trimEnd()
					.split('\n')
					.map((line) => `   ${line}`),
			);
		for (const note of stage.plan?.notes ?? []) lines.push(`   note: ${note}`);
	}

	return `${lines.join('\n')}\n`;
}
