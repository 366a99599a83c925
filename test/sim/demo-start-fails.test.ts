import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {createSimFarm, SimStartError} from '../../source/sim/farm.js';
import {namespaceExists} from '../../source/sim/netns.js';
import {readServicesState, startSimServices, stopSimServices} from '../../source/sim/services.js';

test('a demo start that fails midway stops the daemons and the namespace it started, and says so', async (t) => {
	const root = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-start-fails-'));
	t.after(async () => {
		await stopSimServices(root).catch(() => undefined);
		await fs.rm(root, {recursive: true, force: true});
	});
	let namespace = '';
	let pids: number[] = [];
	await assert.rejects(
		createSimFarm({
			root,
			sourceSize: 16 * 1024 * 1024,
			// The daemons and the firewall are up, then a later start step fails.
			async startServices(at) {
				const state = await startSimServices(at);
				namespace = state.namespace;
				pids = Object.values(state.pids).filter((pid): pid is number => typeof pid === 'number');
				throw new Error('the source VM did not start');
			},
		}),
		(error: unknown) => {
			assert.ok(error instanceof SimStartError, String(error));
			assert.match(error.message, /did not start: the source VM did not start/);
			assert.match(error.message, /is stopped; the tree stays in /);
			return true;
		},
	);
	assert.ok(namespace, 'the services had started');
	assert.equal(pids.length, 3, 'named, dhcpd and nginx had started');
	assert.equal(await namespaceExists(namespace), false, 'its namespace is gone');
	for (const pid of pids) assert.throws(() => process.kill(pid, 0), `daemon ${pid} is stopped`);
	assert.deepEqual((await readServicesState(root))?.pids, {}, 'the services state says nothing runs');
});
