/**
 * The bad inputs test/sim/bad-input.test.ts feeds farmclone, and the words each
 * error must contain. README's "Bad input" table is printed from this list
 * (`node --import tsx test/sim/bad-input-cases.ts`), and the test checks README
 * holds exactly that table.
 */
import {fileURLToPath} from 'node:url';
import {simFarm} from '../../source/sim/tree.js';
import type {FarmSettings} from '../../source/settings/schema.js';
import {candidateMacs} from '../../source/stages/mac.js';

/** A file of the sim tree, relative to its root, and how the case changes it. */
export type FileEdit = {file: string; edit: (text: string) => string};

export type BadInputCase = {
	/** What is wrong, for the README. */
	input: string;
	/**
	 * `import`: `farmclone farm import` of the settings with `settings` merged
	 * (or of `json` as it is); `run`: the settings changed (saved directly,
	 * valid) or the files edited, then `farmclone run --yes --confirm`; `new`:
	 * `farmclone farm new ARGS --yes` beside the saved farm.
	 */
	command: 'import' | 'run' | 'new';
	args?: string[];
	settings?: Partial<Record<keyof FarmSettings, unknown>>;
	json?: string;
	files?: FileEdit[];
	exitCode: number;
	/** Words the error must contain, as farmclone prints them. */
	error: string;
	/** More words it must contain further on: the free value it names instead of a taken one. */
	alsoSays?: string;
};

const skaro = simFarm.hosts.find((host) => host.record === 'skaro.xivo.vm')!;
const gallifrey = simFarm.hosts.find((host) => host.record === 'gallifrey.xivo.vm')!;
const skaroInstance = `${skaro.record}.${simFarm.zone}`;
const append = (line: string) => (text: string) => `${text}${line}\n`;

export const badInputCases: BadInputCase[] = [
	{
		input: 'settings file that is not JSON',
		command: 'import',
		json: '{"name": "gallifrey-dev",',
		exitCode: 2,
		error: 'is not valid JSON',
	},
	{
		input: 'ip `10.10.60.300`',
		command: 'import',
		settings: {ip: '10.10.60.300'},
		exitCode: 2,
		error: 'ip = "10.10.60.300": must be an IPv4 address',
	},
	{
		input: 'mac `53:54:00:00:00:01` (multicast)',
		command: 'import',
		settings: {mac: '53:54:00:00:00:01'},
		exitCode: 2,
		error: 'mac = "53:54:00:00:00:01": a multicast address cannot be a NIC address',
	},
	{
		input: 'sshPort `70000`',
		command: 'import',
		settings: {sshPort: 70_000},
		exitCode: 2,
		error: 'sshPort = 70000: must be a whole number from 1 to 65535',
	},
	{
		input: 'record `gallifrey_dev.xivo.vm` (not RFC 1123)',
		command: 'import',
		settings: {record: 'gallifrey_dev.xivo.vm'},
		exitCode: 2,
		error: 'record = "gallifrey_dev.xivo.vm": must be a name relative to the zone, RFC 1123 labels',
	},
	{
		input: 'targetLv `snapshot0` (an LVM-reserved name)',
		command: 'import',
		settings: {targetLv: 'snapshot0'},
		exitCode: 2,
		error: 'targetLv = "snapshot0": reserved by LVM',
	},
	{
		input: 'targetLv equal to sourceLv',
		command: 'import',
		settings: {targetLv: simFarm.sourceLv},
		exitCode: 2,
		error: 'is the source volume: the clone would overwrite the VM it copies',
	},
	{
		input: 'shorewallParam `1VM`',
		command: 'import',
		settings: {shorewallParam: '1VM'},
		exitCode: 2,
		error: 'shorewallParam = "1VM": must be a shell variable name',
	},
	{
		input: 'snapshotSize `lots`',
		command: 'import',
		settings: {snapshotSize: 'lots'},
		exitCode: 2,
		error: 'snapshotSize = "lots": must be an LVM size such as 1G or 512M',
	},
	{
		input: 'copyRate `fast`',
		command: 'import',
		settings: {copyRate: 'fast'},
		exitCode: 2,
		error: 'copyRate = "fast": is not auto, max or a rate such as 80M',
	},
	{
		input: `ip taken by another VM (${gallifrey.ip})`,
		command: 'run',
		settings: {ip: gallifrey.ip},
		exitCode: 2,
		error: `already holds ${gallifrey.ip}`,
		alsoSays: '10.10.60.6 is free: ',
	},
	{
		input: 'ip outside every DHCP subnet (10.10.99.6)',
		command: 'run',
		settings: {ip: '10.10.99.6'},
		exitCode: 2,
		error: '10.10.99.6 is in no declared subnet',
		alsoSays: '10.10.60.2 is free: ',
	},
	{
		input: 'sshPort already forwarded (22005)',
		command: 'run',
		settings: {sshPort: 22_005},
		exitCode: 2,
		error: 'port 22005 is already forwarded',
		alsoSays: '22006 is free: ',
	},
	{
		input: `mac taken by another VM (${gallifrey.mac})`,
		command: 'run',
		settings: {mac: gallifrey.mac},
		exitCode: 2,
		error: `already has hardware ethernet ${gallifrey.mac}`,
		alsoSays: `${candidateMacs('gallifrey-dev')[0]} is free: `,
	},
	{
		input: "sourceLv that is another VM's disk, not the source instance's",
		command: 'run',
		settings: {sourceLv: skaro.lv},
		exitCode: 2,
		error: `is not a disk of ${simFarm.sourceInstance}`,
	},
	{
		input: "targetLv that is another VM's disk",
		command: 'run',
		settings: {targetLv: skaro.lv},
		exitCode: 2,
		error: `is a disk of Ganeti instance ${skaroInstance}: it is never written to`,
	},
	{
		input: "snapshotLv that is another VM's disk",
		command: 'run',
		settings: {snapshotLv: skaro.lv},
		exitCode: 2,
		error: `is a disk of Ganeti instance ${skaroInstance}: the snapshot needs a name of its own`,
	},
	{
		input: 'volume group too small for snapshot + target (snapshotSize 100G)',
		command: 'run',
		settings: {snapshotSize: '100G'},
		exitCode: 2,
		error: 'free, but the snapshot (100G) and the target',
	},
	{
		input: 'sourceInstance that is not in the cluster',
		command: 'run',
		settings: {sourceInstance: 'nosuch.xivo.vm.farm'},
		exitCode: 2,
		error: 'sourceInstance = "nosuch.xivo.vm.farm": no such Ganeti instance',
	},
	{
		input: 'zone file with a syntax error',
		command: 'run',
		files: [{file: 'etc/bind/db.farm', edit: append('broken\tIN\tA\t10.10.60.300')}],
		exitCode: 2,
		error: 'named-checkzone refuses it',
	},
	{
		input: 'zone already holding another A record for the clone name',
		command: 'run',
		files: [{file: 'etc/bind/db.farm', edit: append('gallifrey-dev.xivo.vm\tIN\tA\t10.10.60.9')}],
		exitCode: 2,
		error: 'already uses the name gallifrey-dev.xivo.vm.farm',
	},
	{
		input: 'dhcpd.conf with a syntax error',
		command: 'run',
		files: [{file: 'etc/dhcp/dhcpd.conf', edit: append('host broken {')}],
		exitCode: 2,
		error: 'dhcpd -t refuses it',
	},
	{
		input: "dhcpd.conf giving the clone's IP to another host",
		command: 'run',
		files: [
			{
				file: 'etc/dhcp/dhcpd.conf',
				edit: append('host other { hardware ethernet 52:54:00:aa:bb:cc; fixed-address 10.10.60.6; }'),
			},
		],
		exitCode: 2,
		error: 'already has fixed-address 10.10.60.6',
	},
	{
		input: 'Shorewall rules that do not compile',
		command: 'run',
		files: [{file: 'etc/shorewall/rules', edit: append('DNAT\tnet\tloc:$NOT_SET_ANYWHERE:22\ttcp\t22999')}],
		exitCode: 2,
		error: 'shorewall check refuses it',
	},
	{
		input: 'nginx.conf that nginx -t refuses',
		command: 'run',
		files: [{file: 'etc/nginx/nginx.conf', edit: append('no_such_directive on;')}],
		exitCode: 2,
		error: 'nginx -t refuses it',
	},
	{
		input: 'an nginx site of the same name not written by farmclone',
		command: 'run',
		files: [{file: 'etc/nginx/sites-available/gallifrey-dev.dachary.org', edit: () => 'server {}\n'}],
		exitCode: 2,
		error: 'gallifrey-dev.dachary.org already exists and was not written by farmclone',
	},
	{
		input: 'farm new from an instance that is not in the cluster',
		command: 'new',
		args: ['dev2', '--from', 'nosuch.xivo.vm.farm'],
		exitCode: 2,
		error: 'no Ganeti instance nosuch.xivo.vm.farm (gnt-instance list knows: gallifrey.xivo.vm.farm',
	},
	{
		input: 'farm new from an instance without a disk',
		command: 'new',
		args: ['dev2', '--from', 'tardis.xivo.vm.farm'],
		files: [
			{
				file: 'var/lib/farmclone-sim/ganeti.json',
				edit: (text) => {
					const state = JSON.parse(text) as {instances: Array<Record<string, unknown>>};
					state.instances.push({...state.instances[0], name: 'tardis.xivo.vm.farm', disks: []});
					return `${JSON.stringify(state, null, '\t')}\n`;
				},
			},
		],
		exitCode: 2,
		error: 'tardis.xivo.vm.farm has no disk on LVM',
	},
	{
		input: 'farm new with the name of a saved farm',
		command: 'new',
		args: ['gallifrey-dev', '--from', simFarm.sourceInstance],
		exitCode: 2,
		error: 'farm gallifrey-dev exists already',
	},
	{
		input: 'farm new with a name the zone already has',
		command: 'new',
		args: ['skaro', '--from', simFarm.sourceInstance],
		exitCode: 2,
		error: 'the name skaro is taken on this host: skaro.xivo.vm.farm already has an A record',
	},
];

const commandCell = {import: '`farm import`', run: '`run`', new: '`farm new`'};
const cell = (text: string) => text.replaceAll('|', '\\|');

/** README's table: one row per case. */
export function badInputTable(): string {
	return [
		'| bad input | command | exit | the error says |',
		'|---|---|---|---|',
		...badInputCases.map(
			(entry) =>
				`| ${cell(entry.input)} | ${commandCell[entry.command]} | ${entry.exitCode} | ${cell(entry.alsoSays ? `${entry.error} … ${entry.alsoSays.replace(/: $/, '')}` : entry.error)} |`,
		),
	].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(`${badInputTable()}\n`);
