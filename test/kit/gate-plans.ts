/**
 * The plans a run shows at its gates, as data: captured from a real run on
 * the simulated farm (test/sim/gate-plans.test.ts writes them to
 * test/fixtures/gate-plans.json), read back by the screen's tests.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import {runEngine} from '../../source/engine/engine.js';
import type {FarmSettings} from '../../source/settings/schema.js';
import {allStages} from '../../source/stages/index.js';
import type {CheckResult, Plan} from '../../source/stages/types.js';
import {askWith, yesPrompt} from './stage.js';

export type GatePlan = {stage: string; plan: Plan; check: CheckResult};

export const gatePlansFixture = path.resolve('test/fixtures/gate-plans.json');

/** Every gate of a whole run on `settings`, in order; the firewall is kept without proof (no second SSH session here). */
export async function captureGatePlans(settings: FarmSettings, stateDir: string): Promise<GatePlan[]> {
	const gates: GatePlan[] = [];
	const failures: string[] = [];
	const outcome = await runEngine({
		settings,
		stages: [...allStages],
		ask: askWith(
			async ({stage, plan, check}) => {
				gates.push({stage: stage.id, plan: structuredClone(plan), check});
				return 'run';
			},
			{...yesPrompt, firewallWait: async () => 'keep-without-proof'},
		),
		onEvent: (event) => {
			if (event.type === 'stage-failed') failures.push(`${event.stage}: ${event.error}`);
		},
		signal: new AbortController().signal,
		stateDir,
	});
	if (outcome !== 'done') throw new Error(`the run that captures the gates ended ${outcome}: ${failures.join('; ')}`);
	return gates;
}

/** The temp directories of one test run replaced by fixed ones, so that the fixture reads as a farm host. */
export function normalizeGatePlans(gates: GatePlan[], replace: Array<[string, string]>): GatePlan[] {
	let text = JSON.stringify(gates);
	for (const [from, to] of replace) text = text.replaceAll(from, to);
	return JSON.parse(text) as GatePlan[];
}

export async function readGatePlans(): Promise<GatePlan[]> {
	return JSON.parse(await fs.readFile(gatePlansFixture, 'utf8')) as GatePlan[];
}
