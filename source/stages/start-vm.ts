import {findInstance, runGanetiJob} from '../host/ganeti.js';
import {fqdn} from '../settings/schema.js';
import {StageError, type Stage} from './types.js';
import {stageState} from './state.js';

type StartVmState = {started: boolean};

const startVmState = stageState<StartVmState>('start-vm');

export const startVmStage: Stage = {
	id: 'start-vm',
	title: 'Start the VM',
	summary: 'gnt-instance start, then check it runs',
	danger: 'confirm',
	skippable: true,
	async check(context) {
		const instance = await findInstance(context.host, fqdn(context.settings), context.log);
		if (!instance) {
			return {status: 'conflict', detail: `no instance ${fqdn(context.settings)} to start`, awaits: 'ganeti-instance'};
		}

		return instance.status === 'running'
			? {status: 'done', detail: `${instance.name} is running`}
			: {status: 'pending', detail: `${instance.name} is ${instance.status}`};
	},
	async plan(context) {
		return {commands: [['gnt-instance', 'start', fqdn(context.settings)]], diffs: [], notes: []};
	},
	async apply(context) {
		// Recorded first: undo shuts the VM down even when farmclone died right after starting it.
		await startVmState.save(context, {started: true});
		// A start of a running instance changes nothing: tried again when the node did not answer.
		await runGanetiJob(context.host, ['gnt-instance', 'start', fqdn(context.settings)], context.log);
	},
	async verify(context) {
		const instance = await findInstance(context.host, fqdn(context.settings), context.log);
		if (instance?.status !== 'running') {
			throw new StageError(`${fqdn(context.settings)} is ${instance?.status ?? 'missing'} after gnt-instance start`);
		}
	},
	async undoPlan(context) {
		return {commands: [['gnt-instance', 'shutdown', fqdn(context.settings)]], diffs: [], notes: []};
	},
	async undo(context) {
		const instance = await findInstance(context.host, fqdn(context.settings), context.log);
		if (startVmState.of(context).started && instance?.status === 'running') {
			await runGanetiJob(context.host, ['gnt-instance', 'shutdown', fqdn(context.settings)], context.log);
		}
	},
};
