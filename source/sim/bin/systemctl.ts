/**
 * Stand-in for systemctl on the simulated host (systemd cannot run here):
 * start, stop, restart, reload, is-active and status of the units a farm host
 * has for its DHCP, DNS and web servers, with systemctl's messages and exit
 * codes.
 */
import {
	ensureSimServices,
	reloadSimService,
	restartSimService,
	simServiceStatus,
	stopSimService,
	type SimServiceName,
} from '../services.js';

type Unit = {service: SimServiceName; description: string; file: string};

const units: Record<string, Unit> = {
	'isc-dhcp-server': {
		service: 'dhcpd',
		description: 'LSB: DHCP server',
		file: '/etc/init.d/isc-dhcp-server; generated',
	},
	nginx: {
		service: 'nginx',
		description: 'A high performance web server and a reverse proxy server',
		file: '/lib/systemd/system/nginx.service; enabled; preset: enabled',
	},
	named: {
		service: 'named',
		description: 'BIND Domain Name Server',
		file: '/lib/systemd/system/named.service; enabled; preset: enabled',
	},
};
units['bind9'] = units['named']!;

const exit = {ok: 0, failure: 1, notRunning: 3, noSuchUnit: 4, notFound: 5} as const;

function unitName(argument: string): string {
	return argument.endsWith('.service') ? argument : `${argument}.service`;
}

function lookup(argument: string): Unit | undefined {
	return units[argument.replace(/\.service$/, '')];
}

function simRoot(): string {
	const root = process.env['FARMCLONE_SIM_ROOT'];
	if (!root) throw new Error('FARMCLONE_SIM_ROOT is not set: run this through the shim in the sim tree');
	return root;
}

function jobFailed(argument: string): number {
	const name = unitName(argument);
	process.stderr.write(
		`Job for ${name} failed because the control process exited with error code.\n` +
			`See "systemctl status ${name}" and "journalctl -xeu ${name}" for details.\n`,
	);
	return exit.failure;
}

async function act(root: string, verb: string, argument: string): Promise<number> {
	const unit = lookup(argument);
	if (!unit) {
		process.stderr.write(`Failed to ${verb} ${unitName(argument)}: Unit ${unitName(argument)} not found.\n`);
		return exit.notFound;
	}

	try {
		switch (verb) {
			case 'start': {
				await ensureSimServices(root, [unit.service]);
				return exit.ok;
			}

			case 'stop': {
				await stopSimService(root, unit.service);
				return exit.ok;
			}

			case 'restart': {
				await restartSimService(root, unit.service);
				return exit.ok;
			}

			case 'reload': {
				if (unit.service === 'dhcpd') {
					process.stderr.write(
						`Failed to reload ${unitName(argument)}: Job type reload is not applicable for unit ${unitName(argument)}.\n`,
					);
					return exit.failure;
				}

				const result = await reloadSimService(root, unit.service);
				return result.ok ? exit.ok : jobFailed(argument);
			}
		}
	} catch {
		// The daemon's own words are in its log, shown by `systemctl status`, as on a real host.
		return jobFailed(argument);
	}

	throw new Error(`unknown verb ${verb}`);
}

async function isActive(root: string, argument: string): Promise<number> {
	const unit = lookup(argument);
	const status = unit ? await simServiceStatus(root, unit.service) : undefined;
	const word = status?.active ? 'active' : status?.failed ? 'failed' : 'inactive';
	process.stdout.write(`${word}\n`);
	return status?.active ? exit.ok : exit.notRunning;
}

async function showStatus(root: string, argument: string): Promise<number> {
	const unit = lookup(argument);
	if (!unit) {
		process.stderr.write(`Unit ${unitName(argument)} could not be found.\n`);
		return exit.noSuchUnit;
	}

	const status = await simServiceStatus(root, unit.service);
	const bullet = status.active ? '●' : status.failed ? '×' : '○';
	const active = status.active ? 'active (running)' : status.failed ? 'failed (Result: exit-code)' : 'inactive (dead)';
	const lines = [
		`${bullet} ${unitName(argument)} - ${unit.description}`,
		`     Loaded: loaded (${unit.file})`,
		`     Active: ${active}`,
		...(status.pid ? [`   Main PID: ${status.pid} (${unit.service})`] : []),
		`  Namespace: ${status.namespace ?? '(none)'} (farmclone's simulated host)`,
		'',
		...status.log
			.split('\n')
			.filter(Boolean)
			.slice(-10)
			.map((line) => `${unit.service}: ${line}`),
	];
	process.stdout.write(`${lines.join('\n')}\n`);
	return status.active ? exit.ok : exit.notRunning;
}

async function main(argv: string[]): Promise<number> {
	const args = argv.filter((argument) => !argument.startsWith('-'));
	const [verb, ...names] = args;
	if (!verb) {
		process.stderr.write('systemctl (farmclone sim): start|stop|restart|reload|is-active|status UNIT...\n');
		return exit.failure;
	}

	if (verb === 'daemon-reload') return exit.ok;
	if (names.length === 0) {
		process.stderr.write(`Too few arguments.\n`);
		return exit.failure;
	}

	const root = simRoot();
	let code: number = exit.ok;
	for (const name of names) {
		let result: number;
		switch (verb) {
			case 'start':
			case 'stop':
			case 'restart':
			case 'reload': {
				result = await act(root, verb, name);
				break;
			}

			case 'is-active': {
				result = await isActive(root, name);
				break;
			}

			case 'status': {
				result = await showStatus(root, name);
				break;
			}

			default: {
				process.stderr.write(`Unknown command verb ${verb}.\n`);
				return exit.failure;
			}
		}

		if (result !== exit.ok && code === exit.ok) code = result;
	}

	return code;
}

// The shim passes the name it was called by first.
main(process.argv.slice(3)).then(
	(code) => {
		process.exitCode = code;
	},
	(error: unknown) => {
		process.stderr.write(`systemctl: ${error instanceof Error ? error.message : String(error)}\n`);
		process.exitCode = 1;
	},
);
