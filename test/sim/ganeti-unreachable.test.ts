/**
 * A Ganeti node that does not answer in time, as a loaded real host showed:
 * `gnt-instance modify --runtime-memory` failed with "Failure: prerequisites
 * not met for this operation:\nError checking node host01.farm: Error 28: SSL
 * connection timeout", and `gnt-instance list` showed ERROR_nodedown with `?`
 * for memory. The stand-in is told to do the same a counted number of times
 * (ganeti-unreachable.json); the stages wait and try again, saying so, and
 * never read it as "not running" nor as success.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import {test} from 'node:test';
import {execa} from 'execa';
import {findInstance, ganetiPatience, GanetiUnreachableError, toMebibytes} from '../../source/host/ganeti.js';
import {fqdn} from '../../source/settings/schema.js';
import {ganetiFiles} from '../../source/sim/ganeti-state.js';
import {balloonStage} from '../../source/stages/balloon.js';
import {dnsRecordStage} from '../../source/stages/dns-record.js';
import {reloadServicesStage} from '../../source/stages/reload-services.js';
import {ganetiInstanceStage} from '../../source/stages/ganeti-instance.js';
import {startVmStage} from '../../source/stages/start-vm.js';
import {makeFarm} from '../kit/farm.js';
import {stageContext} from '../kit/stage.js';

const needsRoot = process.getuid?.() === 0 ? false : 'the simulated farm needs root (network namespaces)';

test(
	'an unreachable node: jobs are tried again, ERROR_nodedown is waited out, and giving up says why',
	{skip: needsRoot, timeout: 300_000},
	async (t) => {
		// The pause between tries is the only timing here; the number of tries is what is counted.
		ganetiPatience.pauseMs = 50;
		const farm = await makeFarm(t, {size: 8 * 1024 * 1024});
		const {settings} = farm;
		const unreachable = async (counts: {jobs?: number; lists?: number}) =>
			fs.writeFile(ganetiFiles(farm.root).unreachableFile, JSON.stringify(counts));
		const left = async () => JSON.parse(await fs.readFile(ganetiFiles(farm.root).unreachableFile, 'utf8')) as object;
		const lvcreate = await execa(
			path.join(farm.root, 'bin', 'lvcreate'),
			['--size', '8M', '--name', settings.targetLv, settings.vg],
			{reject: false, env: {LC_ALL: 'C'}},
		);
		assert.equal(lvcreate.exitCode, 0, lvcreate.stderr);
		const {context, states, logs} = stageContext(settings, path.join(farm.dir, 'state'));
		const name = fqdn(settings);
		// Ganeti adds only a name that resolves: the clone's A record, served.
		await dnsRecordStage.apply(context);
		await reloadServicesStage.apply(context);

		await unreachable({jobs: 2});
		await ganetiInstanceStage.apply(context);
		assert.equal(states['ganeti-instance']?.['created'], true);
		const retries = logs.filter((line) => /^gnt-instance add: Ganeti could not reach its node/.test(line));
		assert.equal(retries.length, 2, logs.join('\n'));
		assert.match(retries[0]!, /Error 28: SSL connection timeout, nothing was changed; trying again in \d+ s/);
		assert.deepEqual(await left(), {jobs: 0});

		logs.length = 0;
		await unreachable({lists: 2});
		const stopped = await startVmStage.check(context);
		assert.equal(stopped.status, 'pending', 'a stopped instance, once the node answers: not a conflict');
		assert.match(stopped.detail, /ADMIN_down/);
		assert.equal(logs.filter((line) => /shows .* as ERROR_nodedown: .* its state is unknown/.test(line)).length, 2);

		await unreachable({jobs: 1, lists: 1});
		await startVmStage.apply(context);
		await startVmStage.verify(context);
		assert.deepEqual(await left(), {jobs: 0, lists: 0});

		logs.length = 0;
		await unreachable({jobs: 2, lists: 1});
		assert.equal((await balloonStage.check(context)).status, 'pending', 'running, so it can be ballooned');
		await balloonStage.apply(context);
		assert.equal(states['balloon']?.['requested'], toMebibytes(settings.balloonMemory));
		assert.equal(logs.filter((line) => /^gnt-instance modify: Ganeti could not reach/.test(line)).length, 2);

		// A node that stays silent: the stage fails, naming why, and records nothing as done.
		delete states['balloon'];
		await unreachable({jobs: ganetiPatience.jobAttempts});
		await assert.rejects(balloonStage.apply(context), (error: unknown) => {
			assert.ok(error instanceof GanetiUnreachableError);
			assert.match(error.message, /gnt-instance modify failed 6 times .*Error 28: SSL connection timeout/);
			assert.match(error.message, /gnt-cluster verify/);
			return true;
		});
		assert.equal(states['balloon']?.['requested'], undefined);

		const listAttempts = ganetiPatience.listAttempts;
		ganetiPatience.listAttempts = 3;
		t.after(() => (ganetiPatience.listAttempts = listAttempts));
		await unreachable({lists: 3});
		await assert.rejects(
			startVmStage.check(context),
			new RegExp(
				`still shows ${name.replaceAll('.', '\\.')} as ERROR_nodedown after 3 tries: .*whether .* runs is unknown`,
			),
		);

		await unreachable({jobs: 1, lists: 1});
		await startVmStage.undo(context);
		await unreachable({jobs: 1});
		await ganetiInstanceStage.undo(context);
		assert.equal(await findInstance(context.host, name), undefined);
	},
);
