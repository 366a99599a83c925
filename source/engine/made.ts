import path from 'node:path';
import {fqdn, type FarmSettings} from '../settings/schema.js';
import {dhcpHostMac} from '../stages/dhcp-host.js';
import {generatedSshHostKeys} from '../stages/identity.js';
import type {StageStates} from '../stages/state.js';

/** What a finished run made, as the admin needs it next: where it is and how to reach it. */
export type Made = {
	name: string;
	fqdn: string;
	ip: string;
	mac: string;
	ssh: string;
	url: string;
	memory: string;
	sshHostKeys: string[];
	backups: string[];
};

export function whatWasMade(settings: FarmSettings, states: Readonly<StageStates>): Made {
	const view = {states};
	// A stage that edits a host file keeps the file's backup in its state: `backup`, or one per file
	// (`rulesBackup`, `paramsBackup`); not the backups an undo wrote (`undoBackup`).
	const backups = Object.values(states)
		.flatMap((state) => Object.entries(state ?? {}))
		.filter(([key]) => /^(backup|\w+Backup)$/.test(key) && !/^undo\w*Backup$/.test(key))
		.map(([, value]) => value)
		.filter((value): value is string => typeof value === 'string' && value !== '');
	return {
		name: settings.name,
		fqdn: fqdn(settings),
		ip: settings.ip,
		mac: dhcpHostMac(view) ?? settings.mac,
		ssh: `ssh -p ${settings.sshPort} root@${settings.serverName}`,
		url: `${/443|ssl/.test(settings.listen) ? 'https' : 'http'}://${settings.serverName}/`,
		memory: settings.balloonMemory ? `${settings.memory} (balloon ${settings.balloonMemory})` : settings.memory,
		sshHostKeys: generatedSshHostKeys(view),
		backups: [...new Set(backups)],
	};
}

/** The same, as lines for a person. */
export function madeLines(made: Made): string[] {
	// Backups by directory: the directory once, then the file names, so that each fits a line of 80.
	const byDir = new Map<string, string[]>();
	for (const file of made.backups) byDir.set(path.dirname(file), [...(byDir.get(path.dirname(file)) ?? []), file]);
	const backups = [...byDir].flatMap(([dir, files]) => [
		`  backups in ${dir}/:`,
		...files.map((file) => `    ${path.basename(file)}`),
	]);
	return [
		`${made.name} (${made.fqdn}): ${made.ip}, MAC ${made.mac}`,
		`  ssh: ${made.ssh}`,
		`  url: ${made.url}`,
		`  memory: ${made.memory}`,
		...(made.sshHostKeys.length > 0 ? ['  new SSH host keys:', ...made.sshHostKeys.map((key) => `    ${key}`)] : []),
		...backups,
	];
}
