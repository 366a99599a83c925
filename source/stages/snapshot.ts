import {
	formatBytes,
	getVg,
	listLvs,
	parseSize,
	removeArgv,
	roundUpToExtent,
	snapshotArgv,
	type LogicalVolume,
} from '../host/lvm.js';
import {assertVolumeOwnership, volumesPreflight} from './volume-ownership.js';
import {StageError, StalePlanError, type CheckResult, type Stage, type LookContext} from './types.js';
import {stageState, type StatesView} from './state.js';
import {copyCompleted} from './copy.js';

/** The snapshot this run made, by uuid; `creating` is announced before its lvcreate. */
type SnapshotState = {creating: boolean; created: boolean; uuid: string};

const snapshotState = stageState<SnapshotState>('snapshot');

/** The snapshot this run made (its uuid), once created: a volume of that name is ours only then. */
export const ourSnapshotUuid = (context: StatesView): string | undefined => {
	const state = snapshotState.of(context);
	return state.created === true ? state.uuid : undefined;
};

function command(context: LookContext): string[] {
	const {vg, sourceLv, snapshotLv, snapshotSize} = context.settings;
	return snapshotArgv(vg, sourceLv, snapshotLv, snapshotSize);
}

/** Ours: created by this farm's run, known by the uuid LVM gave it (a name can be reused, a uuid cannot). */
function isOurs(context: LookContext, lv: LogicalVolume): boolean {
	return snapshotState.of(context).created === true && snapshotState.of(context).uuid === lv.uuid;
}

/** farmclone died between its lvcreate and recording the uuid: the snapshot of that name is the one it made. */
function leftByInterruptedCreate(context: LookContext, lv: LogicalVolume): boolean {
	return snapshotState.of(context).creating === true && snapshotState.of(context).uuid === undefined && lv.snapshot;
}

/** The snapshot and then the target volume (as big as the source) must both fit in the VG's free extents. */
async function roomProblem(context: LookContext, lvs: LogicalVolume[], source: LogicalVolume) {
	const {vg, snapshotSize, targetLv} = context.settings;
	const group = await getVg(context.host, vg);
	const snapshot = roundUpToExtent(parseSize(snapshotSize), group.extentSize);
	const target = lvs.some((lv) => lv.name === targetLv) ? 0 : roundUpToExtent(source.size, group.extentSize);
	if (group.free >= snapshot + target) return undefined;
	const bytes = (size: number) => `${size} bytes (${formatBytes(size)})`;
	return (
		`volume group ${vg} has ${group.free} bytes free (${formatBytes(group.free)}), but the snapshot needs ` +
		`${bytes(snapshot)} and the target ${bytes(target)}: ${bytes(snapshot + target)} in all`
	);
}

async function inspect(context: LookContext): Promise<CheckResult> {
	const {vg, sourceLv, snapshotLv} = context.settings;
	if (!sourceLv) return {status: 'conflict', detail: 'no source LV in the settings (sourceLv)'};
	const lvs = await listLvs(context.host, vg);
	const snapshot = lvs.find((lv) => lv.name === snapshotLv);
	if (snapshot) {
		if (!snapshot.snapshot || snapshot.origin !== sourceLv) {
			const what = snapshot.snapshot ? `a snapshot of ${snapshot.origin}` : 'not a snapshot';
			return {status: 'conflict', detail: `${vg}/${snapshotLv} exists and is ${what}`};
		}

		if (!isOurs(context, snapshot) && leftByInterruptedCreate(context, snapshot)) {
			return {status: 'pending', detail: `${vg}/${snapshotLv} was made by this run's interrupted lvcreate: adopted`};
		}

		if (!isOurs(context, snapshot)) {
			const detail = `${vg}/${snapshotLv} is a snapshot of ${sourceLv} that this run did not create`;
			return {status: 'conflict', detail: `${detail}: remove it (lvremove) or choose another name`};
		}

		if (snapshot.invalid) return {status: 'pending', detail: `${vg}/${snapshotLv} overflowed: recreate it`};
		return {status: 'done', detail: `${vg}/${snapshotLv} exists, ${snapshot.snapPercent ?? 0}% full`};
	}

	if (copyCompleted(context)) {
		return {status: 'done', detail: 'the snapshot served the copy and was dropped'};
	}

	const source = lvs.find((lv) => lv.name === sourceLv);
	if (!source) return {status: 'conflict', detail: `source volume ${vg}/${sourceLv} not found`};
	const problem = await roomProblem(context, lvs, source);
	if (problem) return {status: 'conflict', detail: problem};
	return {status: 'pending', detail: `no snapshot ${vg}/${snapshotLv} yet`};
}

export const snapshotStage: Stage = {
	id: 'snapshot',
	title: 'Snapshot the source disk',
	summary: 'lvcreate --snapshot of the source VM disk, so the copy reads a disk frozen in time',
	danger: 'confirm',
	skippable: false,
	preflight: [volumesPreflight],
	check: inspect,
	async plan(context) {
		const {vg, snapshotLv, snapshotSize} = context.settings;
		const lvs = await listLvs(context.host, vg);
		const existing = lvs.find((lv) => lv.name === snapshotLv);
		return {
			commands: [...(existing?.invalid ? [removeArgv(vg, snapshotLv)] : []), command(context)],
			diffs: [],
			notes: [`${snapshotSize} of copy-on-write space: writes of the running VM during the copy must fit in it`],
			values: {snapshot: existing?.uuid ?? 'absent'},
		};
	},
	async apply(context, approved) {
		const {vg, sourceLv, snapshotLv} = context.settings;
		const lvs = await listLvs(context.host, vg);
		const existing = lvs.find((lv) => lv.name === snapshotLv);
		const planned = approved?.values?.['snapshot'];
		if (planned !== undefined && planned !== (existing?.uuid ?? 'absent')) {
			throw new StalePlanError(
				existing ? `${vg}/${snapshotLv} appeared (uuid ${existing.uuid})` : `${vg}/${snapshotLv} is gone`,
			);
		}
		if (existing && !isOurs(context, existing) && leftByInterruptedCreate(context, existing)) {
			await snapshotState.save(context, {created: true, uuid: existing.uuid, creating: false});
		}

		if (existing) {
			if (!isOurs(context, existing)) throw new StageError(`${vg}/${snapshotLv} exists and is not ours`);
			if (!existing.invalid) return;
			context.log(`removing ${vg}/${snapshotLv}: it overflowed, its content is lost`);
			await context.host.run(removeArgv(vg, snapshotLv));
		}

		const source = lvs.find((lv) => lv.name === sourceLv);
		if (!source) throw new StageError(`source volume ${vg}/${sourceLv} not found`);
		const problem = await roomProblem(context, lvs, source);
		if (problem) throw new StageError(problem, 'free space in the volume group, or lower snapshotSize');
		// The origin must still be the source instance's disk, whatever changed since the preflight.
		await assertVolumeOwnership(context, lvs, ['sourceLv', 'snapshotLv']);
		// Announced first: a farmclone killed right after lvcreate knows the snapshot it finds is its own.
		await snapshotState.save(context, {creating: true, uuid: undefined, created: false});
		try {
			await context.host.run(command(context));
		} catch (error) {
			await snapshotState.save(context, {creating: false});
			throw error;
		}

		const created = (await listLvs(context.host, vg)).find((lv) => lv.name === snapshotLv);
		if (!created) throw new StageError(`lvcreate succeeded but lvs does not show ${vg}/${snapshotLv}`);
		await snapshotState.save(context, {created: true, uuid: created.uuid, creating: false});
	},
	async verify(context) {
		const {vg, sourceLv, snapshotLv} = context.settings;
		const snapshot = (await listLvs(context.host, vg)).find((lv) => lv.name === snapshotLv);
		if (!snapshot?.snapshot || snapshot.origin !== sourceLv || snapshot.invalid) {
			throw new StageError(
				`${vg}/${snapshotLv} is not a valid snapshot of ${sourceLv} (${snapshot?.attr ?? 'missing'})`,
			);
		}
	},
	async undoPlan(context) {
		const {vg, snapshotLv} = context.settings;
		const snapshot = (await listLvs(context.host, vg)).find((lv) => lv.name === snapshotLv);
		return snapshot && isOurs(context, snapshot)
			? {commands: [removeArgv(vg, snapshotLv)], diffs: [], notes: []}
			: {commands: [], diffs: [], notes: ['no snapshot of this run left to remove']};
	},
	async undo(context) {
		const {vg, snapshotLv} = context.settings;
		const snapshot = (await listLvs(context.host, vg)).find((lv) => lv.name === snapshotLv);
		if (!snapshot) return;
		if (!isOurs(context, snapshot)) {
			context.log(`${vg}/${snapshotLv} was not created by this run: left alone`);
			return;
		}

		if (snapshot.open) throw new StageError(`${vg}/${snapshotLv} is open (a copy still reading it?)`);
		await context.host.run(removeArgv(vg, snapshotLv));
	},
};
