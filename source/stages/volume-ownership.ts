import {instanceVolumes, volumeOwner, type InstanceVolume} from '../host/ganeti.js';
import type {Host} from '../host/host.js';
import type {LogicalVolume} from '../host/lvm.js';
import {fqdn, type FarmSettings} from '../settings/schema.js';
import {StageError, type Facts, type StageContext} from './types.js';
import {farmcloneCommand} from '../host/self.js';

export const noSuchInstance = 'no such Ganeti instance in the cluster';

export type VolumeField = 'sourceLv' | 'snapshotLv' | 'targetLv';
export type VolumeProblem = {field: VolumeField | 'sourceInstance'; reason: string};

/**
 * Our target once Ganeti owns it: the run that created it went on to make
 * the clone's instance, which adopted (and renamed) it.
 */
function isOurClone(settings: FarmSettings, facts: Facts, instance: string): boolean {
	const made = facts['ganeti-instance.created'] === true || facts['ganeti-instance.adding'] === true;
	return made && typeof facts['create-volume.uuid'] === 'string' && instance === fqdn(settings);
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
	host: Host,
	settings: FarmSettings,
	facts: Facts,
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
	const created = facts['create-volume.uuid'];
	const ours = typeof created === 'string' && lvs.some((lv) => lv.name === targetLv && lv.uuid === created);
	if (targetOwner && !ours && !isOurClone(settings, facts, targetOwner)) {
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
		problems = await volumeOwnershipProblems(context.host, context.settings, context.facts, lvs, fields);
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
