import {getLv, removeArgv} from '../host/lvm.js';
import {StageError, type Stage, type LookContext} from './types.js';
import {stageState} from './state.js';
import {ourSnapshotUuid} from './snapshot.js';
import {copyCompleted} from './copy.js';

type DropSnapshotState = {dropped: boolean};

const dropSnapshotState = stageState<DropSnapshotState>('drop-snapshot');

/** Only the snapshot this run made, recognised by the uuid recorded when it was created. */
async function ourSnapshot(context: LookContext) {
	const {vg, snapshotLv} = context.settings;
	const snapshot = await getLv(context.host, vg, snapshotLv);
	const ours = snapshot !== undefined && ourSnapshotUuid(context) === snapshot.uuid;
	return {snapshot, ours};
}

export const dropSnapshotStage: Stage = {
	id: 'drop-snapshot',
	title: 'Drop the snapshot',
	summary: 'lvremove the snapshot this run made, once the copy is done',
	danger: 'none',
	skippable: true,
	async check(context) {
		const {vg, snapshotLv} = context.settings;
		const {snapshot, ours} = await ourSnapshot(context);
		if (!snapshot) {
			return ourSnapshotUuid(context) !== undefined
				? {status: 'done', detail: `${vg}/${snapshotLv} is gone`}
				: {status: 'pending', detail: 'no snapshot made yet', awaits: 'snapshot'};
		}

		if (!ours) return {status: 'conflict', detail: `${vg}/${snapshotLv} was not created by this run: left alone`};
		if (snapshot.open) {
			return {status: 'conflict', detail: `${vg}/${snapshotLv} is open (a copy still running?)`, awaits: 'copy'};
		}

		return {status: 'pending', detail: `${vg}/${snapshotLv} is ${snapshot.snapPercent ?? 0}% full`};
	},
	async plan(context) {
		const {vg, snapshotLv} = context.settings;
		return {commands: [removeArgv(vg, snapshotLv)], diffs: [], notes: []};
	},
	async apply(context) {
		const {vg, snapshotLv} = context.settings;
		const {snapshot, ours} = await ourSnapshot(context);
		if (!snapshot) return;
		if (!ours) throw new StageError(`${vg}/${snapshotLv} was not created by this run: not removing it`);
		if (!copyCompleted(context)) {
			throw new StageError('the copy has not completed: the snapshot is still needed', 'run the copy stage first');
		}

		if (snapshot.open) {
			throw new StageError(`${vg}/${snapshotLv} is open: something still reads it`, 'fuser -v ' + snapshot.path);
		}

		await context.host.run(removeArgv(vg, snapshotLv));
		await dropSnapshotState.save(context, {dropped: true});
	},
	async verify(context) {
		const {vg, snapshotLv} = context.settings;
		if (await getLv(context.host, vg, snapshotLv)) throw new StageError(`${vg}/${snapshotLv} is still there`);
	},
	async undoPlan() {
		return {commands: [], diffs: [], notes: ['a dropped snapshot is not brought back; nothing to undo']};
	},
	async undo() {},
};
