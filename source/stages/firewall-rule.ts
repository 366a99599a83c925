import path from 'node:path';
import {
	addShorewallEntries,
	inspectShorewall,
	readShorewallIncludes,
	removeShorewallEntries,
	ruleRequest,
	shorewallErrors,
} from '../host/shorewall-files.js';
import type {FarmSettings} from '../settings/schema.js';
import {
	assertPlanCanApply,
	assertUnchanged,
	changeDiffs,
	contentHash,
	fileEdits,
	runChecker,
	writeChecked,
	type Checker,
	type FileChange,
} from './checked-edit.js';
import {StageError, type Plan, type PreflightContext, type Stage, type LookContext} from './types.js';
import {checkerRefusal, refusedBy} from './preflight-kit.js';
import {awaitDecision, startGuardedRestart, type Guard, type GuardState} from './firewall-guard.js';
import {farmcloneCommand} from '../host/self.js';
import {stageState} from './state.js';
import {restartWatchdogStarted} from './firewall-restart.js';

/** The backups of params and rules, and the undo's own guarded restart. */
type FirewallRuleState = {paramsBackup: string; rulesBackup: string; undo: Partial<GuardState>};

const firewallRuleState = stageState<FirewallRuleState>('firewall-rule');

const undoGuard: Guard = {
	name: 'firewall-undo',
	state: {
		of: (context) => firewallRuleState.of(context).undo ?? {},
		save: async (context, patch) =>
			firewallRuleState.save(context, {undo: {...firewallRuleState.of(context).undo, ...patch}}),
	},
};
const undoSaved = (context: LookContext) => `farmclone-${context.settings.name}-undo`;

function checker(settings: FarmSettings): Checker {
	return {argv: ['shorewall', 'check', settings.shorewallDir], inputs: settings.shorewallDir, explain: shorewallErrors};
}

type Files = {paramsPath: string; rulesPath: string; params: string; rules: string};

async function readFiles(context: LookContext): Promise<Files> {
	const {shorewallDir} = context.settings;
	const paramsPath = path.join(shorewallDir, 'params');
	const rulesPath = path.join(shorewallDir, 'rules');
	const rules = await context.host.readFileIfExists(rulesPath);
	if (rules === undefined) throw new StageError(`${rulesPath} does not exist`, 'check the shorewallDir setting');
	// A missing params file is legal: Shorewall runs without one, and farmclone creates it.
	return {paramsPath, rulesPath, rules, params: (await context.host.readFileIfExists(paramsPath)) ?? ''};
}

function changes(files: Files, params: string, rules: string, paramsExisted: boolean): FileChange[] {
	return [
		{path: files.paramsPath, before: paramsExisted ? files.params : undefined, after: params},
		{path: files.rulesPath, before: files.rules, after: rules},
	];
}

/**
 * params and rules as they were before this stage: today's files without this
 * farm's marked lines. The firewall restart's watchdog puts these back when
 * the admin does not confirm the new firewall in time.
 */
export async function previousFirewallFiles(context: LookContext): Promise<Record<string, string>> {
	const files = await readFiles(context);
	const edit = removeShorewallEntries(files.params, files.rules, context.settings.name);
	return {[files.paramsPath]: edit.params, [files.rulesPath]: edit.rules};
}

/**
 * The firewall restart stage restarted Shorewall with the rule (whether it
 * was kept or rolled back since, a restart from the files without the rule
 * is the state before the run) and Shorewall is running.
 */
async function firewallMayHaveTheRule(context: LookContext): Promise<boolean> {
	if (!restartWatchdogStarted(context)) return false;
	const status = await context.host.run(['shorewall', 'status'], {reject: false, quiet: true});
	return status.exitCode === 0 && /Shorewall is running/i.test(status.stdout);
}

/** The param and the rule, computed once: apply writes exactly these files. */
async function planRule(context: LookContext): Promise<Plan> {
	const {settings} = context;
	const files = await readFiles(context);
	const paramsExisted = await context.host.exists(files.paramsPath);
	const notes = [`the firewall is not restarted here: the firewall restart stage does it with a safety net`];
	const included = await readShorewallIncludes(context.host, settings.shorewallDir, files.rules);
	const values = {
		paramsHash: contentHash(paramsExisted ? files.params : undefined),
		rulesHash: contentHash(files.rules),
	};
	try {
		const edit = addShorewallEntries(files.params, files.rules, ruleRequest(settings), included);
		const fileChanges = changes(files, edit.params, edit.rules, paramsExisted);
		return {
			commands: [checker(settings).argv],
			diffs: changeDiffs(fileChanges),
			notes: [...edit.notes, ...notes],
			edits: edit.added.length === 0 ? [] : fileEdits(fileChanges),
			values: {...values, added: edit.added.join('\n')},
		};
	} catch (error) {
		const why = (error as Error).message;
		return {commands: [], diffs: [], notes: [why, ...notes], values, refusal: why};
	}
}

/** Shorewall's files: shorewall check accepts them, our param is free, our port is forwarded nowhere else. */
export async function firewallPreflight(context: PreflightContext): Promise<void> {
	const {host, settings, add} = context;
	// Started before anything else: shorewall check compiles the whole firewall, the preflight's longest wait.
	const shorewall = checker(settings);
	const checked = checkerRefusal(host, shorewall.argv, shorewall.explain, shorewall.inputs);
	const rulesPath = path.join(settings.shorewallDir, 'rules');
	const rules = await host.readFileIfExists(rulesPath).catch(() => undefined);
	if (rules === undefined) {
		// Its refusal would only say the same of a directory that is not there.
		await checked.catch(() => undefined);
		add('shorewallDir', `${rulesPath} does not exist or cannot be read`);
		return;
	}

	const params = (await host.readFileIfExists(path.join(settings.shorewallDir, 'params')).catch(() => '')) ?? '';
	const refusal = await checked;
	if (refusal) add('shorewallDir', refusedBy('shorewall check', refusal));
	const included = await readShorewallIncludes(host, settings.shorewallDir, rules);
	const state = inspectShorewall(params, rules, ruleRequest(settings), included);
	for (const concern of state.concerns) add(concern.setting, concern.text);
}

firewallPreflight.slow = true;

export const firewallRuleStage: Stage = {
	id: 'firewall-rule',
	title: 'Firewall rule',
	summary: 'forward the external SSH port to the clone: a param and a DNAT rule for Shorewall, shorewall check',
	danger: 'confirm',
	skippable: true,
	preflight: [firewallPreflight],
	async check(context) {
		const {settings} = context;
		try {
			const files = await readFiles(context);
			const included = await readShorewallIncludes(context.host, settings.shorewallDir, files.rules);
			const state = inspectShorewall(files.params, files.rules, ruleRequest(settings), included);
			const notes = state.notes.map((note) => `\n${note}`).join('');
			if (state.conflicts.length > 0) return {status: 'conflict', detail: state.conflicts.join('\n') + notes};
			const what = `${settings.shorewallParam}=${settings.ip} and DNAT of port ${settings.sshPort}`;
			if (state.param !== 'absent' && state.rule !== 'absent') {
				const manual =
					state.param === 'manual' || state.rule === 'manual' ? ' (partly not by farmclone: undo leaves that)' : '';
				return {status: 'done', detail: `${what} are in ${settings.shorewallDir}${manual}${notes}`};
			}

			return {status: 'pending', detail: `${what} not yet in ${settings.shorewallDir}${notes}`};
		} catch (error) {
			return {status: 'conflict', detail: (error as Error).message};
		}
	},
	plan: planRule,
	async apply(context, approved) {
		const {settings} = context;
		const plan = approved ?? (await planRule(context));
		assertPlanCanApply(plan);
		const paramsPath = path.join(settings.shorewallDir, 'params');
		const rulesPath = path.join(settings.shorewallDir, 'rules');
		for (const note of plan.notes.slice(0, -1)) context.log(note);
		const edits = plan.edits ?? [];
		if (edits.length === 0) {
			await assertUnchanged(context, [
				{path: paramsPath, beforeHash: plan.values?.['paramsHash'] ?? ''},
				{path: rulesPath, beforeHash: plan.values?.['rulesHash'] ?? ''},
			]);
			context.log(`the param and the rule are already in ${settings.shorewallDir}`);
			return;
		}

		const backups = await writeChecked(context, edits, checker(settings), 'the new param and rule');
		await firewallRuleState.save(context, {
			paramsBackup: backups[paramsPath],
			rulesBackup: backups[rulesPath],
		});
		for (const line of (plan.values?.['added'] ?? '').split('\n').filter(Boolean)) context.log(`added: ${line}`);
	},
	async verify(context) {
		const {settings} = context;
		const files = await readFiles(context);
		const state = inspectShorewall(files.params, files.rules, ruleRequest(settings));
		if (state.param === 'absent') throw new StageError(`${settings.shorewallParam} is not set in ${files.paramsPath}`);
		if (state.rule === 'absent') throw new StageError(`no DNAT of port ${settings.sshPort} in ${files.rulesPath}`);
		const problem = await runChecker(context, checker(settings));
		if (problem) throw new StageError(`shorewall check refuses ${settings.shorewallDir}:\n${problem}`);
	},
	async undo(context) {
		const {settings} = context;
		const files = await readFiles(context);
		const edit = removeShorewallEntries(files.params, files.rules, settings.name);
		if (edit.removed.length === 0) {
			context.log(`nothing of ${settings.name} in ${settings.shorewallDir}`);
			return;
		}

		await writeChecked(
			context,
			changes(files, edit.params, edit.rules, true),
			checker(settings),
			'the files without the rule',
		);
		for (const line of edit.removed) context.log(`removed: ${line}`);
		if (!(await firewallMayHaveTheRule(context))) {
			context.log('the running firewall never had the rule: not restarted');
			return;
		}

		// Checked by writeChecked just above: shorewall compiled the files without the rule.
		// The same dead-man as the firewall restart: unless proven, the rule and the firewall with it come back.
		await context.host.run(['shorewall', 'save', undoSaved(context)]);
		const live = await startGuardedRestart(context, undoGuard, {
			restore: [['shorewall', 'restore', undoSaved(context)]],
			previous: {[files.paramsPath]: files.params, [files.rulesPath]: files.rules},
		});
		await awaitDecision(context, undoGuard, live);
		const status = await context.host.run(['shorewall', 'status'], {reject: false});
		if (status.exitCode !== 0 || !/Shorewall is running/i.test(status.stdout)) {
			throw new StageError(
				`Shorewall is not running after the restart without the rule`,
				'shorewall status; shorewall restart',
			);
		}

		context.log('firewall restarted without the rule');
	},
	async undoPlan(context) {
		const {settings} = context;
		const files = await readFiles(context);
		const edit = removeShorewallEntries(files.params, files.rules, settings.name);
		const restart = await firewallMayHaveTheRule(context);
		return {
			commands:
				edit.removed.length > 0
					? [
							checker(settings).argv,
							...(restart
								? [
										['shorewall', 'save', undoSaved(context)],
										['shorewall', 'restart', settings.shorewallDir],
									]
								: []),
						]
					: [],
			diffs: changeDiffs(changes(files, edit.params, edit.rules, true)),
			notes: [
				restart
					? `the firewall is restarted without the rule, with the same watchdog as the firewall restart: unless a NEW ssh connection runs ${farmcloneCommand(['confirm', settings.name])} within ${settings.firewallTimeout} s (or you type "keep without proof"; a headless undo keeps it without proof), the rule and the previous firewall come back`
					: 'the running firewall never had the rule',
			],
		};
	},
};
