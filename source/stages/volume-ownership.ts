import {instanceVolumes, volumeOwner, type InstanceVolume} from '../host/ganeti.js';
import type {ReadOnlyHost} from '../host/host.js';
import {isDeviceMounted} from '../host/image.js';
import {formatBytes, getVg, listLvs, parseSize, roundUpToExtent, type LogicalVolume} from '../host/lvm.js';
import {fqdn, type FarmSettings} from '../settings/schema.js';
import {StageError, type PreflightContext, type StageContext} from './types.js';
import type {StatesView} from './state.js';
import {farmcloneCommand} from '../host/self.js';
import {copyCompleted} from './copy.js';
import {createdVolumeUuid} from './create-volume.js';
import {instanceMade} from './ganeti-instance.js';
import {ourSnapshotUuid} from './snapshot.js';

export const noSuchInstance = 'no such Ganeti instance in the cluster';

export type VolumeField = 'sourceLv' | 'snapshotLv' | 'targetLv';
export type VolumeProblem = {field: VolumeField | 'sourceInstance'; reason: string};

/**
 * Our target once Ganeti owns it: the run that created it went on to make
 * the clone's instance, which adopted (and renamed) it.
 */
function isOurClone(settings: FarmSettings, view: StatesView, instance: string): boolean {
	return instanceMade(view) && typeof createdVolumeUuid(view) === 'string' && instance === fqdn(settings);
}

/**
 * Whose volumes the settings name, from Ganeti's configuration: the source
 * must be a disk of the source instance (the only volume ever snapshotted),
 * and neither the snapshot nor the target may be a disk of any instance
 * (they are written to), unless the target is this run's own. `lvs` is
 * `lvs` of the settings' VG, to know this run's target by its uuid. Throws
 * when Ganeti cannot be asked.
 */
export async function volumeOwnershipProblems(
	host: ReadOnlyHost,
	settings: FarmSettings,
	view: StatesView,
	lvs: LogicalVolume[],
	fields: readonly VolumeField[] = ['sourceLv', 'snapshotLv', 'targetLv'],
): Promise<VolumeProblem[]> {
	const {vg, sourceInstance, sourceLv, snapshotLv, targetLv} = settings;
	const volumes = await instanceVolumes(host);
	const problems: VolumeProblem[] = [];
	const names = (disks: InstanceVolume[]) => disks.map((disk) => `${disk.vg}/${disk.lv}`).join(', ');
	if (fields.includes('sourceLv')) {
		const disks = volumes.get(sourceInstance);
		if (!disks) {
			problems.push({field: 'sourceInstance', reason: noSuchInstance});
		} else if (!disks.some((disk) => disk.vg === vg && disk.lv === sourceLv)) {
			const owner = volumeOwner(volumes, vg, sourceLv);
			const whose = owner ? `: it is a disk of Ganeti instance ${owner}` : '';
			const has = disks.length > 0 ? `its disks are ${names(disks)}` : 'it has no LVM disk';
			problems.push({
				field: 'sourceLv',
				reason: `${vg}/${sourceLv} is not a disk of ${sourceInstance} (${has})${whose}; only the source instance's disk is snapshotted`,
			});
		}
	}

	const snapshotOwner = fields.includes('snapshotLv') ? volumeOwner(volumes, vg, snapshotLv) : undefined;
	if (snapshotOwner) {
		problems.push({
			field: 'snapshotLv',
			reason: `${vg}/${snapshotLv} is a disk of Ganeti instance ${snapshotOwner}: the snapshot needs a name of its own`,
		});
	}

	const targetOwner = fields.includes('targetLv') ? volumeOwner(volumes, vg, targetLv) : undefined;
	const created = createdVolumeUuid(view);
	const ours = typeof created === 'string' && lvs.some((lv) => lv.name === targetLv && lv.uuid === created);
	if (targetOwner && !ours && !isOurClone(settings, view, targetOwner)) {
		problems.push({
			field: 'targetLv',
			reason: `${vg}/${targetLv} is a disk of Ganeti instance ${targetOwner}: it is never written to`,
		});
	}

	return problems;
}

/**
 * The same check in a stage, right before it writes: the host may have
 * changed since the preflight (an admin at another shell, a long copy).
 */
export async function assertVolumeOwnership(
	context: StageContext,
	lvs: LogicalVolume[],
	fields: readonly VolumeField[],
): Promise<void> {
	// Without Ganeti no instance owns a volume; the preflight, which refuses then, has had its say.
	if (!(await context.host.which('gnt-instance'))) {
		context.log('gnt-instance is not installed here: no Ganeti instance can own a volume');
		return;
	}

	let problems: VolumeProblem[];
	try {
		problems = await volumeOwnershipProblems(context.host, context.settings, context, lvs, fields);
	} catch (error) {
		throw new StageError(`cannot tell which volumes Ganeti instances own: ${(error as Error).message}`);
	}

	if (problems.length > 0) {
		throw new StageError(
			problems.map((problem) => `${problem.field}: ${problem.reason}`).join('\n'),
			`choose other volumes: ${farmcloneCommand(['farm', 'edit', context.settings.name])}`,
		);
	}
}

/**
 * The volumes, for the snapshot, target and copy stages: snapshot only the
 * source instance's disk, write only to a volume this run creates and no
 * instance owns, and room for both in the VG.
 */
export async function volumesPreflight(context: PreflightContext): Promise<void> {
	const {host, settings, add} = context;
	const {vg, sourceLv, snapshotLv, targetLv, snapshotSize} = settings;
	const created = createdVolumeUuid(context);
	// Side by side, as each is a process of its own; the preflight's look runs each listing once for all its users.
	const reads = {lvs: listLvs(host, vg), volumes: instanceVolumes(host), group: created ? undefined : getVg(host, vg)};
	for (const read of Object.values(reads)) read?.catch(() => undefined);
	let lvs: LogicalVolume[];
	try {
		lvs = await reads.lvs;
	} catch (error) {
		add('vg', `lvs cannot list it: ${(error as Error).message}`);
		return;
	}

	const source = lvs.find((lv) => lv.name === sourceLv);
	const snapshot = lvs.find((lv) => lv.name === snapshotLv);
	const target = lvs.find((lv) => lv.name === targetLv);
	if (!source && !copyCompleted(context)) add('sourceLv', `no such volume in ${vg} (lvs)`);
	if (source?.snapshot) add('sourceLv', `is a snapshot of ${source.origin}, not a VM's disk`);
	let owners: VolumeProblem[] = [];
	try {
		owners = await volumeOwnershipProblems(host, settings, context, lvs);
	} catch (error) {
		add('sourceInstance', `gnt-instance info fails: ${(error as Error).message}`);
	}

	for (const problem of owners) add(problem.field, problem.reason);
	// An instance's disk is said so once, not also as a volume that merely exists.
	const owned = (field: VolumeField) => owners.some((problem) => problem.field === field);
	if (snapshot && ourSnapshotUuid(context) !== snapshot.uuid && !owned('snapshotLv')) {
		add('snapshotLv', `${vg}/${snapshotLv} already exists and this run did not create it`);
	}

	// A target of this run may be open: the detached copy of an earlier session writing it.
	if (target && created !== target.uuid && !owned('targetLv')) {
		const busy = target.open || (await isDeviceMounted(host, target.path)) ? ', and it is open or mounted' : '';
		add('targetLv', `${vg}/${targetLv} already exists and this run did not create it${busy}: it is never written to`);
	}

	if (target || created || !source) return;
	try {
		const group = await reads.group!;
		const needs =
			(snapshot ? 0 : roundUpToExtent(parseSize(snapshotSize), group.extentSize)) +
			roundUpToExtent(source.size, group.extentSize);
		if (group.free < needs) {
			add(
				'vg',
				`${formatBytes(group.free)} free, but the snapshot (${snapshotSize}) and the target (${formatBytes(source.size)}) need ${formatBytes(needs)}`,
			);
		}
	} catch (error) {
		add('vg', `vgs cannot read it: ${(error as Error).message}`);
	}
}
