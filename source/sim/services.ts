import {spawn} from 'node:child_process';
import {openSync, closeSync} from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import {execa} from 'execa';
import {isProcessAlive, withFileLock} from './file-lock.js';
import {
	assertRoot,
	createNamespace,
	deleteNamespace,
	inNamespace,
	namespaceExists,
	newNamespaceName,
	simNetwork,
	waitFor,
} from './netns.js';
import {simPaths} from './paths.js';

/** The daemons of the simulated host, all inside its network namespace. */
export const simServiceNames = ['named', 'dhcpd', 'nginx'] as const;
export type SimServiceName = (typeof simServiceNames)[number];

export type SimServicesState = {
	namespace: string;
	pids: Partial<Record<SimServiceName, number>>;
	/** Services whose last start failed, as systemd keeps them `failed`. */
	failed?: SimServiceName[];
};

/** A daemon that refused to start; `log` holds what it said. */
export class SimServiceError extends Error {
	constructor(
		readonly service: SimServiceName,
		message: string,
		readonly log: string,
	) {
		super(`${service}: ${message}${log.trim() ? `\n${log.trim().split('\n').slice(-8).join('\n')}` : ''}`);
		this.name = 'SimServiceError';
	}
}

const programs: Record<SimServiceName, string> = {
	named: '/usr/sbin/named',
	dhcpd: '/usr/sbin/dhcpd',
	nginx: '/usr/sbin/nginx',
};

export function simServiceFiles(root: string) {
	const paths = simPaths(root);
	return {
		stateFile: path.join(paths.state, 'services.json'),
		lockFile: path.join(paths.state, 'services.lock'),
		/** One line, read by the wrappers' shell fast path. */
		namespaceFile: path.join(paths.state, 'namespace'),
		pidDir: path.join(paths.state, 'pids'),
		logDir: path.join(root, 'var', 'log', 'farmclone-sim'),
		namedConf: path.join(paths.etc, 'bind', 'named.conf'),
		nginxConf: path.join(paths.etc, 'nginx', 'nginx.conf'),
		nginxErrorLog: path.join(root, 'var', 'log', 'nginx', 'error.log'),
		dhcpdConf: path.join(paths.etc, 'dhcp', 'dhcpd.conf'),
		dhcpdLeases: path.join(root, 'var', 'lib', 'dhcp', 'dhcpd.leases'),
		dhcpdPid: path.join(paths.run, 'dhcpd.pid'),
	};
}

export async function readServicesState(root: string): Promise<SimServicesState | undefined> {
	try {
		return JSON.parse(await fs.readFile(simServiceFiles(root).stateFile, 'utf8')) as SimServicesState;
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
		throw error;
	}
}

async function writeServicesState(root: string, state: SimServicesState): Promise<void> {
	const files = simServiceFiles(root);
	await fs.mkdir(files.pidDir, {recursive: true});
	const temporary = `${files.stateFile}.${process.pid}.tmp`;
	await fs.writeFile(temporary, `${JSON.stringify(state, null, '\t')}\n`);
	await fs.rename(temporary, files.stateFile);
	await fs.writeFile(files.namespaceFile, `${state.namespace}\n`);
	for (const service of simServiceNames) {
		const pidFile = path.join(files.pidDir, `${service}.pid`);
		const pid = state.pids[service];
		if (pid) await fs.writeFile(pidFile, `${pid}\n`);
		else await fs.rm(pidFile, {force: true});
	}
}

/** The namespace this sim tree uses, chosen once and kept across stops and starts. */
export async function simNamespace(root: string): Promise<string> {
	const state = await readServicesState(root);
	if (!state) throw new Error(`${root} has no simulated host services (no ${simServiceFiles(root).stateFile})`);
	return state.namespace;
}

/** Alive, and still the program we started (pids get reused). */
export async function isServiceProcess(pid: number | undefined, program: string): Promise<boolean> {
	if (!isProcessAlive(pid)) return false;
	try {
		const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
		if (/\) [ZX] /.test(stat)) return false;
		const commandLine = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
		return commandLine.includes(path.basename(program));
	} catch {
		return false;
	}
}

async function isRunning(pid: number): Promise<boolean> {
	if (!isProcessAlive(pid)) return false;
	const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
	return stat !== '' && !/\) [ZX] /.test(stat);
}

async function logTail(file: string): Promise<string> {
	try {
		return (await fs.readFile(file, 'utf8')).split('\n').slice(-20).join('\n');
	} catch {
		return '';
	}
}

/** Runs `argv` inside the namespace and waits for it. */
export async function runInNamespace(
	namespace: string,
	argv: string[],
	options: {timeoutMs?: number; input?: string} = {},
): Promise<{exitCode: number; stdout: string; stderr: string}> {
	const [command, ...args] = inNamespace(namespace, argv);
	const result = await execa(command!, args, {
		reject: false,
		timeout: options.timeoutMs ?? 30_000,
		input: options.input,
		env: {LC_ALL: 'C'},
	});
	return {exitCode: result.exitCode ?? 1, stdout: String(result.stdout), stderr: String(result.stderr)};
}

/** Starts a daemon in the foreground inside the namespace, detached from us, its output in its log. */
async function spawnDaemon(root: string, namespace: string, service: SimServiceName, argv: string[]): Promise<number> {
	const files = simServiceFiles(root);
	await fs.mkdir(files.logDir, {recursive: true});
	const logFile = path.join(files.logDir, `${service}.log`);
	const log = openSync(logFile, 'a');
	try {
		const [command, ...args] = inNamespace(namespace, argv);
		const child = spawn(command!, args, {detached: true, stdio: ['ignore', log, log], env: {LC_ALL: 'C'}});
		const pid = child.pid;
		child.unref();
		if (!pid) throw new SimServiceError(service, 'could not be started', await logTail(logFile));
		return pid;
	} finally {
		closeSync(log);
	}
}

async function namedReady(namespace: string): Promise<boolean> {
	return (await runInNamespace(namespace, ['/usr/sbin/rndc', 'status'], {timeoutMs: 5000})).exitCode === 0;
}

async function hasChildren(pid: number): Promise<boolean> {
	try {
		return (await fs.readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim() !== '';
	} catch {
		return false;
	}
}

/** `dhcpd -t`, as Debian's init script does before it starts the daemon. */
export async function testDhcpdConfig(root: string, namespace: string): Promise<{ok: boolean; output: string}> {
	const files = simServiceFiles(root);
	const result = await runInNamespace(namespace, [programs.dhcpd, '-t', '-4', '-cf', files.dhcpdConf]);
	return {ok: result.exitCode === 0, output: `${result.stdout}${result.stderr}`};
}

async function startService(root: string, namespace: string, service: SimServiceName): Promise<number> {
	const files = simServiceFiles(root);
	const logFile = path.join(files.logDir, `${service}.log`);
	let pid: number;
	let ready: () => Promise<boolean>;
	switch (service) {
		case 'named': {
			await requireFile(service, files.namedConf);
			pid = await spawnDaemon(root, namespace, service, [programs.named, '-f', '-n', '1', '-c', files.namedConf]);
			ready = async () => namedReady(namespace);
			break;
		}

		case 'dhcpd': {
			await requireFile(service, files.dhcpdConf);
			const test = await testDhcpdConfig(root, namespace);
			if (!test.ok) throw new SimServiceError(service, `refuses ${files.dhcpdConf}`, test.output);
			await fs.mkdir(path.dirname(files.dhcpdLeases), {recursive: true});
			await fs.appendFile(files.dhcpdLeases, '');
			await fs.mkdir(path.dirname(files.dhcpdPid), {recursive: true});
			await fs.rm(files.dhcpdPid, {force: true});
			pid = await spawnDaemon(root, namespace, service, [
				programs.dhcpd,
				'-4',
				'-d',
				'-cf',
				files.dhcpdConf,
				'-lf',
				files.dhcpdLeases,
				'-pf',
				files.dhcpdPid,
				simNetwork.bridge,
			]);
			ready = async () => (await fs.readFile(files.dhcpdPid, 'utf8').catch(() => '')).trim() !== '';
			break;
		}

		case 'nginx': {
			await requireFile(service, files.nginxConf);
			await fs.mkdir(path.dirname(files.nginxErrorLog), {recursive: true});
			pid = await spawnDaemon(root, namespace, service, [
				programs.nginx,
				'-c',
				files.nginxConf,
				'-e',
				files.nginxErrorLog,
				'-g',
				'daemon off;',
			]);
			// Workers are forked once the configuration is loaded and the sockets are bound.
			ready = async () => hasChildren(pid);
			break;
		}
	}

	// Not isServiceProcess: while `ip netns exec` execs the daemon, its cmdline is briefly empty.
	const up = await waitFor(async () => !(await isRunning(pid)) || (await ready()), 15_000);
	if (!up || !(await isRunning(pid))) {
		await stopProcess(pid);
		const log = [await logTail(logFile), service === 'nginx' ? await logTail(files.nginxErrorLog) : '']
			.filter(Boolean)
			.join('\n');
		throw new SimServiceError(service, up ? 'exited right after starting' : 'did not become ready in 15 s', log);
	}

	return pid;
}

async function requireFile(service: SimServiceName, file: string): Promise<void> {
	try {
		await fs.access(file);
	} catch {
		throw new SimServiceError(service, `its configuration ${file} is missing: build the sim tree first`, '');
	}
}

async function stopProcess(pid: number | undefined): Promise<void> {
	if (!isProcessAlive(pid)) return;
	try {
		process.kill(pid, 'SIGTERM');
	} catch {}

	if (!(await waitFor(async () => !isProcessAlive(pid) || (await isZombie(pid)), 5000))) {
		try {
			process.kill(pid, 'SIGKILL');
		} catch {}

		await waitFor(async () => !isProcessAlive(pid) || (await isZombie(pid)), 2000);
	}
}

async function isZombie(pid: number): Promise<boolean> {
	try {
		return / Z /.test(await fs.readFile(`/proc/${pid}/stat`, 'utf8'));
	} catch {
		return true;
	}
}

type EnsureOptions = {
	/** Services that must end up running: their failure to start is an error. */
	require?: readonly SimServiceName[];
};

/**
 * Makes sure the namespace exists and the required services run. A fresh
 * namespace (first start, or after a stop or a reboot) gets every service;
 * there only the required ones' failures count, so that a dhcpd.conf being
 * edited does not stop rndc from working.
 */
async function ensureUnlocked(root: string, options: EnsureOptions): Promise<SimServicesState> {
	assertRoot();
	const previous = await readServicesState(root);
	const state: SimServicesState = previous ?? {namespace: newNamespaceName(), pids: {}};
	const fresh = !(await namespaceExists(state.namespace));
	if (fresh) {
		state.pids = {};
		await createNamespace(state.namespace, root);
	}

	const required = new Set(options.require ?? []);
	const errors: Error[] = [];
	for (const service of simServiceNames) {
		if (!fresh && !required.has(service)) continue;
		if (await isServiceProcess(state.pids[service], programs[service])) continue;
		try {
			state.pids[service] = await startService(root, state.namespace, service);
			state.failed = (state.failed ?? []).filter((name) => name !== service);
		} catch (error) {
			delete state.pids[service];
			state.failed = [...new Set([...(state.failed ?? []), service])];
			if (required.has(service)) errors.push(error as Error);
		}
	}

	await writeServicesState(root, state);
	if (errors.length > 0) throw errors[0];
	return state;
}

/** The wrappers' and stand-ins' way in: fast when everything already runs. */
export async function ensureSimServices(root: string, require: readonly SimServiceName[] = []): Promise<string> {
	const state = await withFileLock(simServiceFiles(root).lockFile, async () => ensureUnlocked(root, {require}));
	return state.namespace;
}

/**
 * Shorewall runs on a farm host: start it with the configuration it has, so
 * that the firewall-restart stage restarts a running firewall. Only ever
 * inside the sim's own namespace (checked again here: `ip netns exec` of a
 * missing namespace would fail, but never run it in the host's).
 */
async function startSimFirewall(namespace: string): Promise<void> {
	if (!(await namespaceExists(namespace))) throw new Error(`no namespace ${namespace} to start Shorewall in`);
	const status = await runInNamespace(namespace, ['/usr/sbin/shorewall', 'status']);
	if (status.exitCode === 0 && /Shorewall is running/.test(status.stdout)) return;
	const start = await runInNamespace(namespace, ['/usr/sbin/shorewall', 'start'], {timeoutMs: 60_000});
	if (start.exitCode !== 0) {
		throw new Error(
			`shorewall start failed in ${namespace}:\n${`${start.stdout}${start.stderr}`.trim().split('\n').slice(-6).join('\n')}`,
		);
	}
}

/** Starts the simulated host's namespace, every service and its firewall (idempotent). */
export async function startSimServices(root: string): Promise<SimServicesState> {
	return withFileLock(simServiceFiles(root).lockFile, async () => {
		const state = await ensureUnlocked(root, {require: simServiceNames});
		await startSimFirewall(state.namespace);
		return state;
	});
}

/**
 * Stops everything the sim runs (services, VMs started by gnt-instance) by
 * removing its namespace with all the processes inside; the tree stays.
 */
export async function stopSimServices(root: string): Promise<void> {
	const state = await readServicesState(root);
	if (!state) return;
	await withFileLock(simServiceFiles(root).lockFile, async () => {
		for (const service of simServiceNames) await stopProcess(state.pids[service]);
		await deleteNamespace(state.namespace);
		state.pids = {};
		await writeServicesState(root, state);
	});
}

export type SimServiceStatus = {
	service: SimServiceName;
	active: boolean;
	failed: boolean;
	pid?: number;
	namespace?: string;
	log: string;
};

export async function simServiceStatus(root: string, service: SimServiceName): Promise<SimServiceStatus> {
	const state = await readServicesState(root);
	const pid = state?.pids[service];
	const active = Boolean(
		state && (await namespaceExists(state.namespace)) && (await isServiceProcess(pid, programs[service])),
	);
	return {
		service,
		active,
		failed: !active && Boolean(state?.failed?.includes(service)),
		namespace: state?.namespace,
		log: await logTail(path.join(simServiceFiles(root).logDir, `${service}.log`)),
		...(active ? {pid} : {}),
	};
}

export async function stopSimService(root: string, service: SimServiceName): Promise<void> {
	await withFileLock(simServiceFiles(root).lockFile, async () => {
		const state = await ensureUnlocked(root, {});
		await stopProcess(state.pids[service]);
		delete state.pids[service];
		state.failed = (state.failed ?? []).filter((name) => name !== service);
		await writeServicesState(root, state);
	});
}

/** Stop then start, like `systemctl restart`: a service whose new start fails stays down. */
export async function restartSimService(root: string, service: SimServiceName): Promise<SimServicesState> {
	return withFileLock(simServiceFiles(root).lockFile, async () => {
		const state = await ensureUnlocked(root, {});
		await stopProcess(state.pids[service]);
		delete state.pids[service];
		await writeServicesState(root, state);
		return ensureUnlocked(root, {require: [service]});
	});
}

/** What the services' own reload does: `rndc reload` for named, `nginx -s reload` for nginx. */
export async function reloadSimService(
	root: string,
	service: 'named' | 'nginx',
): Promise<{ok: boolean; output: string}> {
	const namespace = await ensureSimServices(root, [service]);
	const files = simServiceFiles(root);
	const argv =
		service === 'named'
			? ['/usr/sbin/rndc', ...(await defaultArguments(root, 'rndc')), 'reload']
			: [programs.nginx, '-c', files.nginxConf, '-e', files.nginxErrorLog, '-s', 'reload'];
	const result = await runInNamespace(namespace, argv);
	return {ok: result.exitCode === 0, output: `${result.stdout}${result.stderr}`};
}

/** The real programs the wrappers run inside the namespace, and the service each one needs running first. */
const wrapped: Array<{command: string; program: string; needs: SimServiceName[]}> = [
	{command: 'rndc', program: '/usr/sbin/rndc', needs: ['named']},
	{command: 'dig', program: '/usr/bin/dig', needs: ['named']},
	{command: 'nginx', program: programs.nginx, needs: []},
	{command: 'shorewall', program: '/usr/sbin/shorewall', needs: []},
	{command: 'dhcpd', program: programs.dhcpd, needs: []},
	{command: 'named', program: programs.named, needs: []},
	{command: 'curl', program: '/usr/bin/curl', needs: ['nginx']},
];

/**
 * rndc warns on every call when both rndc.conf and rndc.key sit in
 * /etc/bind, unless told which configuration to use.
 */
async function defaultArguments(root: string, command: string): Promise<string[]> {
	if (command !== 'rndc') return [];
	const conf = path.join(simPaths(root).etc, 'bind', 'rndc.conf');
	return (await fs.stat(conf).then(
		() => true,
		() => false,
	))
		? ['-c', conf]
		: [];
}

function shellQuote(value: string): string {
	return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * root/bin/<command>: sh wrappers that run the real program inside the
 * simulated host's namespace, starting the sim's services first when they
 * are not running (a plain file check when they are).
 */
export async function writeServiceWrappers(root: string, controlCommand = 'farmclone-sim'): Promise<void> {
	const paths = simPaths(root);
	await fs.mkdir(paths.bin, {recursive: true});
	for (const {command, program, needs} of wrapped) {
		const script = [
			'#!/bin/sh',
			`# farmclone's simulated farm: the real ${program}, inside the simulated host's network namespace.`,
			`state=${shellQuote(paths.state)}`,
			'up() {',
			'\tns=$(cat "$state/namespace" 2>/dev/null) && [ -e "/run/netns/$ns" ] || return 1',
			...needs.map(
				(service) =>
					`\tpid=$(cat "$state/pids/${service}.pid" 2>/dev/null) && grep -qs ${service} "/proc/$pid/cmdline" || return 1`,
			),
			'}',
			`up || ${shellQuote(path.join(paths.bin, controlCommand))} ensure ${needs.join(' ')} >&2 || exit 1`,
			`exec /usr/sbin/ip netns exec "$(cat "$state/namespace")" ${program}${(await defaultArguments(root, command)).map((argument) => ` ${shellQuote(argument)}`).join('')} "$@"`,
			'',
		].join('\n');
		const file = path.join(paths.bin, command);
		await fs.writeFile(file, script, {mode: 0o755});
		await fs.chmod(file, 0o755);
	}
}
