import {createHash} from 'node:crypto';
import path from 'node:path';
import type {FileDiff} from './diff.js';
import {unifiedDiff} from './diff.js';
import {mountedTree, type GuestTree} from './guest-tree.js';
import type {Host} from './host.js';
import {resolveInside} from './image.js';

/**
 * What makes a copied VM a second copy of the same machine, found and fixed
 * in its filesystem mounted on the host: hostname, SSH host keys, machine-id,
 * udev's pinned NIC names, DHCP leases, and the packaging farm's branch. Every
 * guest path goes through resolveInside: nothing here follows a guest's
 * symlink out of its filesystem.
 */

export type IdentityRequest = {
	/** The clone's short name (`/etc/hostname`) and fully qualified name. */
	hostname: string;
	fqdn: string;
	/** Which changes are wanted: one setting each. */
	setHostname: boolean;
	renewSshKeys: boolean;
	emptyMachineId: boolean;
	removePersistentNet: boolean;
	removeDhcpLeases: boolean;
	setGitRevision: boolean;
	/** Guest path of the packaging farm's configuration. */
	packagingFarmConf: string;
	/** Fingerprints of the host keys generated for this clone by an earlier run: those are already new. */
	generatedKeys: readonly string[];
};

export type GuestChange =
	| {kind: 'write'; what: string; guestPath: string; hostPath: string; before: string | undefined; after: string}
	| {kind: 'remove'; what: string; guestPath: string; hostPath: string; before: string | undefined}
	| {kind: 'ssh-keys'; what: string; guestDir: string; hostDir: string; remove: string[]; types: string[]};

export const gitRevision = 'master';
const keyTypes = ['rsa', 'ecdsa', 'ed25519'];
const shownLimit = 64 * 1024;

/** Lines with their own ending, so that an edit keeps a file's `\r\n` where it had them. */
function splitLines(text: string): string[] {
	return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

function ending(line: string): string {
	return line.endsWith('\r\n') ? '\r\n' : line.endsWith('\n') ? '\n' : '';
}

/** The 127.0.1.1 line names the clone, as the Debian installer writes it; added after 127.0.0.1 when missing. */
export function setHostsLine(text: string, fqdn: string, hostname: string): string {
	const names = fqdn === hostname ? hostname : `${fqdn}\t${hostname}`;
	const wanted = `127.0.1.1\t${names}`;
	const lines = splitLines(text);
	const isOurs = (line: string) => /^\s*127\.0\.1\.1\s/.test(line);
	if (lines.some(isOurs)) return lines.map((line) => (isOurs(line) ? wanted + (ending(line) || '\n') : line)).join('');
	const newline = text.includes('\r\n') ? '\r\n' : '\n';
	let at = 0;
	for (const [index, line] of lines.entries()) if (/^\s*127\.0\.0\.1\s/.test(line)) at = index + 1;
	if (at > 0 && !ending(lines[at - 1]!)) lines[at - 1] += newline;
	lines.splice(at, 0, wanted + newline);
	return lines.join('');
}

const gitRevisionLine = /^(\s*(?:export\s+)?)GIT_REVISION=.*?(\r?\n)?$/;

/** Every `GIT_REVISION=` assignment set to `revision`, or one appended; no other byte changes. */
export function setGitRevisionLine(text: string, revision: string): string {
	const lines = splitLines(text);
	if (lines.some((line) => gitRevisionLine.test(line))) {
		return lines
			.map((line) =>
				line.replace(gitRevisionLine, (_, prefix: string, end = '') => `${prefix}GIT_REVISION=${revision}${end}`),
			)
			.join('');
	}

	const newline = text.includes('\r\n') ? '\r\n' : '\n';
	const separator = text === '' || text.endsWith('\n') ? '' : newline;
	return `${text}${separator}GIT_REVISION=${revision}${newline}`;
}

/** `SHA256:…` of an OpenSSH public key line, as `ssh-keygen -l` prints it. */
export function sshFingerprint(publicKeyLine: string): string | undefined {
	const blob = publicKeyLine.trim().split(/\s+/)[1];
	if (!blob) return undefined;
	const digest = createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64');
	return `SHA256:${digest.replace(/=+$/, '')}`;
}

/** A regular file's text, for a diff; undefined when it is not a regular file. */
async function readRegular(tree: GuestTree, file: string): Promise<string | undefined> {
	const stat = await tree.lstat(file);
	if (stat?.type !== 'file') return undefined;
	return stat.size > shownLimit ? `(${stat.size} bytes)\n` : tree.readFile(file);
}

/** Guest paths of the DHCP clients' lease files: ifupdown's dhclient, NetworkManager, dhcpcd. */
const leaseLocations: ReadonlyArray<{dir: string; name: RegExp}> = [
	{dir: '/var/lib/dhcp', name: /^dhclient.*\.leases?$/},
	{dir: '/var/lib/NetworkManager', name: /\.lease$/},
	{dir: '/var/lib/dhcpcd', name: /\.lease6?$/},
];

async function hostnameChanges(tree: GuestTree, request: IdentityRequest): Promise<GuestChange[]> {
	const changes: GuestChange[] = [];
	const hostnamePath = await resolveInside(tree, '/etc/hostname');
	const before = await readRegular(tree, hostnamePath);
	if (before !== `${request.hostname}\n`) {
		changes.push({
			kind: 'write',
			what: 'hostname',
			guestPath: '/etc/hostname',
			hostPath: hostnamePath,
			before,
			after: `${request.hostname}\n`,
		});
	}

	const hostsPath = await resolveInside(tree, '/etc/hosts');
	const hosts = await readRegular(tree, hostsPath);
	const after = setHostsLine(hosts ?? '127.0.0.1\tlocalhost\n', request.fqdn, request.hostname);
	if (after !== hosts)
		changes.push({kind: 'write', what: 'hostname', guestPath: '/etc/hosts', hostPath: hostsPath, before: hosts, after});
	return changes;
}

async function sshKeyChanges(tree: GuestTree, request: IdentityRequest): Promise<GuestChange[]> {
	const hostDir = await resolveInside(tree, '/etc/ssh');
	const entries = (await tree.lstat(hostDir))?.type === 'directory' ? await tree.readdir(hostDir) : undefined;
	if (!entries) return [];
	const keyFiles = entries.filter((name) => /^ssh_host_.*_key(\.pub|-cert\.pub)?$/.test(name)).sort();
	const fingerprints: string[] = [];
	for (const name of keyFiles.filter((file) => file.endsWith('_key.pub'))) {
		const text = await readRegular(tree, path.join(hostDir, name));
		const fingerprint = text === undefined ? undefined : sshFingerprint(text);
		if (fingerprint) fingerprints.push(fingerprint);
		if (!keyFiles.includes(name.replace(/\.pub$/, ''))) fingerprints.push(`${name} without its private key`);
	}

	const known = new Set(request.generatedKeys);
	const allNew =
		fingerprints.length > 0 && fingerprints.length === known.size && fingerprints.every((print) => known.has(print));
	if (allNew) return [];
	const present = keyFiles.flatMap((name) => /^ssh_host_(\w+)_key$/.exec(name)?.[1] ?? []);
	const types = keyTypes.filter((type) => present.includes(type));
	return [
		{
			kind: 'ssh-keys',
			what: 'SSH host keys',
			guestDir: '/etc/ssh',
			hostDir,
			remove: keyFiles,
			types: types.length > 0 ? types : keyTypes,
		},
	];
}

async function machineIdChanges(tree: GuestTree): Promise<GuestChange[]> {
	const changes: GuestChange[] = [];
	// /etc/machine-id is emptied wherever it leads; the D-Bus copy only when it is a file of its own, not the usual link.
	for (const [guestPath, followLast] of [
		['/etc/machine-id', true],
		['/var/lib/dbus/machine-id', false],
	] as const) {
		const hostPath = await resolveInside(tree, guestPath, {followLast});
		const before = await readRegular(tree, hostPath);
		if (before !== undefined && before !== '')
			changes.push({kind: 'write', what: 'machine-id', guestPath, hostPath, before, after: ''});
	}

	return changes;
}

async function removals(tree: GuestTree, what: string, guestPaths: string[]): Promise<GuestChange[]> {
	const changes: GuestChange[] = [];
	for (const guestPath of guestPaths) {
		const hostPath = await resolveInside(tree, guestPath, {followLast: false});
		const stat = await tree.lstat(hostPath);
		if (stat && (stat.type === 'file' || stat.type === 'symlink')) {
			changes.push({
				kind: 'remove',
				what,
				guestPath,
				hostPath,
				before:
					stat.type === 'file' ? await readRegular(tree, hostPath) : `(symlink to ${await tree.readlink(hostPath)})\n`,
			});
		}
	}

	return changes;
}

async function leaseFiles(tree: GuestTree): Promise<string[]> {
	const found: string[] = [];
	for (const location of leaseLocations) {
		const dir = await resolveInside(tree, location.dir);
		if ((await tree.lstat(dir))?.type !== 'directory') continue;
		for (const name of (await tree.readdir(dir)).sort()) {
			if (location.name.test(name)) found.push(path.posix.join(location.dir, name));
		}
	}

	return found;
}

async function gitRevisionChanges(
	tree: GuestTree,
	request: IdentityRequest,
): Promise<{changes: GuestChange[]; notes: string[]}> {
	const hostPath = await resolveInside(tree, request.packagingFarmConf);
	const before = await readRegular(tree, hostPath);
	if (before === undefined)
		return {
			changes: [],
			notes: [`no ${request.packagingFarmConf} in the clone: not a packaging farm, GIT_REVISION left alone`],
		};
	const after = setGitRevisionLine(before, gitRevision);
	return {
		changes:
			after === before
				? []
				: [{kind: 'write', what: 'GIT_REVISION', guestPath: request.packagingFarmConf, hostPath, before, after}],
		notes: [],
	};
}

/**
 * The changes still to make in the guest (mounted at `root`, or read with
 * debugfs): none when it already is its own machine.
 */
export async function identityChanges(
	root: string | GuestTree,
	request: IdentityRequest,
): Promise<{changes: GuestChange[]; notes: string[]}> {
	const tree = typeof root === 'string' ? mountedTree(root) : root;
	const changes: GuestChange[] = [];
	const notes: string[] = [];
	if (request.setHostname) changes.push(...(await hostnameChanges(tree, request)));
	if (request.renewSshKeys) changes.push(...(await sshKeyChanges(tree, request)));
	if (request.emptyMachineId) changes.push(...(await machineIdChanges(tree)));
	if (request.removePersistentNet)
		changes.push(...(await removals(tree, 'persistent-net rules', ['/etc/udev/rules.d/70-persistent-net.rules'])));
	if (request.removeDhcpLeases) changes.push(...(await removals(tree, 'DHCP leases', await leaseFiles(tree))));
	if (request.setGitRevision) {
		const git = await gitRevisionChanges(tree, request);
		changes.push(...git.changes);
		notes.push(...git.notes);
	}

	return {changes, notes};
}

/**
 * Key files as one pattern, `ssh_host_{rsa,ecdsa}_key{,.pub}`, when every
 * type has both halves; else their names in a row.
 */
export function keyFilesPattern(names: readonly string[]): string {
	const types = [...new Set(names.map((name) => /^ssh_host_(.+)_key(\.pub)?$/.exec(name)?.[1]))];
	const whole = types.every(
		(type) =>
			type !== undefined && names.includes(`ssh_host_${type}_key`) && names.includes(`ssh_host_${type}_key.pub`),
	);
	if (!whole || names.length !== types.length * 2) return names.join(', ');
	return types.length === 1 ? `ssh_host_${types[0]}_key{,.pub}` : `ssh_host_{${types.join(',')}}_key{,.pub}`;
}

function lineCount(text: string | undefined): string {
	const count = splitLines(text ?? '').length;
	return `${count} line${count === 1 ? '' : 's'}`;
}

/**
 * How the plan shows the changes, short enough for a gate at 80x24: a diff
 * per written file (files written alike share one), one line per removed
 * file, the host keys in two lines (never a key's content).
 */
export function identityDiffs(changes: readonly GuestChange[], clone: string): FileDiff[] {
	const label = (guestPath: string) => `${clone}:${guestPath}`;
	const diffs: FileDiff[] = [];
	const written = new Map<string, Array<Extract<GuestChange, {kind: 'write'}>>>();
	for (const change of changes) {
		if (change.kind !== 'write') continue;
		const key = JSON.stringify([change.before, change.after]);
		written.set(key, [...(written.get(key) ?? []), change]);
	}

	const removed = changes.filter((change) => change.kind === 'remove');
	for (const change of changes) {
		if (change.kind === 'write') {
			const alike = written.get(JSON.stringify([change.before, change.after]))!;
			if (alike[0] !== change) continue;
			const paths = alike.map((each) => each.guestPath).join(', ');
			diffs.push({path: label(paths), diff: unifiedDiff(change.before, change.after, change.guestPath)});
		} else if (change.kind === 'remove' && change === removed[0]) {
			const lines = removed.map((each) => `-${each.guestPath} (${each.what}, ${lineCount(each.before)})`);
			const diff = ['--- a/ (copied from the source)', '+++ /dev/null', ...lines, ''].join('\n');
			diffs.push({path: `${clone}: removed`, diff});
		} else if (change.kind === 'ssh-keys') {
			const types = change.types.flatMap((type) => [`ssh_host_${type}_key`, `ssh_host_${type}_key.pub`]);
			const diff = [
				'--- a/etc/ssh/ssh_host_*',
				'+++ b/etc/ssh/ssh_host_*',
				...(change.remove.length > 0 ? [`-${keyFilesPattern(change.remove)} (copied from the source: removed)`] : []),
				`+${keyFilesPattern(types)} (generated for ${clone})`,
				'',
			].join('\n');
			diffs.push({path: label(`${change.guestDir}/ssh_host_*`), diff});
		}
	}

	return diffs;
}

export function sshKeygenArgv(hostDir: string, type: string, hostname: string): string[] {
	return [
		'ssh-keygen',
		'-q',
		'-t',
		type,
		'-N',
		'',
		'-C',
		`root@${hostname}`,
		'-f',
		path.join(hostDir, `ssh_host_${type}_key`),
	];
}

/**
 * Makes one change. Returns the fingerprints of the host keys it generated.
 * ssh-keygen writes straight into the guest's resolved /etc/ssh, where the
 * old keys were removed first: it creates the private key 0600, the public
 * one 0644, as sshd wants them.
 */
export async function applyChange(host: Host, change: GuestChange, hostname: string): Promise<string[]> {
	switch (change.kind) {
		case 'write':
			await host.writeFile(change.hostPath, change.after);
			return [];
		case 'remove':
			await host.remove(change.hostPath);
			return [];
		case 'ssh-keys': {
			for (const name of change.remove) await host.remove(path.join(change.hostDir, name));
			const fingerprints: string[] = [];
			for (const type of change.types) {
				await host.run(sshKeygenArgv(change.hostDir, type, hostname), {input: ''});
				const fingerprint = sshFingerprint(await host.readFile(path.join(change.hostDir, `ssh_host_${type}_key.pub`)));
				if (fingerprint) fingerprints.push(fingerprint);
			}

			return fingerprints;
		}
	}
}
