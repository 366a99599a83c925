import {
	findInstance,
	ganetiVersion,
	hasRuntimeMemory,
	listInstances,
	runGanetiJob,
	type GanetiInstance,
} from '../host/ganeti.js';
import {noSuchInstance} from './volume-ownership.js';
import {fqdn} from '../settings/schema.js';
import {StageError, StalePlanError, type PreflightContext, type Stage, type LookContext} from './types.js';
import {stageState, type StatesView} from './state.js';

/** The instance this run added (`adding` announced before gnt-instance add), and the name of the disk it adopted. */
type GanetiInstanceState = {adding: boolean; created: boolean; disk: string};

const ganetiInstanceState = stageState<GanetiInstanceState>('ganeti-instance');

/** Whether this run added the instance, or began to: a volume it adopted is ours. */
export const instanceMade = (context: StatesView): boolean => {
	const state = ganetiInstanceState.of(context);
	return state.created === true || state.adding === true;
};

/** The clone's volume as Ganeti renamed it on adoption. */
export const adoptedVolumeName = (context: StatesView): string | undefined => ganetiInstanceState.of(context).disk;

type LvRow = {lv_name: string; lv_attr: string};

async function volumes(context: LookContext): Promise<LvRow[]> {
	const {stdout} = await context.host.run([
		'lvs',
		'--reportformat',
		'json',
		'-o',
		'lv_name,lv_attr',
		context.settings.vg,
	]);
	const report = JSON.parse(stdout) as {report: Array<{lv: LvRow[]}>};
	return report.report.flatMap((part) => part.lv);
}

async function addCommand(context: LookContext): Promise<string[]> {
	const {settings} = context;
	const memory = hasRuntimeMemory(await ganetiVersion(context.host))
		? `maxmem=${settings.memory},minmem=${settings.balloonMemory}`
		: `memory=${settings.memory}`;
	return [
		'gnt-instance',
		'add',
		'-n',
		settings.ganetiNode,
		'-B',
		memory,
		'-o',
		settings.ganetiOs,
		'-t',
		'plain',
		'--disk',
		`0:adopt=${settings.targetLv}`,
		'--no-install',
		// Started by its own stage, once the firewall and the clone's identity are in place.
		'--no-start',
		'--net',
		`0:mac=${settings.mac}`,
		fqdn(settings),
	];
}

/** The cluster: the source instance exists, and no other instance has the clone's name, address or MAC. */
export async function clusterPreflight(context: PreflightContext): Promise<void> {
	const {host, settings, add} = context;
	let instances: GanetiInstance[];
	try {
		instances = await listInstances(host);
	} catch (error) {
		add('sourceInstance', `gnt-instance list fails: ${(error as Error).message}`);
		return;
	}

	const name = fqdn(settings);
	if (!instances.some((instance) => instance.name === settings.sourceInstance)) add('sourceInstance', noSuchInstance);

	const mac = settings.mac.toLowerCase();
	for (const instance of instances) {
		if (instance.name === name) {
			// Ours when it has our MAC: a resumed run created it.
			if (!mac || !instance.macs.includes(mac)) {
				add('record', `Ganeti instance ${name} already exists (MAC ${instance.macs.join(', ') || 'none'})`);
			}

			continue;
		}

		if (instance.ips.includes(settings.ip)) add('ip', `used by Ganeti instance ${instance.name} (nic.ips)`);
		if (mac && instance.macs.includes(mac)) add('mac', `used by Ganeti instance ${instance.name} (nic.macs)`);
	}
}

export const ganetiInstanceStage: Stage = {
	id: 'ganeti-instance',
	title: 'Ganeti instance',
	summary: 'gnt-instance add adopting the copied volume, with maxmem/minmem so memory can be ballooned',
	danger: 'confirm',
	skippable: false,
	preflight: [clusterPreflight],
	async check(context) {
		const name = fqdn(context.settings);
		const instance = await findInstance(context.host, name, context.log);
		if (instance) {
			if (instance.macs.includes(context.settings.mac.toLowerCase())) {
				return {status: 'done', detail: `instance ${name} exists with MAC ${context.settings.mac}`};
			}

			return {status: 'conflict', detail: `an instance ${name} already exists with MAC ${instance.macs.join(', ')}`};
		}

		const target = (await volumes(context)).find((lv) => lv.lv_name === context.settings.targetLv);
		if (!target) {
			return {
				status: 'conflict',
				detail: `volume ${context.settings.vg}/${context.settings.targetLv} to adopt is missing`,
				awaits: 'create-volume',
			};
		}

		if (target.lv_attr[5] === 'o') {
			return {
				status: 'conflict',
				detail: `volume ${context.settings.vg}/${context.settings.targetLv} is open: Ganeti cannot adopt it`,
				// dd holds it open while the copy runs.
				awaits: 'copy',
			};
		}

		return {status: 'pending', detail: `no instance ${name} yet`};
	},
	async plan(context) {
		const existing = await findInstance(context.host, fqdn(context.settings), context.log);
		return {
			commands: [await addCommand(context)],
			values: {instance: existing ? 'exists' : 'absent'},
			diffs: [],
			notes: [`Ganeti renames the adopted volume ${context.settings.targetLv} to <uuid>.disk0`],
		};
	},
	async apply(context, approved) {
		if (!context.settings.mac) throw new StageError('no MAC address in the settings: the MAC stage has not run');
		const name = fqdn(context.settings);
		if (approved?.values?.['instance'] === 'absent' && (await findInstance(context.host, name, context.log))) {
			throw new StalePlanError(`Ganeti instance ${name} exists now`);
		}

		// The approved command as shown, not one computed again (the Ganeti version decides the memory flags).
		const add = approved?.commands[0] ?? (await addCommand(context));
		const before = new Set((await volumes(context)).map((lv) => lv.lv_name));
		// Announced first: undo removes the instance even when farmclone died before recording it was made.
		await ganetiInstanceState.save(context, {adding: true});
		await runGanetiJob(context.host, add, context.log, {onlyUnchanged: true});
		const adopted = (await volumes(context)).map((lv) => lv.lv_name).filter((name) => !before.has(name));
		await ganetiInstanceState.save(context, {created: true, disk: adopted[0]});
		if (adopted[0]) context.log(`disk adopted as ${context.settings.vg}/${adopted[0]}`);
	},
	async verify(context) {
		const instance = await findInstance(context.host, fqdn(context.settings), context.log);
		if (!instance) throw new StageError(`gnt-instance list does not show ${fqdn(context.settings)}`);
		if (!instance.macs.includes(context.settings.mac.toLowerCase())) {
			throw new StageError(`instance has MAC ${instance.macs.join(', ')}, expected ${context.settings.mac}`);
		}
	},
	async undoPlan(context) {
		return {
			commands: [['gnt-instance', 'remove', '-f', fqdn(context.settings)]],
			diffs: [],
			notes: ['removes the instance and its disk, the copied volume'],
		};
	},
	async undo(context) {
		if (!ganetiInstanceState.of(context).created && !ganetiInstanceState.of(context).adding) return;
		const name = fqdn(context.settings);
		const instance = await findInstance(context.host, name, context.log);
		if (!instance) return;
		if (!instance.macs.includes(context.settings.mac.toLowerCase())) {
			context.log(`instance ${name} has MAC ${instance.macs.join(', ')}, not this run's: left alone`);
			return;
		}

		await runGanetiJob(context.host, ['gnt-instance', 'remove', '-f', name], context.log, {onlyUnchanged: true});
	},
};
