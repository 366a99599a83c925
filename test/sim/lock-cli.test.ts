import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {isAlive} from '../../source/host/copy.js';
import {execa} from 'execa';
import {cli, heldCopy, makeFarm, runArgs, startCli} from '../kit/farm.js';

/**
 * One session per farm, through the real CLI: a second `farmclone run` on a
 * farm in use exits 2 and names the owner's pid and since when; once the
 * owner is dead its lock is taken over, and the dd it left copying (which
 * never holds the lock) is not taken for a live session.
 */
test(
	'a second run on a farm in use exits 2 with the owner; a dead owner is taken over',
	{timeout: 240_000},
	async (t) => {
		const farm = await makeFarm(t, {holdCopy: true});
		const lockFile = path.join(farm.stateDir, 'lock');
		const owner = startCli(farm, await runArgs());
		t.after(() => {
			owner.child.kill('SIGKILL');
		});
		// dd holds itself at its start (holdCopy) until the test lets it go: however fast the disk, the copy is
		// still under way when the test looks, and the owner is held still too, as a session waiting at a prompt.
		const dd = await heldCopy(farm);
		owner.child.kill('SIGSTOP');
		const pid = owner.child.pid!;

		for (const command of ['run', 'undo'] as const) {
			const second = await startCli(farm, await runArgs(command)).done;
			assert.equal(second.exitCode, 2, `${command}: ${second.stderr}`);
			assert.match(
				second.stderr,
				new RegExp(`pid ${pid} on ${os.hostname()}, since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(\\d+ s ago\\)`),
			);
			assert.match(second.stderr, /farmclone run gallifrey-dev/);
		}

		const status = await startCli(farm, ['status', farm.settings.name]).done;
		assert.match(status.stdout, new RegExp(`in use by pid ${pid}`));

		// The owner dies without releasing its lock; its dd copies on, detached.
		owner.child.kill('SIGKILL');
		await owner.done;
		assert.equal(JSON.parse(await fs.readFile(lockFile, 'utf8')).pid, pid, 'the dead owner left its lock');
		assert.equal(await isAlive(dd), true, 'dd outlives its session');
		const left = await startCli(farm, ['status', farm.settings.name]).done;
		assert.doesNotMatch(left.stdout, /in use by/);
		assert.match(left.stdout, new RegExp(`left by pid ${pid} .*which no longer runs`));
		const statusJson = await execa(process.execPath, [cli, 'status', farm.settings.name, '--json'], {env: farm.env});
		assert.equal(JSON.parse(statusJson.stdout).lock.held, false);

		const next = startCli(farm, await runArgs(), (event) => {
			if (event.type === 'log' && /reattaching/.test(event.text ?? '')) process.kill(dd.pid, 'SIGCONT');
		});
		const result = await next.done;
		assert.equal(result.exitCode, 0, `${result.stderr}\n${result.stdout.split('\n').slice(-8).join('\n')}`);
		assert.ok(
			result.events.some((event) => event.text?.includes(`reattaching to the copy still running as pid ${dd.pid}`)),
		);
		await assert.rejects(fs.access(lockFile), 'the lock is released at the end');
	},
);

test(
	'a lock naming a live process that is not its owner (the pid was reused) is taken over',
	{timeout: 120_000},
	async (t) => {
		const farm = await makeFarm(t);
		await fs.mkdir(farm.stateDir, {recursive: true});
		// This very process is alive, but with another start time it is not the one that took the lock.
		const stale = {
			pid: process.pid,
			host: os.hostname(),
			since: new Date(0).toISOString(),
			startTime: '1',
			command: 'farmclone run',
		};
		await fs.writeFile(path.join(farm.stateDir, 'lock'), JSON.stringify(stale));
		const result = await startCli(farm, await runArgs('undo')).done;
		assert.equal(result.exitCode, 0, result.stderr);
		assert.match(result.stdout, /nothing to undo/);
	},
);
