import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs/promises';
import {stageContext} from '../engine/engine.js';
import {newJournal, JournalWriter, readJournal} from '../engine/journal.js';
import {Host} from '../host/host.js';
import type {SettingsStore} from '../settings/store.js';
import {randomMac} from '../stages/mac.js';
import {allStages} from '../stages/index.js';
import type {CheckResult, Plan, Prompt} from '../stages/types.js';
import {farmDir} from './context.js';

const refuse: Prompt = {
	confirm: async () => false,
	choose: async (_message, choices) => choices[0]!.value,
	typed: async () => false,
};

export type PlannedStage = {
	id: string;
	title: string;
	danger: string;
	check?: CheckResult;
	plan?: Plan;
	error?: string;
};

/**
 * Every stage's check and plan, without changing anything: the journal is
 * read but not written, commands are only the read-only ones the checks use.
 */
export async function planFarm(store: SettingsStore, farm: string): Promise<PlannedStage[]> {
	const settings = {...store.require(farm)};
	// Not saved: the MAC stage picks the real one when it runs.
	if (!settings.mac) settings.mac = randomMac();
	const journal = (await readJournal(farmDir(farm))) ?? newJournal(farm);
	const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-plan-'));
	try {
		const host = new Host({commandPath: settings.commandPath, backupDir: path.join(scratch, 'backups')});
		const writer = new JournalWriter(scratch, structuredClone(journal));
		const session = {journal: writer, host, currentStage: {id: ''}, emit: () => undefined};
		const planned: PlannedStage[] = [];
		for (const stage of allStages) {
			const context = stageContext(session, settings, stage, refuse, new AbortController().signal, scratch);
			context.record = async () => undefined;
			context.updateSettings = async () => undefined;
			const entry: PlannedStage = {id: stage.id, title: stage.title, danger: stage.danger};
			try {
				entry.check = await stage.check(context);
				entry.plan = await stage.plan(context);
			} catch (error) {
				entry.error = error instanceof Error ? error.message : String(error);
			}

			planned.push(entry);
		}

		return planned;
	} finally {
		await fs.rm(scratch, {recursive: true, force: true});
	}
}

export function formatPlan(planned: PlannedStage[]): string {
	const lines: string[] = [];
	for (const [index, stage] of planned.entries()) {
		const danger = stage.danger === 'typed' ? '  [typed confirmation]' : stage.danger === 'confirm' ? '  [asks]' : '';
		lines.push(`${index + 1}. ${stage.title}${danger}`);
		if (stage.check) lines.push(`   now: ${stage.check.status}: ${stage.check.detail}`);
		if (stage.error) lines.push(`   cannot plan yet: ${stage.error}`);
		for (const command of stage.plan?.commands ?? []) lines.push(`   $ ${command.join(' ')}`);
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
