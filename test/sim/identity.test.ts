import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import {test, type TestContext} from 'node:test';
import {execa} from 'execa';
import {sshFingerprint} from '../../source/host/guest-identity.js';
import {Host} from '../../source/host/host.js';
import {listMounts, loopsBackedBy, readPartitionTable} from '../../source/host/image.js';
import {getLv} from '../../source/host/lvm.js';
import {defaultSettings, type FarmSettings} from '../../source/settings/schema.js';
import {fileSha256, simRoot} from '../../source/sim/disk.js';
import {buildSimTree} from '../../source/sim/tree.js';
import {copyStage} from '../../source/stages/copy.js';
import {createVolumeStage} from '../../source/stages/create-volume.js';
import {dropSnapshotStage} from '../../source/stages/drop-snapshot.js';
import {identityStage} from '../../source/stages/identity.js';
import {snapshotStage} from '../../source/stages/snapshot.js';
import {StageError, type StageStates, type StageContext} from '../../source/stages/types.js';

const MiB = 1024 * 1024;
const sbin = `${process.env['PATH'] ?? '/usr/bin:/bin'}:/usr/local/sbin:/usr/sbin:/sbin`;
const isRoot = process.getuid?.() === 0;

type Farm = {
	context: StageContext;
	states: StageStates;
	settings: FarmSettings;
	logs: string[];
	base: string;
	stateDir: string;
	/** Replaced to react to what the stage records. */
	onRecord: (stage: string, patch: Record<string, unknown>) => void;
	/** A fresh abort signal for the next call. */
	resetSignal(): AbortController;
	lvPath(name: string): Promise<string>;
};

/** A simulated farm on disk (O_DIRECT needs a real filesystem), its source volume the sim's Debian-like root. */
async function farm(t: TestContext, overrides: Partial<FarmSettings> = {}): Promise<Farm> {
	const base = await fs.mkdtemp(path.join('/var/tmp', 'farmclone-identity-'));
	const tree = await buildSimTree({root: path.join(base, 'farm'), sourceSize: 16 * MiB});
	const settings = defaultSettings('gallifrey-dev', {...tree.settings, ...overrides});
	const host = new Host({commandPath: settings.commandPath, backupDir: path.join(base, 'backups')});
	const stateDir = path.join(base, 'state');
	await fs.mkdir(stateDir);
	const states: StageStates = {};
	let controller = new AbortController();
	const result: Farm = {
		states,
		settings,
		logs: [],
		base,
		stateDir,
		onRecord() {},
		resetSignal() {
			controller = new AbortController();
			result.context.signal = controller.signal;
			return controller;
		},
		async lvPath(name) {
			const lv = await getLv(host, settings.vg, name);
			assert.ok(lv, `${settings.vg}/${name}`);
			return lv.path;
		},
		context: {
			settings,
			host,
			states,
			async saveState(stage, patch) {
				states[stage] = {...states[stage], ...patch};
				result.onRecord(stage, patch);
			},
			async updateSettings(patch) {
				Object.assign(settings, patch);
			},
			stateDir,
			log: (text) => void result.logs.push(text),
			progress() {},
			prompt: {
				confirm: async () => true,
				choose: async (_message, choices) => choices[0]!.value,
				typed: async () => true,
			},
			signal: controller.signal,
		},
	};
	t.after(async () => {
		await assertNothingLeft(result).catch(() => undefined);
		await fs.rm(base, {recursive: true, force: true});
	});
	return result;
}

/** No loop device on any file of this farm, nothing mounted under it. */
async function assertNothingLeft(farm: Farm): Promise<void> {
	const {stdout} = await execa('losetup', ['-J', '-l', '-O', 'NAME,BACK-FILE'], {env: {PATH: sbin}});
	const loops = stdout.trim()
		? (JSON.parse(stdout) as {loopdevices: Array<{name: string; 'back-file': string}>})
		: undefined;
	const ours = (loops?.loopdevices ?? []).filter((loop) => loop['back-file'].startsWith(farm.base));
	for (const loop of ours) await execa('losetup', ['--detach', loop.name], {env: {PATH: sbin}, reject: false});
	const mounts = (await listMounts(farm.context.host)).filter((entry) => entry.mountpoint.startsWith(farm.base));
	for (const mount of mounts) await execa('umount', [mount.mountpoint], {env: {PATH: sbin}, reject: false});
	assert.deepEqual(
		ours.map((loop) => loop.name),
		[],
		'loop devices left on the farm',
	);
	assert.deepEqual(
		mounts.map((entry) => entry.mountpoint),
		[],
		'mounts left under the farm',
	);
}

/** Snapshot, target volume, copy (verified byte for byte), snapshot dropped: where the identity stage starts. */
async function copied(farm: Farm): Promise<void> {
	for (const stage of [snapshotStage, createVolumeStage, copyStage, dropSnapshotStage]) {
		await stage.apply(farm.context);
		await stage.verify(farm.context);
	}
}

/** A file of the root filesystem on a partitioned volume, read with debugfs (no mount); undefined when missing. */
async function guestFile(device: string, file: string): Promise<string | undefined> {
	const table = await readPartitionTable(new Host({backupDir: '/nonexistent'}), device);
	const offset = table?.partitions[0]?.offset ?? 0;
	const spec = `${device}?offset=${offset}`;
	const stat = await execa('debugfs', ['-R', `stat ${file}`, spec], {env: {PATH: sbin}, reject: false});
	if (/File not found/.test(stat.stderr)) return undefined;
	const {stdout} = await execa('debugfs', ['-R', `cat ${file}`, spec], {env: {PATH: sbin}, stripFinalNewline: false});
	return stdout;
}

async function guestList(device: string, dir: string): Promise<string[]> {
	const table = await readPartitionTable(new Host({backupDir: '/nonexistent'}), device);
	const spec = `${device}?offset=${table?.partitions[0]?.offset ?? 0}`;
	const {stdout} = await execa('debugfs', ['-R', `ls -p ${dir}`, spec], {env: {PATH: sbin}});
	// -p: /inode/mode/uid/gid/name/size/
	return stdout
		.split('\n')
		.map((line) => line.split('/'))
		.filter((fields) => fields.length >= 6 && fields[5] !== '.' && fields[5] !== '..')
		.map((fields) => `${fields[5]} ${fields[2]!.slice(-3)}`)
		.sort();
}

const isPublicKey = (text: string | undefined) => /^(ssh-\w+|ecdsa-sha2-nistp\d+) AAAA/.test(text ?? '');
const keyNames = ['rsa', 'ecdsa', 'ed25519'].map((type) => `ssh_host_${type}_key`);

test(
	'the clone becomes its own machine; the source volume is untouched',
	{skip: !isRoot && 'needs root'},
	async (t) => {
		const f = await farm(t);
		await copied(f);
		const source = await f.lvPath(f.settings.sourceLv);
		const target = await f.lvPath(f.settings.targetLv);
		const sourceSha = await fileSha256(source);
		const sourceKeys = await Promise.all(keyNames.map(async (name) => guestFile(source, `/etc/ssh/${name}.pub`)));
		assert.ok(
			sourceKeys.every((key) => isPublicKey(key)),
			'the source has host keys',
		);
		const sourceConf = (await guestFile(source, '/etc/packaging-farm/packaging-farm.conf'))!;
		const sourceHosts = (await guestFile(source, '/etc/hosts'))!;

		// check and plan look read-only: the copy stays byte-identical to the source.
		assert.equal((await identityStage.check(f.context)).status, 'pending');
		const plan = await identityStage.plan(f.context);
		assert.equal(await fileSha256(target), sourceSha, 'check and plan wrote nothing');
		const diff = (suffix: string) => plan.diffs.find((entry) => entry.path.endsWith(suffix))?.diff ?? '';
		assert.match(diff(':/etc/hostname'), new RegExp(`^-${simRoot.hostname}$[\\s\\S]*^\\+gallifrey-dev$`, 'm'));
		// Removed files, a line each; the host keys in two lines; files written alike share one diff.
		assert.match(
			diff(': removed'),
			/^-\/etc\/udev\/rules\.d\/70-persistent-net\.rules \(persistent-net rules, \d+ lines?\)$/m,
		);
		assert.match(diff(': removed'), /^-\/var\/lib\/dhcp\/dhclient\.eth0\.leases \(DHCP leases, \d+ lines?\)$/m);
		assert.match(diff('/etc/ssh/ssh_host_*'), /^-ssh_host_\{.*rsa.*\}_key\{,\.pub\} .*removed/m);
		assert.match(
			diff('/etc/ssh/ssh_host_*'),
			/^\+ssh_host_\{rsa,ecdsa,ed25519\}_key\{,\.pub\} \(generated for gallifrey-dev\)$/m,
		);
		assert.equal(
			diff('/etc/ssh/ssh_host_*')
				.split('\n')
				.filter((line) => /^[+-][^+-]/.test(line)).length,
			2,
		);
		assert.match(diff(':/etc/packaging-farm/packaging-farm.conf'), /^-GIT_REVISION=2\.0\.7$\n^\+GIT_REVISION=master$/m);
		assert.ok(!plan.diffs.some((entry) => /BEGIN OPENSSH PRIVATE KEY/.test(entry.diff)), 'no key material in the plan');

		await identityStage.apply(f.context);
		await identityStage.verify(f.context);
		assert.equal((await identityStage.check(f.context)).status, 'done');

		assert.equal(await guestFile(target, '/etc/hostname'), 'gallifrey-dev\n');
		const hosts = (await guestFile(target, '/etc/hosts'))!;
		assert.match(hosts, /^127\.0\.1\.1\tgallifrey-dev\.xivo\.vm\.farm\tgallifrey-dev$/m);
		const others = (text: string) => text.split('\n').filter((line) => !line.startsWith('127.0.1.1'));
		assert.deepEqual(others(hosts), others(sourceHosts));

		const newKeys = await Promise.all(keyNames.map(async (name) => guestFile(target, `/etc/ssh/${name}.pub`)));
		for (const [index, key] of newKeys.entries()) {
			assert.ok(isPublicKey(key), `${keyNames[index]}.pub generated`);
			assert.notEqual(key, sourceKeys[index], `${keyNames[index]}.pub is not the copied one`);
			assert.match(key ?? '', / root@gallifrey-dev\n$/);
		}

		assert.deepEqual(
			[...(f.states['identity']?.['sshHostKeys'] as string[])].sort(),
			newKeys.map((key) => sshFingerprint(key!)).sort(),
		);
		const listing = await guestList(target, '/etc/ssh');
		for (const name of keyNames) {
			assert.ok(listing.includes(`${name} 600`), `${name} is 0600: ${listing.join(', ')}`);
			assert.ok(listing.includes(`${name}.pub 644`), `${name}.pub is 0644`);
		}

		assert.equal(await guestFile(target, '/etc/machine-id'), '');
		assert.equal(await guestFile(target, '/var/lib/dbus/machine-id'), '');
		assert.equal(await guestFile(target, '/etc/udev/rules.d/70-persistent-net.rules'), undefined);
		assert.equal(await guestFile(target, '/var/lib/dhcp/dhclient.eth0.leases'), undefined);
		assert.equal(
			await guestFile(target, '/etc/packaging-farm/packaging-farm.conf'),
			sourceConf.replace(/^GIT_REVISION=.*$/m, 'GIT_REVISION=master'),
		);
		assert.notEqual(sourceConf, sourceConf.replace(/^GIT_REVISION=.*$/m, 'GIT_REVISION=master'));

		assert.equal(await fileSha256(source), sourceSha, 'the source volume is byte-identical');
		assert.equal(await guestFile(source, '/etc/hostname'), `${simRoot.hostname}\n`);
		await assertNothingLeft(f);
		assert.equal(f.states['identity']?.['loop'], undefined);
	},
);

test('each change is a setting: turned off, it is left as copied', {skip: !isRoot && 'needs root'}, async (t) => {
	const f = await farm(t, {identitySshKeys: false, identityGitRevision: false, identityDhcpLeases: false});
	await copied(f);
	const source = await f.lvPath(f.settings.sourceLv);
	const target = await f.lvPath(f.settings.targetLv);
	await identityStage.apply(f.context);
	await identityStage.verify(f.context);
	for (const file of ['/etc/ssh/ssh_host_ed25519_key.pub', '/etc/packaging-farm/packaging-farm.conf']) {
		assert.equal(await guestFile(target, file), await guestFile(source, file), file);
	}

	assert.ok(await guestFile(target, '/var/lib/dhcp/dhclient.eth0.leases'));
	assert.equal(await guestFile(target, '/etc/hostname'), 'gallifrey-dev\n');
	assert.equal(await guestFile(target, '/etc/machine-id'), '');

	const off = await farm(t, {
		identityHostname: false,
		identitySshKeys: false,
		identityMachineId: false,
		identityPersistentNet: false,
		identityDhcpLeases: false,
		identityGitRevision: false,
	});
	assert.equal((await identityStage.check(off.context)).status, 'done');
});

test('a volume without an ext root filesystem: a clear message, and the stage can be skipped', async (t) => {
	const f = await farm(t);
	await copied(f);
	const target = await f.lvPath(f.settings.targetLv);
	// Partition 1 becomes swap: a table, but no ext filesystem in it.
	const table = await readPartitionTable(f.context.host, target);
	const partition = table!.partitions[0]!;
	const swap = path.join(f.base, 'swap');
	await fs.writeFile(swap, '');
	await fs.truncate(swap, partition.size);
	await execa('mkswap', [swap], {env: {PATH: sbin}});
	await execa('dd', [`if=${swap}`, `of=${target}`, 'bs=1M', `seek=${partition.offset / MiB}`, 'conv=notrunc']);
	assert.equal(identityStage.skippable, true);
	const check = await identityStage.check(f.context);
	assert.equal(check.status, 'pending');
	if (isRoot) {
		assert.match(check.detail, /partition 1: swap.*ext2\/3\/4/);
		const plan = await identityStage.plan(f.context);
		assert.match(plan.notes.join('\n'), /skip this stage/);
		await assert.rejects(identityStage.apply(f.context), (error: unknown) => {
			assert.ok(error instanceof StageError);
			assert.match(error.message, /dos partition table without an ext2\/3\/4 filesystem \(partition 1: swap\)/);
			assert.match(error.hint ?? '', /skip this stage/);
			return true;
		});
		// No partition table at all: random bytes over the whole volume.
		const handle = await fs.open(target, 'r+');
		await handle.write(Buffer.alloc(2 * MiB, 0x5a), 0, 2 * MiB, 0);
		await handle.close();
		assert.match((await identityStage.check(f.context)).detail, /no partition table, and no filesystem on it/);
	} else {
		assert.match(check.detail, /needs root/);
	}

	await assertNothingLeft(f);
});

test(
	'stopped while mounted (Ctrl+C, SIGHUP): unmounted at once, and a resumed run finishes',
	{skip: !isRoot && 'needs root'},
	async (t) => {
		const f = await farm(t);
		await copied(f);
		const target = await f.lvPath(f.settings.targetLv);
		const controller = f.resetSignal();
		let sawMount = false;
		f.onRecord = (_stage, patch) => {
			if (patch['mounted'] !== 'rw') return;
			sawMount = true;
			controller.abort();
		};
		await assert.rejects(identityStage.apply(f.context), /stopped/);
		assert.ok(sawMount);
		assert.deepEqual(await loopsBackedBy(f.context.host, target), []);
		await assertNothingLeft(f);
		assert.equal(await guestFile(target, '/etc/hostname'), `${simRoot.hostname}\n`, 'stopped before the first change');

		f.onRecord = () => undefined;
		f.resetSignal();
		assert.equal((await identityStage.check(f.context)).status, 'pending');
		await identityStage.apply(f.context);
		await identityStage.verify(f.context);
		assert.equal(await guestFile(target, '/etc/hostname'), 'gallifrey-dev\n');
		await assertNothingLeft(f);
	},
);

/** Runs the stage's apply in a child process that says MOUNTED once the clone is mounted read-write, then waits. */
const child = `
import fs from 'node:fs';
import {Host} from ${JSON.stringify(path.resolve('source/host/host.ts'))};
import {identityStage} from ${JSON.stringify(path.resolve('source/stages/identity.ts'))};
const {settings, stateDir, statesFile, backupDir} = JSON.parse(process.env.IDENTITY_CHILD);
const states = JSON.parse(fs.readFileSync(statesFile, 'utf8'));
const context = {
	settings, states, stateDir, host: new Host({commandPath: settings.commandPath, backupDir}),
	async saveState(stage, patch) {
		states[stage] = {...states[stage], ...patch};
		fs.writeFileSync(statesFile, JSON.stringify(states));
		if (patch.mounted === 'rw') {
			process.stdout.write('MOUNTED\\n');
			setInterval(() => undefined, 1000);
			await new Promise(() => undefined);
		}
	},
	async updateSettings() {}, log() {}, progress() {},
	prompt: {confirm: async () => true, choose: async (_m, c) => c[0].value, typed: async () => true},
	signal: new AbortController().signal,
};
await identityStage.apply(context);
`;

test(
	'killed outright while mounted (SIGKILL): the next run cleans the leftover mount and loop, then finishes',
	{skip: !isRoot && 'needs root', timeout: 120_000},
	async (t) => {
		const f = await farm(t);
		await copied(f);
		const target = await f.lvPath(f.settings.targetLv);
		const statesFile = path.join(f.base, 'states.json');
		await fs.writeFile(statesFile, JSON.stringify(f.states));
		const env = {
			...process.env,
			IDENTITY_CHILD: JSON.stringify({
				settings: f.settings,
				stateDir: f.stateDir,
				statesFile,
				backupDir: path.join(f.base, 'backups'),
			}),
		};
		const process_ = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', child], {
			env,
			stdio: ['ignore', 'pipe', 'pipe'],
		});
		t.after(() => process_.kill('SIGKILL'));
		let stderr = '';
		process_.stderr.on('data', (data: Buffer) => (stderr += String(data)));
		await new Promise<void>((resolve, reject) => {
			process_.stdout.on('data', (data: Buffer) => {
				if (String(data).includes('MOUNTED')) resolve();
			});
			process_.on('exit', (code) => reject(new Error(`the child exited ${code} before mounting: ${stderr}`)));
		});
		const exited = new Promise((resolve) => process_.on('exit', resolve));
		process_.kill('SIGKILL');
		await exited;

		Object.assign(f.states, JSON.parse(await fs.readFile(statesFile, 'utf8')) as StageStates);
		const mountpoint = f.states['identity']?.['mountpoint'];
		assert.equal(typeof mountpoint, 'string');
		assert.ok(
			(await listMounts(f.context.host)).some((entry) => entry.mountpoint === mountpoint),
			'left mounted',
		);
		assert.equal((await loopsBackedBy(f.context.host, target)).length, 1, 'a loop device left on the clone');

		// Looking reads the volume with debugfs and leaves the mount alone: it may be a live run's.
		const check = await identityStage.check(f.context);
		assert.equal(check.status, 'pending');
		await identityStage.plan(f.context);
		assert.ok(
			(await listMounts(f.context.host)).some((entry) => entry.mountpoint === mountpoint),
			'check and plan leave the mount',
		);
		assert.equal((await loopsBackedBy(f.context.host, target)).length, 1, 'and the loop device');
		// The run (apply, under the run's lock) cleans what the killed one left.
		await identityStage.apply(f.context);
		assert.ok(f.logs.some((line) => /left mounted by an interrupted run/.test(line)));
		await identityStage.verify(f.context);
		assert.equal(await guestFile(target, '/etc/hostname'), 'gallifrey-dev\n');
		await assertNothingLeft(f);
	},
);

test(
	'the source volume is never mounted: a target that is the source is refused',
	{skip: !isRoot && 'needs root'},
	async (t) => {
		const f = await farm(t);
		await copied(f);
		const source = await getLv(f.context.host, f.settings.vg, f.settings.sourceLv);
		f.states['copy'] = {...f.states['copy'], targetUuid: source!.uuid};
		const before = await fileSha256(source!.path);
		await assert.rejects(identityStage.apply(f.context), /is the source volume: it is never mounted nor written/);
		await assert.rejects(identityStage.check(f.context), /is the source volume/);
		assert.deepEqual(await loopsBackedBy(f.context.host, source!.path), []);
		assert.equal(await fileSha256(source!.path), before);
	},
);
