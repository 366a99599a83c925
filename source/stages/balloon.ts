import {findInstance, ganetiVersion, hasRuntimeMemory, runGanetiJob, toMebibytes} from '../host/ganeti.js';
import {monitorCommand, parseBalloon} from '../host/qemu-monitor.js';
import {fqdn, monitorSocketPath} from '../settings/schema.js';
import {StageError, type Stage, type LookContext} from './types.js';
import {stageState} from './state.js';

/** The balloon target this run asked QEMU for, in MiB. */
type BalloonState = {requested: number};

const balloonState = stageState<BalloonState>('balloon');

async function runtimeMemorySupported(context: LookContext): Promise<boolean> {
	return hasRuntimeMemory(await ganetiVersion(context.host));
}

function targetMiB(context: LookContext): number {
	return toMebibytes(context.settings.balloonMemory);
}

export const balloonStage: Stage = {
	id: 'balloon',
	title: 'Balloon memory down',
	summary: 'gnt-instance modify --runtime-memory (or the QEMU monitor on old Ganeti), then info balloon',
	danger: 'none',
	skippable: true,
	async check(context) {
		const instance = await findInstance(context.host, fqdn(context.settings), context.log);
		if (instance?.status !== 'running') {
			return {
				status: 'conflict',
				detail: `${fqdn(context.settings)} is not running: nothing to balloon`,
				awaits: 'start-vm',
			};
		}

		return balloonState.of(context).requested === targetMiB(context)
			? {status: 'done', detail: `balloon target ${targetMiB(context)} MiB requested`}
			: {status: 'pending', detail: `memory not ballooned to ${context.settings.balloonMemory} yet`};
	},
	async plan(context) {
		const name = fqdn(context.settings);
		const command = (await runtimeMemorySupported(context))
			? ['gnt-instance', 'modify', '--runtime-memory', context.settings.balloonMemory, name]
			: ['balloon', String(targetMiB(context)), '->', monitorSocketPath(context.settings)];
		return {commands: [command], diffs: [], notes: ["then `info balloon` on the QEMU monitor shows the guest's size"]};
	},
	async apply(context) {
		const name = fqdn(context.settings);
		if (await runtimeMemorySupported(context)) {
			await runGanetiJob(
				context.host,
				['gnt-instance', 'modify', '--runtime-memory', context.settings.balloonMemory, name],
				context.log,
			);
		} else {
			context.log(`monitor: balloon ${targetMiB(context)}`);
			await monitorCommand(monitorSocketPath(context.settings), `balloon ${targetMiB(context)}`);
		}

		await balloonState.save(context, {requested: targetMiB(context)});
	},
	async verify(context) {
		const answer = await monitorCommand(monitorSocketPath(context.settings), 'info balloon');
		const actual = parseBalloon(answer);
		if (actual === undefined) throw new StageError(`the QEMU monitor does not report a balloon: ${answer}`);
		if (actual > targetMiB(context)) {
			// The guest's balloon driver gives the memory back at its own pace; QEMU has the target.
			context.log(
				`guest reports ${actual} MiB; it shrinks towards ${targetMiB(context)} MiB as its driver releases memory`,
			);
		} else {
			context.log(`guest at ${actual} MiB`);
		}
	},
	async undo() {
		// Memory comes back with the instance's removal.
	},
};
