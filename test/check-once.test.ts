/**
 * Host.runCheck: a checker (shorewall check, 40-65 s on a slow host, asked by
 * the preflight, the firewall-rule apply and verify, and the firewall restart)
 * runs once per content of its directory in a process; new content is always
 * checked, and a refusal is never remembered.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {Host, readOnlyHost, type CommandRecord} from '../source/host/host.js';

async function setup(t: {after: (fn: () => Promise<void>) => void}) {
	const base = await fs.mkdtemp(path.join(os.tmpdir(), 'check-once-'));
	t.after(async () => fs.rm(base, {recursive: true, force: true}));
	const dir = path.join(base, 'shorewall');
	await fs.mkdir(dir);
	await fs.writeFile(path.join(dir, 'rules'), 'DNAT net loc:10.0.0.5:22 tcp 22005\n');
	await fs.writeFile(path.join(dir, 'params'), 'VM=10.0.0.5\n');
	// A checker that counts its runs and refuses any file holding BAD.
	const checker = path.join(base, 'fake-check');
	const runs = path.join(base, 'runs');
	await fs.writeFile(
		checker,
		`#!/bin/sh\necho run >> ${runs}\nif grep -rq BAD "$1"; then echo "ERROR: BAD in $1"; exit 1; fi\necho "configuration verified"\n`,
		{mode: 0o755},
	);
	const commands: CommandRecord[] = [];
	const host = new Host({backupDir: path.join(base, 'backups'), onCommand: (record) => commands.push(record)});
	const count = async () => (await fs.readFile(runs, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
	return {dir, argv: [checker, dir], host, count, commands};
}

test('the same content is checked once; the repeated verdict says so in the command log', async (t) => {
	const {dir, argv, host, count, commands} = await setup(t);
	const first = await host.runCheck(argv, dir);
	const again = await readOnlyHost(host).runCheck(argv, dir);
	assert.equal(await count(), 1, 'the checker ran once for the same files');
	assert.equal(again.stdout, first.stdout);
	assert.match(again.stdout, /configuration verified/);
	assert.equal(commands.length, 2, 'both checks are in the command log');
	assert.match(commands[1]!.stdout, /accepted these same files .* earlier in this run: not run again/);
});

test('changed bytes, a new file or a changed mode are checked again', async (t) => {
	const {dir, argv, host, count} = await setup(t);
	await host.runCheck(argv, dir);
	await fs.appendFile(path.join(dir, 'rules'), '# edited\n');
	await host.runCheck(argv, dir);
	assert.equal(await count(), 2);
	await fs.writeFile(path.join(dir, 'interfaces'), 'net eth0\n');
	await host.runCheck(argv, dir);
	assert.equal(await count(), 3);
	await fs.chmod(path.join(dir, 'interfaces'), 0o600);
	await host.runCheck(argv, dir);
	assert.equal(await count(), 4);
	await host.runCheck([...argv, '--other'], dir);
	assert.equal(await count(), 5, 'another argv is another check');
});

test('a refusal is not remembered: the same refused content is checked again and refused again', async (t) => {
	const {dir, argv, host, count} = await setup(t);
	await fs.writeFile(path.join(dir, 'rules'), 'BAD\n');
	const refused = await host.runCheck(argv, dir, {reject: false});
	assert.equal(refused.exitCode, 1);
	await assert.rejects(host.runCheck(argv, dir), /exited 1/);
	assert.equal(await count(), 2);
});

test('each process (each Host) checks for itself', async (t) => {
	const {dir, argv, host, count} = await setup(t);
	await host.runCheck(argv, dir);
	await new Host({backupDir: '/nonexistent'}).runCheck(argv, dir);
	assert.equal(await count(), 2);
});
