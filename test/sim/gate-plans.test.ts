import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import {test} from 'node:test';
import {defaultSettings} from '../../source/settings/schema.js';
import {makeFarm, MiB} from '../kit/farm.js';
import {
	captureGatePlans,
	gatePlansFixture,
	normalizeGatePlans,
	readGatePlans,
	type GatePlan,
} from '../kit/gate-plans.js';

/** What the screen's tests rely on in each plan: which stage, which commands, which files. */
function shape(gates: GatePlan[]) {
	return gates.map(({stage, plan}) => ({
		stage,
		commands: plan.commands.map((argv) => argv[0]),
		files: plan.diffs.map((diff) => diff.path),
		notes: plan.notes.length,
	}));
}

/**
 * The gates of a whole run on the simulated farm, identity on as by default:
 * the plans test/components.test.tsx shows at 80x24 are these (the fixture is
 * rewritten with FARMCLONE_UPDATE_FIXTURES=1).
 */
test('the fixture of the gates holds the plans a real run shows', {timeout: 300_000}, async (t) => {
	const farm = await makeFarm(t, {size: 32 * MiB});
	const defaults = defaultSettings(farm.settings.name);
	const settings = {
		...farm.settings,
		identityHostname: defaults.identityHostname,
		identitySshKeys: defaults.identitySshKeys,
		identityMachineId: defaults.identityMachineId,
		identityPersistentNet: defaults.identityPersistentNet,
		identityDhcpLeases: defaults.identityDhcpLeases,
		identityGitRevision: defaults.identityGitRevision,
		// The kit fixes the MAC for its comparisons; here the MAC stage picks it, as on a new farm.
		mac: defaults.mac,
	};
	const captured = normalizeGatePlans(await captureGatePlans(settings, farm.stateDir), [
		[farm.stateDir, '/var/lib/farmclone/gallifrey-dev'],
		[farm.root, ''],
	]);
	assert.equal(captured.length, 15, 'every stage has a gate on a fresh farm');
	if (process.env['FARMCLONE_UPDATE_FIXTURES'] === '1') {
		await fs.writeFile(gatePlansFixture, `${JSON.stringify(captured, null, '\t')}\n`);
	}

	assert.deepEqual(shape(await readGatePlans()), shape(captured));
});
