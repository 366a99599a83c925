import {monitorCommand, parseBalloon} from '../host/qemu-monitor.js';
import {createHash} from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {isProcessAlive} from './file-lock.js';
import {
	filledBeparams,
	monitorSocketFor,
	withGanetiState,
	type GanetiCluster,
	type GanetiInstance,
} from './ganeti-state.js';
import {lvDevicePath} from './lvm-state.js';
import {waitFor} from './netns.js';
import {runInNamespace} from './services.js';

const qemu = '/usr/bin/qemu-system-x86_64';
/** sun_path holds 108 bytes, the terminating NUL included. */
const maxSocketPath = 107;

export function kvmFiles(cluster: GanetiCluster, instanceName: string) {
	const ctrl = path.join(cluster.kvmRunDir, 'ctrl');
	return {
		pidFile: path.join(cluster.kvmRunDir, 'pid', instanceName),
		monitor: monitorSocketFor(cluster, instanceName),
		serial: path.join(ctrl, `${instanceName}.serial`),
		qmp: path.join(ctrl, `${instanceName}.qmp`),
	};
}

/** The pid of the instance's QEMU, when it runs. */
export async function vmPid(cluster: GanetiCluster, instanceName: string): Promise<number | undefined> {
	const pid = Number((await fs.readFile(kvmFiles(cluster, instanceName).pidFile, 'utf8').catch(() => '')).trim());
	if (!isProcessAlive(pid)) return undefined;
	try {
		const commandLine = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
		const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
		if (/\) [ZX] /.test(stat)) return undefined;
		const name = commandLine[commandLine.indexOf('-name') + 1] ?? '';
		return name.split(',')[0] === instanceName ? pid : undefined;
	} catch {
		return undefined;
	}
}

/** The tap interface of a NIC: short, stable, unique in the namespace. */
function tapName(nicUuid: string): string {
	return `fct${createHash('sha256').update(nicUuid).digest('hex').slice(0, 8)}`;
}

/**
 * A long sim root can push a socket path past what a unix socket address
 * holds: QEMU then listens on a short path and the long one is a symlink to
 * it (connect() follows symlinks).
 */
async function socketPath(wanted: string): Promise<string> {
	await fs.mkdir(path.dirname(wanted), {recursive: true});
	await fs.rm(wanted, {force: true});
	if (Buffer.byteLength(wanted) <= maxSocketPath) return wanted;
	const short = path.join('/run/farmclone-sim', createHash('sha256').update(wanted).digest('hex').slice(0, 16));
	await fs.mkdir(path.dirname(short), {recursive: true});
	await fs.rm(short, {force: true});
	await fs.symlink(short, wanted);
	return short;
}

/**
 * Starts the instance's QEMU inside the simulated host's namespace the way
 * Ganeti's KVM hypervisor does (daemonized, monitor, serial and QMP sockets in
 * its ctrl directory, -m maxmem, a balloon device, disks and tap NICs on their
 * bridge), but with its CPUs stopped: there is no guest to boot.
 */
export async function startVm(
	root: string,
	namespace: string,
	cluster: GanetiCluster,
	instance: GanetiInstance,
): Promise<number> {
	const running = await vmPid(cluster, instance.name);
	if (running) return running;
	const files = kvmFiles(cluster, instance.name);
	const be = filledBeparams(cluster, instance);
	await fs.mkdir(path.dirname(files.pidFile), {recursive: true});
	await fs.rm(files.pidFile, {force: true});
	const sockets = {
		monitor: await socketPath(files.monitor),
		serial: await socketPath(files.serial),
		qmp: await socketPath(files.qmp),
	};
	const argv = [
		qemu,
		'-name',
		`${instance.name},process=${instance.name.slice(0, 15)}`,
		'-uuid',
		instance.uuid,
		'-machine',
		'pc,accel=kvm:tcg',
		'-m',
		String(be.maxmem),
		'-smp',
		String(be.vcpus),
		'-S',
		'-nodefaults',
		'-display',
		'none',
		'-device',
		'virtio-balloon-pci,id=balloon',
		'-monitor',
		`unix:${sockets.monitor},server,nowait`,
		'-serial',
		`unix:${sockets.serial},server,nowait`,
		'-qmp',
		`unix:${sockets.qmp},server,nowait`,
		'-pidfile',
		files.pidFile,
		'-daemonize',
	];
	for (const [index, disk] of instance.disks.entries()) {
		const file = lvDevicePath(root, disk.vg, disk.lv);
		argv.push('-drive', `file=${file},format=raw,if=none,id=disk${index}`);
		argv.push('-device', `virtio-blk-pci,drive=disk${index}`);
	}

	for (const [index, nic] of instance.nics.entries()) {
		argv.push('-netdev', `tap,id=nic${index},ifname=${tapName(nic.uuid)},script=no,downscript=no`);
		argv.push('-device', `virtio-net-pci,netdev=nic${index},mac=${nic.mac}`);
	}

	const result = await runInNamespace(namespace, argv);
	if (result.exitCode !== 0) {
		throw new Error(`${qemu} failed: ${(result.stderr || result.stdout).trim()}`);
	}

	for (const nic of instance.nics) {
		const link = await runInNamespace(namespace, [
			'/usr/sbin/ip',
			'link',
			'set',
			tapName(nic.uuid),
			'master',
			nic.link,
			'up',
		]);
		if (link.exitCode !== 0) {
			await stopVm(cluster, instance.name);
			throw new Error(`cannot attach the tap of ${nic.mac} to bridge ${nic.link}: ${link.stderr.trim()}`);
		}
	}

	const pid = await vmPid(cluster, instance.name);
	if (!pid) throw new Error(`${qemu} for ${instance.name} did not stay up`);
	return pid;
}

export async function stopVm(cluster: GanetiCluster, instanceName: string): Promise<void> {
	const pid = await vmPid(cluster, instanceName);
	if (pid) {
		try {
			process.kill(pid, 'SIGTERM');
		} catch {}

		if (!(await waitFor(async () => !(await vmPid(cluster, instanceName)), 10_000))) {
			try {
				process.kill(pid, 'SIGKILL');
			} catch {}

			await waitFor(async () => !(await vmPid(cluster, instanceName)), 5000);
		}
	}

	const files = kvmFiles(cluster, instanceName);
	for (const file of [files.pidFile, files.monitor, files.serial, files.qmp]) await fs.rm(file, {force: true});
}

export {monitorCommand} from '../host/qemu-monitor.js';

/** `info balloon`: the guest's memory in MiB as QEMU sees it (without a guest driver, all of it). */
export async function balloonActual(socket: string): Promise<number | undefined> {
	return parseBalloon(await monitorCommand(socket, 'info balloon'));
}

/**
 * What ganeti-watcher does after a node reboot: start again the instances
 * that are meant to be up. Returns the names it could not start, with why.
 */
export async function startAdminUpVms(root: string, namespace: string): Promise<string[]> {
	const failures: string[] = [];
	await withGanetiState(root, async (state) => {
		for (const instance of state.instances) {
			if (instance.adminState !== 'up' || (await vmPid(state.cluster, instance.name))) continue;
			try {
				await startVm(root, namespace, state.cluster, instance);
			} catch (error) {
				failures.push(`${instance.name}: ${(error as Error).message}`);
			}
		}
	});
	return failures;
}
