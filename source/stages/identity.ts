import path from 'node:path';
import {
	applyChange,
	identityChanges,
	identityDiffs,
	sshKeygenArgv,
	type IdentityRequest,
} from '../host/guest-identity.js';
import {
	attachLoop,
	detachLoop,
	findRootFilesystem,
	listMounts,
	loopArgv,
	loopsBackedBy,
	makeMountpoint,
	mountArgv,
	removeMountpoint,
	sameDevice,
	unmount,
	type RootFilesystem,
} from '../host/image.js';
import {debugfsTree} from '../host/guest-tree.js';
import {listLvs, type LogicalVolume} from '../host/lvm.js';
import {fqdn, type FarmSettings} from '../settings/schema.js';
import {StageError, type Plan, type Stage, type LookContext, type StageContext} from './types.js';
import {stageState, type StatesView} from './state.js';
import {cloneVolumeUuid, copyCompleted} from './copy.js';

/**
 * The mountpoint and loop device are recorded before they exist, so that a
 * run killed outright leaves the next one what to clean.
 */
type IdentityState = {
	loop: string;
	mountpoint: string;
	mounted: string;
	/** The host keys generated in the clone, for the run's end and `status`. */
	sshHostKeys: string[];
	completed: boolean;
};

const identityState = stageState<IdentityState>('identity');

/** The SSH host keys generated in the clone (their fingerprints), for what the run made. */
export const generatedSshHostKeys = (context: StatesView): string[] => {
	const keys = identityState.of(context).sshHostKeys;
	return Array.isArray(keys) ? keys.filter((key): key is string => typeof key === 'string') : [];
};

const skipHint =
	'skip this stage (s in the TUI) or turn the identity* settings off, and give the clone its own identity by hand before it boots';

function request(context: LookContext): IdentityRequest {
	const {settings} = context;
	const generated = identityState.of(context).sshHostKeys;
	return {
		hostname: settings.record.split('.')[0]!,
		fqdn: fqdn(settings),
		setHostname: settings.identityHostname,
		renewSshKeys: settings.identitySshKeys,
		emptyMachineId: settings.identityMachineId,
		removePersistentNet: settings.identityPersistentNet,
		removeDhcpLeases: settings.identityDhcpLeases,
		setGitRevision: settings.identityGitRevision,
		packagingFarmConf: settings.packagingFarmConf,
		generatedKeys: Array.isArray(generated) ? generated : [],
	};
}

const toggles = [
	'identityHostname',
	'identitySshKeys',
	'identityMachineId',
	'identityPersistentNet',
	'identityDhcpLeases',
	'identityGitRevision',
] as const;

function anyEnabled(settings: FarmSettings): boolean {
	return toggles.some((toggle) => settings[toggle]);
}

function mountpoint(context: LookContext): string {
	return path.join(context.stateDir, 'identity-mount');
}

/**
 * The copied volume, by the uuid the copy recorded (Ganeti renames it when it
 * adopts it). Refused when it is the source: that one is never mounted.
 */
async function cloneVolume(context: LookContext): Promise<LogicalVolume | undefined> {
	const {vg, sourceLv, targetLv} = context.settings;
	const lvs = await listLvs(context.host, vg);
	const uuid = cloneVolumeUuid(context);
	const target = (uuid && lvs.find((lv) => lv.uuid === uuid)) || lvs.find((lv) => lv.name === targetLv);
	const source = lvs.find((lv) => lv.name === sourceLv);
	if (!target || !source) return target;
	if (target.uuid === source.uuid || target.path === source.path || (await sameDevice(target.path, source.path))) {
		throw new StageError(`${target.vg}/${target.name} is the source volume: it is never mounted nor written`);
	}

	return target;
}

/**
 * Unmounts and detaches what an interrupted run of this stage left: a mount
 * on our mountpoint, loop devices reading the clone's volume. A loop device
 * on it mounted anywhere else is someone's, and stops the stage.
 */
async function cleanLeftovers(context: StageContext, target: LogicalVolume | undefined): Promise<void> {
	const {host} = context;
	const ours = mountpoint(context);
	const loops = target ? await loopsBackedBy(host, target.path) : [];
	const mounts = await listMounts(host);
	for (const loop of loops) {
		const elsewhere = mounts.find((entry) => entry.source === loop.name && entry.mountpoint !== ours);
		if (elsewhere) {
			throw new StageError(
				`${loop.name} reads the clone's volume and is mounted on ${elsewhere.mountpoint}, not by farmclone`,
				`umount ${elsewhere.mountpoint} && losetup --detach ${loop.name}`,
			);
		}
	}

	if (mounts.some((entry) => entry.mountpoint === ours)) {
		context.log(`unmounting ${ours}, left mounted by an interrupted run`);
		await unmount(host, ours);
	}

	for (const loop of loops) {
		context.log(`detaching ${loop.name}, left on the clone's volume by an interrupted run`);
		await detachLoop(host, loop.name);
	}

	await removeMountpoint(ours);
	if (identityState.of(context).loop || identityState.of(context).mountpoint) {
		await identityState.save(context, {loop: undefined, mountpoint: undefined, mounted: undefined});
	}
}

/**
 * Mounts the clone's root filesystem, runs `work` on it, and always unmounts
 * and detaches, whether `work` succeeds, fails or is stopped. The mountpoint
 * and loop device are in the journal before they exist, so that a run killed
 * outright leaves the next one what to clean.
 */
async function withGuest<T>(
	context: StageContext,
	target: LogicalVolume,
	root: RootFilesystem,
	readOnly: boolean,
	work: (mounted: string) => Promise<T>,
): Promise<T> {
	const {host} = context;
	const mounted = mountpoint(context);
	await makeMountpoint(mounted);
	await identityState.save(context, {mountpoint: mounted});
	let loop: string | undefined;
	let isMounted = false;
	try {
		loop = await attachLoop(host, target.path, root.region, readOnly);
		await identityState.save(context, {loop: loop});
		await host.run(mountArgv(loop, mounted, root.type, readOnly));
		isMounted = true;
		await identityState.save(context, {mounted: readOnly ? 'ro' : 'rw'});
		return await work(mounted);
	} finally {
		if (isMounted) await unmount(host, mounted);
		if (loop) await detachLoop(host, loop);
		await removeMountpoint(mounted);
		await identityState.save(context, {loop: undefined, mountpoint: undefined, mounted: undefined});
	}
}

/** Not ready: why, and the earlier stage that makes what is missing, when one does. */
type Readiness = {target: LogicalVolume; root: RootFilesystem} | {reason: string; awaits?: string};

/** Whether the clone's filesystem can be mounted and changed, or the sentence that says why not. */
async function readiness(context: LookContext): Promise<Readiness> {
	const {vg, targetLv} = context.settings;
	if (!copyCompleted(context)) return {reason: 'the copy has not completed', awaits: 'copy'};
	const target = await cloneVolume(context);
	if (!target) return {reason: `${vg}/${targetLv} does not exist`, awaits: 'create-volume'};
	if (process.getuid?.() !== 0) {
		return {
			reason: `mounting the clone's filesystem (losetup, mount) needs root; farmclone runs as uid ${process.getuid?.()}`,
		};
	}

	const found = await findRootFilesystem(context.host, target.path, target.size);
	if ('problem' in found) {
		return {reason: `${vg}/${target.name}: ${found.problem}; farmclone changes ext2/3/4 root filesystems only`};
	}

	return {target, root: found};
}

/**
 * What is still to change, read from the volume with debugfs: no loop
 * device, no mount, the device opened read-only. Looking never touches a
 * mount of another session (a live run's, in this very stage).
 */
async function pending(context: LookContext, ready: {target: LogicalVolume; root: RootFilesystem}) {
	return identityChanges(debugfsTree(context.host, ready.target.path, ready.root.region.offset), request(context));
}

function describe(whats: string[]): string {
	return [...new Set(whats)].join(', ');
}

export const identityStage: Stage = {
	id: 'identity',
	title: 'Make the clone its own machine',
	summary:
		'in the copied filesystem: hostname, new SSH host keys, empty machine-id, no pinned NIC or leases, GIT_REVISION=master',
	danger: 'none',
	skippable: true,
	async check(context) {
		if (!anyEnabled(context.settings)) return {status: 'done', detail: 'every identity change is off in the settings'};
		// A leftover mount of an interrupted run is apply's to clean (under the run's lock): looking leaves it.
		const target = await cloneVolume(context);
		if (target?.open) {
			if (identityState.of(context).completed === true) {
				return {status: 'done', detail: `done earlier; ${target.name} is in use (the VM?), not inspected`};
			}

			return {
				status: 'conflict',
				detail: `${target.vg}/${target.name} is open (the VM running?): its filesystem cannot be changed`,
			};
		}

		const ready = await readiness(context);
		if ('reason' in ready) {
			return ready.awaits
				? {status: 'pending', detail: ready.reason, awaits: ready.awaits}
				: {status: 'pending', detail: ready.reason};
		}

		const {changes} = await pending(context, ready);
		if (changes.length === 0)
			return {status: 'done', detail: `${ready.target.name} (${ready.root.region.where}) is its own machine`};
		return {status: 'pending', detail: `to change: ${describe(changes.map((change) => change.what))}`};
	},
	async plan(context) {
		const plan: Plan = {commands: [], diffs: [], notes: []};
		if (!anyEnabled(context.settings)) return {...plan, notes: ['every identity change is off in the settings']};
		const ready = await readiness(context);
		if ('reason' in ready) {
			// Waiting for the copy is not a dead end: the filesystem is read once it is there.
			const then = ready.awaits ? 'its changes are planned once it is there' : `it stops here; ${skipHint}`;
			return {...plan, notes: [ready.reason, then]};
		}

		const {target, root} = ready;
		const {changes, notes} = await pending(context, ready);
		const clone = request(context).hostname;
		const mounted = mountpoint(context);
		const keygen = changes.flatMap((change) =>
			change.kind === 'ssh-keys' ? change.types.map((type) => sshKeygenArgv(`${mounted}/etc/ssh`, type, clone)) : [],
		);
		return {
			commands: [
				loopArgv(target.path, root.region, false),
				mountArgv('<loop device>', mounted, root.type, false),
				...keygen,
				['umount', mounted],
				['losetup', '--detach', '<loop device>'],
			],
			diffs: identityDiffs(changes, clone),
			notes: [`the ${root.type} filesystem on ${root.region.where} of ${target.vg}/${target.name}`, ...notes],
		};
	},
	async apply(context) {
		if (!anyEnabled(context.settings)) return;
		await cleanLeftovers(context, await cloneVolume(context));
		const ready = await readiness(context);
		if ('reason' in ready) throw new StageError(ready.reason, skipHint);
		if (ready.target.open) throw new StageError(`${ready.target.vg}/${ready.target.name} is open: not mounting it`);
		const wanted = request(context);
		await withGuest(context, ready.target, ready.root, false, async (mounted) => {
			const {changes} = await identityChanges(mounted, wanted);
			const generated: string[] = [];
			for (const change of changes) {
				if (context.signal.aborted) throw new StageError('stopped: the changes made so far stay, the rest is redone');
				generated.push(...(await applyChange(context.host, change, wanted.hostname)));
				context.log(
					`${change.what}: ${change.kind === 'ssh-keys' ? `generated ${change.types.join(', ')}` : `${change.kind} ${change.guestPath}`}`,
				);
				if (change.kind === 'ssh-keys') await identityState.save(context, {sshHostKeys: generated});
			}
		});
		await identityState.save(context, {completed: true});
	},
	async verify(context) {
		if (!anyEnabled(context.settings)) return;
		const ready = await readiness(context);
		if ('reason' in ready) throw new StageError(ready.reason, skipHint);
		const {changes} = await pending(context, ready);
		if (changes.length > 0) throw new StageError(`still to change: ${describe(changes.map((change) => change.what))}`);
	},
	async undoPlan() {
		return {commands: [], diffs: [], notes: ["the changed filesystem goes with the clone's volume: nothing to undo"]};
	},
	async undo(context) {
		// Only a leftover mount would keep the volume's own undo from removing it.
		await cleanLeftovers(context, await cloneVolume(context));
	},
};
