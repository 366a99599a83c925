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
	// A stage that edits a host file keeps the file's backup as `backup` in its state.
	const backups = Object.values(states)
		.map((state) => state['backup'])
		.filter((backup): backup is string => typeof backup === 'string');
	return {
		name: settings.name,
		fqdn: fqdn(settings),
		ip: settings.ip,
		mac: dhcpHostMac(view) ?? settings.mac,
		ssh: `ssh -p ${settings.sshPort} root@${settings.serverName}`,
		url: `${/443|ssl/.test(settings.listen) ? 'https' : 'http'}://${settings.serverName}/`,
		memory: settings.balloonMemory ? `${settings.memory} (balloon ${settings.balloonMemory})` : settings.memory,
		sshHostKeys: generatedSshHostKeys(view),
		backups,
	};
}

/** The same, as lines for a person. */
export function madeLines(made: Made): string[] {
	return [
		`${made.name} (${made.fqdn}): ${made.ip}, MAC ${made.mac}, memory ${made.memory}`,
		`  ssh: ${made.ssh}`,
		`  url: ${made.url}`,
		...(made.sshHostKeys.length > 0 ? ['  new SSH host keys:', ...made.sshHostKeys.map((key) => `    ${key}`)] : []),
		...(made.backups.length > 0 ? ['  backups:', ...made.backups.map((file) => `    ${file}`)] : []),
	];
}
