import {randomBytes} from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {execa} from 'execa';

/** The simulated host's addresses: the farm's bridge and a TEST-NET address standing for its public IP. */
export const simNetwork = {
	bridge: 'farm0',
	bridgeAddress: '10.10.60.1',
	prefixLength: 24,
	external: 'net0',
	externalAddress: '192.0.2.10',
} as const;

const ipCommand = '/usr/sbin/ip';
const netnsRunDir = '/run/netns';
const netnsEtcDir = '/etc/netns';

/**
 * Files of /etc that `ip netns exec` bind-mounts from /etc/netns/NS: inside the
 * namespace, /etc/bind, /etc/dhcp, /etc/nginx and /etc/shorewall are the sim's,
 * so the real programs' default paths (rndc.conf, shorewall's vardir) are too.
 */
const etcOverlays = ['bind', 'dhcp', 'nginx', 'shorewall'] as const;

export function newNamespaceName(): string {
	return `fcsim-${randomBytes(4).toString('hex')}`;
}

export function assertRoot(): void {
	if (typeof process.getuid === 'function' && process.getuid() !== 0) {
		throw new Error(
			'the simulated farm must run as root: it creates a network namespace (ip netns add) for its named, dhcpd, nginx and VMs',
		);
	}
}

/** argv that runs `argv` inside the namespace. */
export function inNamespace(namespace: string, argv: string[]): string[] {
	return [ipCommand, 'netns', 'exec', namespace, ...argv];
}

export async function namespaceExists(namespace: string): Promise<boolean> {
	try {
		await fs.access(path.join(netnsRunDir, namespace));
		return true;
	} catch {
		return false;
	}
}

async function ip(args: string[]): Promise<void> {
	const result = await execa(ipCommand, args, {reject: false});
	if (result.exitCode !== 0) {
		throw new Error(`ip ${args.join(' ')} failed: ${String(result.stderr).trim()}`);
	}
}

async function ipIn(namespace: string, args: string[]): Promise<void> {
	await ip(['-n', namespace, ...args]);
}

/**
 * The simulated host: loopback, the farm's bridge `farm0` and an "external"
 * interface `net0`. This kernel has no dummy interfaces, so net0 is one end of
 * a veth pair whose other end stays in the namespace, unconnected.
 */
export async function createNamespace(namespace: string, simRoot: string): Promise<void> {
	assertRoot();
	await writeNamespaceEtc(namespace, simRoot);
	if (await namespaceExists(namespace)) return;
	await ip(['netns', 'add', namespace]);
	try {
		const {bridge, bridgeAddress, prefixLength, external, externalAddress} = simNetwork;
		await ipIn(namespace, ['link', 'set', 'lo', 'up']);
		await ipIn(namespace, ['link', 'add', bridge, 'type', 'bridge']);
		await ipIn(namespace, ['address', 'add', `${bridgeAddress}/${prefixLength}`, 'dev', bridge]);
		await ipIn(namespace, ['link', 'set', bridge, 'up']);
		await ipIn(namespace, ['link', 'add', external, 'type', 'veth', 'peer', 'name', `${external}-peer`]);
		await ipIn(namespace, ['address', 'add', `${externalAddress}/24`, 'dev', external]);
		await ipIn(namespace, ['link', 'set', `${external}-peer`, 'up']);
		await ipIn(namespace, ['link', 'set', external, 'up']);
	} catch (error) {
		await deleteNamespace(namespace);
		throw error;
	}
}

/** /etc/netns/NS: names resolve through the sim's named only, and the sim's service directories replace /etc's. */
async function writeNamespaceEtc(namespace: string, simRoot: string): Promise<void> {
	const dir = path.join(netnsEtcDir, namespace);
	await fs.mkdir(dir, {recursive: true});
	await fs.writeFile(path.join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n');
	await fs.writeFile(
		path.join(dir, 'hosts'),
		`127.0.0.1\tlocalhost\n${simNetwork.bridgeAddress}\thost01.farm host01\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
	);
	for (const name of etcOverlays) {
		const link = path.join(dir, name);
		const target = path.join(simRoot, 'etc', name);
		await fs.rm(link, {force: true});
		const bindable = await Promise.all([fs.stat(target), fs.stat(path.join('/etc', name))]).then(
			() => true,
			() => false,
		);
		if (bindable) await fs.symlink(target, link);
	}
}

/** Pids of every process living in the namespace. */
export async function namespacePids(namespace: string): Promise<number[]> {
	if (!(await namespaceExists(namespace))) return [];
	const result = await execa(ipCommand, ['netns', 'pids', namespace], {reject: false});
	return String(result.stdout)
		.split('\n')
		.map((line) => Number(line.trim()))
		.filter((pid) => Number.isInteger(pid) && pid > 0);
}

/** Kills what still runs inside, then removes the namespace and its /etc/netns directory. */
export async function deleteNamespace(namespace: string): Promise<void> {
	for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
		const pids = await namespacePids(namespace);
		if (pids.length === 0) break;
		for (const pid of pids) {
			try {
				process.kill(pid, signal);
			} catch {}
		}

		await waitFor(async () => (await namespacePids(namespace)).length === 0, 3000);
	}

	if (await namespaceExists(namespace)) await ip(['netns', 'delete', namespace]);
	await fs.rm(path.join(netnsEtcDir, namespace), {recursive: true, force: true});
}

export async function waitFor(condition: () => Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		if (await condition()) return true;
		if (Date.now() >= deadline) return false;
		await new Promise((resolve) => setTimeout(resolve, stepMs));
	}
}
