import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {ganetiPatience, instanceVolumes, jobNotStarted, nodeUnreachable, runGanetiJob} from '../source/host/ganeti.js';
import {Host} from '../source/host/host.js';

test("Ganeti's words for a node it could not reach, as a loaded real host printed them, and nothing else", () => {
	// gnt-instance modify --runtime-memory on the real farm host in the QEMU guest (issue 10).
	const real =
		'Failure: prerequisites not met for this operation:\nError checking node host01.farm: Error 28: SSL connection timeout\n';
	assert.equal(nodeUnreachable(real), 'Error checking node host01.farm: Error 28: SSL connection timeout');
	for (const other of [
		"Failure: prerequisites not met for this operation:\nerror type: already_exists, error details:\nInstance 'x' is already in the cluster",
		'Failure: prerequisites not met for this operation:\nerror type: resolver_error, error details:\nThe given name (x) does not resolve: Name or service not known',
		"Failure: command execution error:\nCould not start instance 'x': Hypervisor error",
	]) {
		assert.equal(nodeUnreachable(other), undefined, other);
	}
});

// gnt-instance info --static --all in farmclone's preflight on the real farm host in the QEMU guest, under load
// (issue 10): Ganeti's forked job process did not answer its master in time, so the job never ran.
const jobNotStartedOutput =
	'Failure: command execution error:\n      job 6 failed to start: GenericError "[start:job-6,pid=1907] Getting the lockfile of the client: user error (Timeout in reading a response)"\n';

test('a Ganeti job that never started, as the loaded real host printed it, and nothing else', () => {
	assert.equal(
		jobNotStarted(jobNotStartedOutput),
		'job 6 failed to start: GenericError "[start:job-6,pid=1907] Getting the lockfile of the client: user error (Timeout in reading a response)"',
	);
	assert.equal(
		jobNotStarted("Failure: command execution error:\nCould not start instance 'x': Hypervisor error"),
		undefined,
	);
	assert.equal(
		jobNotStarted('Failure: prerequisites not met for this operation:\nError 28: SSL connection timeout'),
		undefined,
	);
});

/**
 * A Host whose gnt-instance fails `failures` times as the loaded real host did, then prints `stdout`;
 * every call's argv is appended to calls.log.
 */
async function ganetiFailingFirst(
	t: {after: (fn: () => Promise<void>) => void},
	failures: number,
	stdout: string,
): Promise<{host: Host; calls: () => Promise<string[]>}> {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-ganeti-'));
	t.after(async () => fs.rm(dir, {recursive: true, force: true}));
	await fs.writeFile(path.join(dir, 'failure.txt'), jobNotStartedOutput);
	await fs.writeFile(path.join(dir, 'answer.txt'), stdout);
	const script = `#!/bin/sh
dir='${dir}'
echo "$*" >> "$dir/calls.log"
if [ "$(wc -l < "$dir/calls.log")" -le ${failures} ]; then cat "$dir/failure.txt" >&2; exit 1; fi
cat "$dir/answer.txt"
`;
	await fs.writeFile(path.join(dir, 'gnt-instance'), script, {mode: 0o755});
	const host = new Host({commandPath: [dir], backupDir: path.join(dir, 'backups')});
	const calls = async () => (await fs.readFile(path.join(dir, 'calls.log'), 'utf8')).trim().split('\n');
	return {host, calls};
}

test('a query whose job did not start is asked again, and read once it answers', async (t) => {
	ganetiPatience.pauseMs = 0;
	const info = await fs.readFile('test/fixtures/real/before.gnt-instance-info-static-all.out', 'utf8');
	const {host, calls} = await ganetiFailingFirst(t, 2, info);
	const volumes = await instanceVolumes(host);
	assert.deepEqual([...volumes.keys()], ['gallifrey.xivo.vm.farm']);
	assert.equal((await calls()).length, 3, 'two failed tries, then the answer');
});

test('a job that did not start is tried again even when it changes things (add, remove): nothing of it ran', async (t) => {
	ganetiPatience.pauseMs = 0;
	const {host, calls} = await ganetiFailingFirst(t, 1, '');
	const logged: string[] = [];
	await runGanetiJob(host, ['gnt-instance', 'remove', '-f', 'x.farm'], (line) => logged.push(line), {
		onlyUnchanged: true,
	});
	assert.equal((await calls()).length, 2);
	assert.match(
		logged.join('\n'),
		/gnt-instance remove: its job did not start in time: job 6 failed to start.*nothing was changed/,
	);
});

test('a job that keeps not starting ends with why, never as a success', async (t) => {
	ganetiPatience.pauseMs = 0;
	const {host} = await ganetiFailingFirst(t, 100, '');
	await assert.rejects(
		runGanetiJob(host, ['gnt-instance', 'start', 'x.farm'], () => undefined),
		/gnt-instance start failed 6 times because the job did not start in time: job 6 failed to start/,
	);
});
