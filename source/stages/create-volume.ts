import {createArgv, formatBytes, getVg, listLvs, removeArgv, type LogicalVolume} from '../host/lvm.js';
import {assertVolumeOwnership} from './volume-ownership.js';
import {StageError, StalePlanError, type CheckResult, type Stage, type LookContext} from './types.js';
import {stageState, type StatesView} from './state.js';
import {volumesPreflight} from './volume-ownership.js';

/** The target volume this run made, by uuid (Ganeti renames it), and its size; `creating` before lvcreate. */
type CreateVolumeState = {creating: boolean; created: boolean; uuid: string; size: number};

const createVolumeState = stageState<CreateVolumeState>('create-volume');

/** The uuid of the volume this run created, whatever its name is now. */
export const createdVolumeUuid = (context: StatesView): string | undefined => createVolumeState.of(context).uuid;

type Found = {lvs: LogicalVolume[]; source?: LogicalVolume; target?: LogicalVolume; ours?: LogicalVolume};

/**
 * The volume this run created is found by the uuid LVM gave it: Ganeti
 * renames the volume it adopts, and a volume of the same name made by someone
 * else is not ours.
 */
async function find(context: LookContext): Promise<Found> {
	const {vg, sourceLv, targetLv} = context.settings;
	const lvs = await listLvs(context.host, vg);
	const uuid = createVolumeState.of(context).uuid;
	return {
		lvs,
		source: lvs.find((lv) => lv.name === sourceLv),
		target: lvs.find((lv) => lv.name === targetLv),
		ours: uuid ? lvs.find((lv) => lv.uuid === uuid) : undefined,
	};
}

/** farmclone died between its lvcreate and recording the uuid: the volume of that name is the one it made. */
function leftByInterruptedCreate(context: LookContext, found: Found): LogicalVolume | undefined {
	const {target, source} = found;
	if (createVolumeState.of(context).creating !== true || createVolumeState.of(context).uuid !== undefined) return;
	return target && source && target.size >= source.size && !target.snapshot ? target : undefined;
}

function expectedSize(context: LookContext, source: LogicalVolume | undefined): number | undefined {
	const recorded = createVolumeState.of(context).size;
	return typeof recorded === 'number' ? recorded : source?.size;
}

export const createVolumeStage: Stage = {
	id: 'create-volume',
	title: 'Create the target volume',
	summary: 'lvcreate a volume exactly as big as the source disk, size read from LVM in bytes',
	danger: 'confirm',
	skippable: false,
	preflight: [volumesPreflight],
	async check(context): Promise<CheckResult> {
		const {vg, sourceLv, targetLv} = context.settings;
		const found = await find(context);
		const {source, target, ours} = found;
		const size = expectedSize(context, source);
		if (!ours && leftByInterruptedCreate(context, found)) {
			return {status: 'pending', detail: `${vg}/${targetLv} was made by this run's interrupted lvcreate: adopted`};
		}

		if (ours) {
			if (size !== undefined && ours.size < size) {
				return {status: 'conflict', detail: `${vg}/${ours.name} is ${ours.size} bytes, smaller than ${size}`};
			}

			const renamed = ours.name === targetLv ? '' : ` (now named ${ours.name})`;
			return {status: 'done', detail: `${vg}/${targetLv} created, ${formatBytes(ours.size)}${renamed}`};
		}

		if (target) {
			return {
				status: 'conflict',
				detail: `${vg}/${targetLv} already exists (${formatBytes(target.size)}) and this run did not create it`,
			};
		}

		if (!source) return {status: 'pending', detail: `source ${vg}/${sourceLv} not found yet`};
		return {status: 'pending', detail: `will create ${vg}/${targetLv} of ${formatBytes(source.size)}`};
	},
	async plan(context) {
		const {vg, sourceLv, targetLv} = context.settings;
		const {source, target} = await find(context);
		if (!source) throw new StageError(`source volume ${vg}/${sourceLv} not found`);
		return {
			commands: [createArgv(vg, targetLv, source.size)],
			diffs: [],
			notes: [`size of ${vg}/${sourceLv} as lvs reports it: ${source.size} bytes (${formatBytes(source.size)})`],
			values: {target: target?.uuid ?? 'absent', size: String(source.size)},
		};
	},
	async apply(context, approved) {
		const {vg, sourceLv, targetLv} = context.settings;
		const found = await find(context);
		const {source, target, ours} = found;
		const planned = approved?.values;
		if (planned?.['target'] !== undefined && planned['target'] !== (target?.uuid ?? 'absent')) {
			throw new StalePlanError(
				target ? `${vg}/${targetLv} appeared (uuid ${target.uuid})` : `${vg}/${targetLv} is gone`,
			);
		}

		if (planned?.['size'] !== undefined && source && planned['size'] !== String(source.size)) {
			throw new StalePlanError(`${vg}/${sourceLv} is ${source.size} bytes now, not ${planned['size']}`);
		}
		if (ours) return;
		const leftOver = leftByInterruptedCreate(context, found);
		if (leftOver) {
			await createVolumeState.save(context, {
				created: true,
				uuid: leftOver.uuid,
				size: source!.size,
				creating: false,
			});
			return;
		}

		if (target) throw new StageError(`${vg}/${targetLv} already exists and this run did not create it`);
		if (!source) throw new StageError(`source volume ${vg}/${sourceLv} not found`);
		const group = await getVg(context.host, vg);
		if (group.free < source.size) {
			throw new StageError(
				`volume group ${vg} has ${group.free} bytes free (${formatBytes(group.free)}), ` +
					`the target needs ${source.size} (${formatBytes(source.size)})`,
			);
		}

		await assertVolumeOwnership(context, found.lvs, ['targetLv']);
		// Announced first: a farmclone killed right after lvcreate knows the volume it finds is its own.
		await createVolumeState.save(context, {creating: true});
		try {
			await context.host.run(createArgv(vg, targetLv, source.size));
		} catch (error) {
			await createVolumeState.save(context, {creating: false});
			throw error;
		}

		const created = (await find(context)).target;
		if (!created) throw new StageError(`lvcreate succeeded but lvs does not show ${vg}/${targetLv}`);
		await createVolumeState.save(context, {
			created: true,
			uuid: created.uuid,
			size: source.size,
			creating: false,
		});
	},
	async verify(context) {
		const {vg, targetLv} = context.settings;
		const {source, ours} = await find(context);
		const size = expectedSize(context, source) ?? 0;
		if (!ours) throw new StageError(`${vg}/${targetLv} created by this run is not there`);
		if (ours.size < size) throw new StageError(`${vg}/${ours.name} is ${ours.size} bytes, expected ${size}`);
	},
	async undoPlan(context) {
		const {vg, targetLv} = context.settings;
		const {ours} = await find(context);
		if (!ours) return {commands: [], diffs: [], notes: ['no volume of this run left to remove']};
		if (ours.name !== targetLv) return {commands: [], diffs: [], notes: [`${vg}/${ours.name} is a Ganeti disk now`]};
		return {commands: [removeArgv(vg, targetLv, '-f')], diffs: [], notes: ['only the volume this run created']};
	},
	async undo(context) {
		const {vg, targetLv} = context.settings;
		const {ours} = await find(context);
		if (!ours) return;
		if (ours.name !== targetLv) {
			// Adopted: it is the Ganeti instance's disk now, removed with the instance.
			context.log(`${vg}/${ours.name} belongs to a Ganeti instance now: left to the instance's removal`);
			return;
		}

		if (ours.open) throw new StageError(`${vg}/${targetLv} is open (a copy or a VM is using it): not removed`);
		await context.host.run(removeArgv(vg, targetLv, '-f'));
	},
};
