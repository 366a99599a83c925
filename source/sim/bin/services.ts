/**
 * `farmclone-sim start|stop|ensure [service...]|status`: the simulated
 * host's services, for the wrappers in root/bin and for people.
 */
import fs from 'node:fs/promises';
import {ganetiFiles} from '../ganeti-state.js';
import {startAdminUpVms} from '../kvm.js';
import {namespaceExists} from '../netns.js';
import {
	ensureSimServices,
	readServicesState,
	simServiceNames,
	simServiceStatus,
	startSimServices,
	stopSimServices,
	type SimServiceName,
} from '../services.js';

function simRoot(): string {
	const root = process.env['FARMCLONE_SIM_ROOT'];
	if (!root) throw new Error('FARMCLONE_SIM_ROOT is not set: run this through the shim in the sim tree');
	return root;
}

function isServiceName(value: string): value is SimServiceName {
	return (simServiceNames as readonly string[]).includes(value);
}

/** Whether the simulated host is down (never started, stopped, or this machine rebooted). */
async function hostDown(root: string): Promise<boolean> {
	const state = await readServicesState(root);
	return !state || !(await namespaceExists(state.namespace));
}

/** Once the host is back, the instances meant to be up are started again, as ganeti-watcher would. */
async function watcher(root: string, namespace: string): Promise<void> {
	const hasCluster = await fs.access(ganetiFiles(root).stateFile).then(
		() => true,
		() => false,
	);
	if (!hasCluster) return;
	for (const failure of await startAdminUpVms(root, namespace)) {
		process.stderr.write(`farmclone-sim: could not start instance ${failure}\n`);
	}
}

async function main(argv: string[]): Promise<number> {
	const root = simRoot();
	const [command, ...rest] = argv;
	switch (command) {
		case 'start': {
			const wasDown = await hostDown(root);
			const state = await startSimServices(root);
			if (wasDown) await watcher(root, state.namespace);
			process.stdout.write(`namespace ${state.namespace}: ${simServiceNames.join(', ')} running\n`);
			return 0;
		}

		case 'ensure': {
			const unknown = rest.filter((name) => !isServiceName(name));
			if (unknown.length > 0) throw new Error(`unknown service: ${unknown.join(', ')}`);
			const wasDown = await hostDown(root);
			const namespace = await ensureSimServices(root, rest.filter(isServiceName));
			if (wasDown) await watcher(root, namespace);
			return 0;
		}

		case 'stop': {
			await stopSimServices(root);
			return 0;
		}

		case 'status': {
			let allActive = true;
			for (const service of simServiceNames) {
				const status = await simServiceStatus(root, service);
				allActive &&= status.active;
				process.stdout.write(`${service}: ${status.active ? `running, pid ${status.pid}` : 'stopped'}\n`);
			}

			return allActive ? 0 : 3;
		}

		default: {
			process.stderr.write('usage: farmclone-sim start|stop|ensure [named|dhcpd|nginx...]|status\n');
			return 2;
		}
	}
}

// The shim passes the name it was called by first.
main(process.argv.slice(3)).then(
	(code) => {
		process.exitCode = code;
	},
	(error: unknown) => {
		process.stderr.write(`farmclone-sim: ${error instanceof Error ? error.message : String(error)}\n`);
		process.exitCode = 1;
	},
);
