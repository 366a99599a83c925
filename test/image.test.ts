import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test, type TestContext} from 'node:test';
import {execa} from 'execa';
import {keyFilesPattern, setGitRevisionLine, setHostsLine, sshFingerprint} from '../source/host/guest-identity.js';
import {Host} from '../source/host/host.js';
import {
	attachLoop,
	detachLoop,
	findRootFilesystem,
	loopsBackedBy,
	mountArgv,
	readPartitionTable,
	resolveInside,
} from '../source/host/image.js';
import {waitFor} from './kit/farm.js';

const MiB = 1024 * 1024;
const sbin = `${process.env['PATH'] ?? '/usr/bin:/bin'}:/usr/local/sbin:/usr/sbin:/sbin`;
const host = new Host({backupDir: '/nonexistent'});

async function temporaryDirectory(t: TestContext): Promise<string> {
	const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-image-'));
	t.after(() => fs.rm(dir, {recursive: true, force: true}));
	return dir;
}

function run(command: string, args: string[], input = '') {
	return execa(command, args, {env: {PATH: sbin, LC_ALL: 'C'}, input});
}

/** A disk image of `size` MiB with the partitions sfdisk's script gives, each ext4 or swap as asked. */
async function disk(dir: string, size: number, script: string | undefined, formats: Array<'ext4' | 'swap'>) {
	const file = path.join(dir, 'disk');
	await fs.writeFile(file, '');
	await fs.truncate(file, size * MiB);
	if (script) await run('sfdisk', ['--quiet', file], script);
	const table = await readPartitionTable(host, file);
	const regions = table
		? table.partitions.map((partition) => ({offset: partition.offset, size: partition.size}))
		: [{offset: 0, size: size * MiB}];
	for (const [index, format] of formats.entries()) {
		const region = regions[index]!;
		const image = path.join(dir, `part${index}`);
		await fs.writeFile(image, '');
		await fs.truncate(image, region.size);
		await (format === 'ext4' ? run('mkfs.ext4', ['-q', '-F', image]) : run('mkswap', [image]));
		await run('dd', [`if=${image}`, `of=${file}`, 'bs=1M', `seek=${region.offset / MiB}`, 'conv=notrunc,sparse']);
	}

	return file;
}

test('sfdisk -J: MBR partitions in bytes; a bare volume has none', async (t) => {
	const dir = await temporaryDirectory(t);
	const dos = await disk(dir, 16, 'label: dos\nstart=2048, size=8192, type=83\nstart=10240, type=82\n', []);
	const table = await readPartitionTable(host, dos);
	assert.equal(table?.label, 'dos');
	assert.deepEqual(
		table?.partitions.map(({number, offset, size, type}) => ({number, offset, size, type})),
		[
			{number: 1, offset: 2048 * 512, size: 8192 * 512, type: '83'},
			{number: 2, offset: 10_240 * 512, size: 16 * MiB - 10_240 * 512, type: '82'},
		],
	);
	await fs.rm(dos);
	const bare = await disk(dir, 8, undefined, []);
	assert.equal(await readPartitionTable(host, bare), undefined);
});

test('the root filesystem: the one ext partition, the GPT root type among several, or the whole volume', async (t) => {
	const dir = await temporaryDirectory(t);
	const swapThenExt = await disk(dir, 24, 'label: dos\nstart=2048, size=4096, type=82\nstart=8192, type=83\n', [
		'swap',
		'ext4',
	]);
	const found = await findRootFilesystem(host, swapThenExt, 24 * MiB);
	assert.ok(!('problem' in found), JSON.stringify(found));
	assert.deepEqual(found, {
		region: {offset: 8192 * 512, size: 24 * MiB - 8192 * 512, where: 'partition 2'},
		type: 'ext4',
	});
	await fs.rm(dir, {recursive: true});
	await fs.mkdir(dir);

	const linux = '0FC63DAF-8483-4772-8E3D-693D7DE4709C';
	const root = '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709';
	const twoExt = `label: gpt\nstart=2048, size=8192, type=${linux}\nstart=10240, size=16384, type=${root}\n`;
	const gpt = await disk(dir, 24, twoExt, ['ext4', 'ext4']);
	const chosen = await findRootFilesystem(host, gpt, 24 * MiB);
	assert.ok('region' in chosen && chosen.region.where === 'partition 2', JSON.stringify(chosen));
	await run('sfdisk', ['--quiet', '--part-type', gpt, '2', linux]);
	const ambiguous = await findRootFilesystem(host, gpt, 24 * MiB);
	assert.match('problem' in ambiguous ? ambiguous.problem : '', /several ext filesystems and none marked as the root/);
	await fs.rm(dir, {recursive: true});
	await fs.mkdir(dir);

	const whole = await disk(dir, 8, undefined, ['ext4']);
	assert.deepEqual(await findRootFilesystem(host, whole, 8 * MiB), {
		region: {offset: 0, size: 8 * MiB, where: 'the whole volume'},
		type: 'ext4',
	});
	await fs.writeFile(whole, Buffer.alloc(MiB, 0x77));
	const nothing = await findRootFilesystem(host, whole, MiB);
	assert.match('problem' in nothing ? nothing.problem : '', /^no partition table, and no filesystem on it$/);
});

test('a read-only look at ext4 never replays the journal; loop devices are found by what they read', async (t) => {
	assert.deepEqual(mountArgv('/dev/loop9', '/m', 'ext4', true), [
		'mount',
		'-t',
		'ext4',
		'-o',
		'nosuid,nodev,noexec,ro,noload',
		'/dev/loop9',
		'/m',
	]);
	assert.deepEqual(mountArgv('/dev/loop9', '/m', 'ext2', true).at(-3), 'nosuid,nodev,noexec,ro');
	assert.deepEqual(mountArgv('/dev/loop9', '/m', 'ext4', false).at(-3), 'nosuid,nodev,noexec');
	if (process.getuid?.() !== 0) return t.skip('losetup needs root');
	const dir = await temporaryDirectory(t);
	const file = await disk(dir, 8, undefined, ['ext4']);
	const link = path.join(dir, 'link-to-disk');
	await fs.symlink(file, link);
	const loop = await attachLoop(host, link, {offset: MiB, size: 4 * MiB, where: 'test'}, true);
	try {
		const found = await loopsBackedBy(host, file);
		assert.deepEqual(
			found.map(({name, offset, sizeLimit, readOnly}) => ({name, offset, sizeLimit, readOnly})),
			[{name: loop, offset: MiB, sizeLimit: 4 * MiB, readOnly: true}],
		);
	} finally {
		await detachLoop(host, loop);
	}

	assert.deepEqual(await loopsBackedBy(host, file), []);
	await detachLoop(host, loop);
});

test('paths inside a guest filesystem never lead out of it', async (t) => {
	const root = path.join(await temporaryDirectory(t), 'guest');
	await fs.mkdir(path.join(root, 'etc', 'ssh'), {recursive: true});
	await fs.mkdir(path.join(root, 'var', 'lib', 'dbus'), {recursive: true});
	await fs.symlink('/etc/shadow', path.join(root, 'etc', 'hostname'));
	await fs.symlink('../../../../../../etc', path.join(root, 'etc', 'up'));
	await fs.symlink('/etc/machine-id', path.join(root, 'var', 'lib', 'dbus', 'machine-id'));
	await fs.symlink('loop', path.join(root, 'loop'));
	await fs.symlink('/', path.join(root, 'slash'));

	assert.equal(await resolveInside(root, '/etc/hostname'), path.join(root, 'etc', 'shadow'));
	assert.equal(await resolveInside(root, '/etc/up/passwd'), path.join(root, 'etc', 'passwd'));
	assert.equal(await resolveInside(root, '/slash/slash/etc/ssh'), path.join(root, 'etc', 'ssh'));
	assert.equal(await resolveInside(root, '/../../etc/hosts'), path.join(root, 'etc', 'hosts'));
	assert.equal(
		await resolveInside(root, '/var/lib/dbus/machine-id', {followLast: false}),
		path.join(root, 'var', 'lib', 'dbus', 'machine-id'),
	);
	assert.equal(await resolveInside(root, '/var/lib/dbus/machine-id'), path.join(root, 'etc', 'machine-id'));
	await assert.rejects(resolveInside(root, '/loop/x'), /too many symlinks/);
	await fs.writeFile(path.join(root, 'file'), '');
	await assert.rejects(resolveInside(root, '/file/x'), /is no directory/);
});

test('hosts, GIT_REVISION and fingerprints: only the line concerned changes', async (t) => {
	const hosts = '127.0.0.1\tlocalhost\r\n127.0.1.1 old.farm old\r\n::1 localhost\r\n';
	assert.equal(
		setHostsLine(hosts, 'new.xivo.vm.farm', 'new'),
		'127.0.0.1\tlocalhost\r\n127.0.1.1\tnew.xivo.vm.farm\tnew\r\n::1 localhost\r\n',
	);
	assert.equal(setHostsLine('127.0.0.1 localhost', 'a.b', 'a'), '127.0.0.1 localhost\n127.0.1.1\ta.b\ta\n');
	assert.equal(setHostsLine('', 'a', 'a'), '127.0.1.1\ta\n');

	const conf = '# GIT_REVISION=keep this comment\nA=1\nGIT_REVISION=2.0.7\r\nexport GIT_REVISION="1.9"\nB=2';
	assert.equal(
		setGitRevisionLine(conf, 'master'),
		'# GIT_REVISION=keep this comment\nA=1\nGIT_REVISION=master\r\nexport GIT_REVISION=master\nB=2',
	);
	assert.equal(setGitRevisionLine('A=1', 'master'), 'A=1\nGIT_REVISION=master\n');
	assert.equal(setGitRevisionLine('A=1\r\n', 'master'), 'A=1\r\nGIT_REVISION=master\r\n');

	const dir = await temporaryDirectory(t);
	const key = path.join(dir, 'key');
	await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
	const {stdout} = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${key}.pub`]);
	assert.equal(sshFingerprint(await fs.readFile(`${key}.pub`, 'utf8')), stdout.split(' ')[1]);
});

test('a loop whose filesystem another mount namespace still has mounted: the detach names that process', async (t) => {
	if (process.getuid?.() !== 0) return t.skip('losetup and mount need root');
	const dir = await temporaryDirectory(t);
	const file = await disk(dir, 8, undefined, ['ext4']);
	const mountpoint = path.join(dir, 'mnt');
	await fs.mkdir(mountpoint);
	const loop = await attachLoop(host, file, {offset: 0, size: 8 * MiB, where: 'test'}, false);
	await run('mount', mountArgv(loop, mountpoint, 'ext4', false).slice(1));
	// A namespace made now copies the mount; with private propagation our umount never reaches the copy.
	const holder = execa('unshare', ['--mount', '--propagation', 'private', 'sleep', '600'], {env: {PATH: sbin}});
	try {
		await waitFor(
			async () => (await fs.readFile(`/proc/${holder.pid}/mountinfo`, 'utf8').catch(() => '')).includes(loop),
			30_000,
			'the namespace holding a copy of the mount',
		);
		await run('umount', [mountpoint]);
		await assert.rejects(detachLoop(host, loop, {releaseAttempts: 2}), (error: unknown) => {
			assert.match(
				String(error),
				new RegExp(`${loop} is still attached .*another mount namespace \\(pid ${holder.pid} sleep\\)`),
			);
			assert.match(String(error), new RegExp(`nsenter -t ${holder.pid} -m umount ${loop}`));
			return true;
		});
	} finally {
		holder.kill('SIGKILL');
		await holder.catch(() => undefined);
	}

	// The last copy gone, the kernel clears the loop it was told to detach.
	await waitFor(async () => (await loopsBackedBy(host, file)).length === 0, 30_000, 'the loop to clear itself');
});

test('host key files read as one pattern when each type has both halves', () => {
	const names = ['ssh_host_ecdsa_key', 'ssh_host_ecdsa_key.pub', 'ssh_host_rsa_key', 'ssh_host_rsa_key.pub'];
	assert.equal(keyFilesPattern(names), 'ssh_host_{ecdsa,rsa}_key{,.pub}');
	assert.equal(keyFilesPattern(names.slice(0, 2)), 'ssh_host_ecdsa_key{,.pub}');
	assert.equal(keyFilesPattern(names.slice(0, 3)), 'ssh_host_ecdsa_key, ssh_host_ecdsa_key.pub, ssh_host_rsa_key');
	assert.equal(keyFilesPattern(['ssh_host_rsa_key-cert.pub']), 'ssh_host_rsa_key-cert.pub');
});
