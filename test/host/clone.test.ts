/**
 * farmclone against a real farm host: real LVM2, real Ganeti 3.0, BIND,
 * dhcpd, Shorewall and nginx in a QEMU guest (test/kit/guest.ts). farmclone is
 * installed there from what `npm run build` made, runs the whole clone
 * headless, then undoes it; the host must be back as it was.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import {after, before, test} from 'node:test';
import {farmHost, installFarmclone, type FarmHost} from '../kit/guest.js';
import {writeRealFixture, writeRealVersions} from '../kit/real-fixtures.js';

const farm = 'gallifrey-dev';
const confirm = ['--yes', '--confirm', farm];
/** The files farmclone edits on the host, and the directories it adds files to. */
const hostFiles = [
	'/etc/bind/db.farm',
	'/etc/dhcp/dhcpd.conf',
	'/etc/shorewall/params',
	'/etc/shorewall/rules',
	'/etc/nginx/sites-available',
	'/etc/nginx/sites-enabled',
];

let host: FarmHost;
let sourceLv = '';
/** FARMCLONE_CAPTURE=1 rewrites test/fixtures/real/ from this run's real output; =cloned only the running clone's. */
const capture = process.env['FARMCLONE_CAPTURE'];
const capturing = (when: string) => capture === '1' || capture === when;

const lvsArgv = [
	'lvs',
	...['--reportformat', 'json', '--units', 'b', '--nosuffix'],
	...['-o', 'lv_name,vg_name,lv_uuid,lv_path,lv_size,lv_attr,origin,snap_percent,lv_tags', 'all'],
];
const instanceListArgv = [
	'gnt-instance',
	'list',
	'--no-headers',
	'--separator=|',
	'-o',
	'name,status,pnode,nic.macs,nic.ips,be/maxmem,be/minmem',
];

/** The outputs farmclone parses, as farmclone asks for them (source/host/*.ts, source/stages/*.ts). */
function commandsToCapture(): Record<string, string[]> {
	const device = `/dev/all/${sourceLv}`;
	return {
		lvs: lvsArgv,
		'lvs-name-attr': ['lvs', '--reportformat', 'json', '-o', 'lv_name,lv_attr', 'all'],
		vgs: [
			'vgs',
			'--reportformat',
			'json',
			'--units',
			'b',
			'--nosuffix',
			'-o',
			'vg_name,vg_size,vg_free,vg_extent_size',
			'all',
		],
		'gnt-instance-list': instanceListArgv,
		'gnt-instance-list-macs': ['gnt-instance', 'list', '--no-headers', '--separator=|', '-o', 'name,nic.macs'],
		'gnt-instance-info-static-all': ['gnt-instance', 'info', '--static', '--all'],
		'gnt-cluster-version': ['gnt-cluster', '--version'],
		'sfdisk-json': ['sfdisk', '-J', device],
		'blkid-partition': ['blkid', '-p', '-o', 'export', '-O', '1048576', '-S', '8388608', device],
		'shorewall-status': ['shorewall', 'status'],
	};
}

async function captureReal(when: string, commands: Record<string, string[]>) {
	if (!capturing(when)) return;
	for (const [name, argv] of Object.entries(commands)) {
		const result = await host.guest.run(argv);
		await writeRealFixture(`${when}.${name}`, {argv, when, note: `exit ${result.exitCode}`}, result.stdout);
	}
}
const times: Record<string, number> = {};

/** What undo must give back: the edited files' bytes, the LVs, the instances. */
async function hostState() {
	const {guest} = host;
	const files = await guest.must([
		'sh',
		'-c',
		`find ${hostFiles.join(' ')} -xtype f -print0 | sort -z | xargs -0 sha256sum; ls -l /etc/nginx/sites-enabled | tail -n +2 | cut -c 1-10,43-`,
	]);
	const lvs = await guest.must(['lvs', '--noheadings', '-o', 'lv_name,lv_size,lv_attr', 'all']);
	const instances = await guest.must(['gnt-instance', 'list', '--no-headers', '-o', 'name,nic.macs,disk.sizes']);
	return {files, lvs, instances};
}

type Event = {type: string; stage?: string; state?: string; outcome?: string} & Record<string, unknown>;

function events(stdout: string): Event[] {
	return stdout
		.split('\n')
		.filter((line) => line.startsWith('{'))
		.map((line) => JSON.parse(line) as Event);
}

async function timed<T>(name: string, work: () => Promise<T>): Promise<T> {
	const started = Date.now();
	try {
		return await work();
	} finally {
		times[name] = Math.round((Date.now() - started) / 1000);
	}
}

before(async () => {
	host = await farmHost();
	Object.assign(times, host.times);
	await timed('install', async () => installFarmclone(host.guest));
	const lvs = await host.guest.must(['lvs', '--noheadings', '-o', 'lv_name', 'all']);
	const lv = lvs
		.split('\n')
		.map((line) => line.trim())
		.find((name) => name.endsWith('.disk0'));
	assert.ok(lv, `the source instance's LV, named by Ganeti (<uuid>.disk0), is in VG all: ${lvs}`);
	sourceLv = lv;
	if (capturing('before')) {
		const version = async (argv: string[]) => {
			const result = await host.guest.run(argv);
			return `${result.stdout}${result.stderr}`.trim().split('\n')[0] ?? '';
		};
		await writeRealVersions({
			debian: await version(['cat', '/etc/debian_version']),
			kernel: await version(['uname', '-r']),
			lvm: await version(['lvm', 'version']),
			ganeti: await version(['gnt-cluster', '--version']),
			sfdisk: await version(['sfdisk', '--version']),
			blkid: await version(['blkid', '--version']),
			shorewall: await version(['shorewall', 'version']),
			qemu: await version(['kvm', '--version']),
			named: await version(['named', '-v']),
			dhcpd: await version(['dhcpd', '--version']),
			nginx: await version(['nginx', '-v']),
		});
		await captureReal('before', commandsToCapture());
	}
	const settings = {
		name: farm,
		sourceLv: lv,
		snapshotSize: '512M',
		memory: '512M',
		balloonMemory: '256M',
		firewallTimeout: 600,
		firewallRestartTimeout: 600,
	};
	await host.guest.must(['farmclone', 'farm', 'import', '-'], {input: JSON.stringify(settings)});
});

after(async () => {
	await host?.guest.stop();
	// The run's copies of the guest's disks (GBs); serial.log stays for a look after a failure.
	if (host) {
		for (const disk of ['root.qcow2', 'vg.qcow2']) await fs.rm(path.join(host.guest.dir, disk), {force: true});
	}
	console.log(`test:host times (s): ${JSON.stringify(times)} with ${host?.guest.accel.toUpperCase()}`);
});

let startingState: Awaited<ReturnType<typeof hostState>>;

test('the headless clone runs every stage to done on the real host', async () => {
	startingState = await hostState();
	const run = await timed('clone', async () =>
		host.guest.run(['farmclone', 'run', farm, ...confirm, '--restart-firewall', '--json']),
	);
	const stream = events(run.stdout);
	assert.equal(run.exitCode, 0, `farmclone run failed:\n${run.stdout}\n${run.stderr}`);
	assert.ok(stream.length > 0, 'farmclone printed JSON events');
	const status = JSON.parse(await host.guest.must(['farmclone', 'status', farm, '--json'])) as {
		journal: {stages: Record<string, {state: string}>};
	};
	const notDone = Object.entries(status.journal.stages).filter(([, stage]) => stage.state !== 'done');
	assert.deepEqual(notDone, [], 'every stage is done');

	await captureReal('cloned', {
		...commandsToCapture(),
		'info-balloon': [
			'sh',
			'-c',
			`echo 'info balloon' | socat -t 10 - UNIX-CONNECT:/var/run/ganeti/kvm-hypervisor/ctrl/${farm}.xivo.vm.farm.monitor`,
		],
	});
	const instance = await host.guest.must([
		'gnt-instance',
		'list',
		'--no-headers',
		'-o',
		'name,status',
		`${farm}.xivo.vm.farm`,
	]);
	assert.match(instance, /running/, 'Ganeti started the clone');
	// The clone's real QEMU answers on the monitor socket Ganeti made, where farmclone asked for the balloon.
	const balloon = await host.guest.must(
		['socat', '-t', '10', '-', `UNIX-CONNECT:/var/run/ganeti/kvm-hypervisor/ctrl/${farm}.xivo.vm.farm.monitor`],
		{input: 'info balloon\n'},
	);
	assert.match(balloon, /^balloon: actual=\d+/m, 'info balloon answers on the real monitor socket');
	const address = await host.guest.must(['dig', '+short', '@127.0.0.1', `${farm}.xivo.vm.farm`, 'A']);
	assert.equal(address.trim(), '10.10.60.6', 'BIND serves the clone');
});

test('farmclone undo puts LVs, instances and every edited file back as they were', async () => {
	assert.ok(startingState, 'the clone ran first');
	const undo = await timed('undo', async () => host.guest.run(['farmclone', 'undo', farm, ...confirm]));
	assert.equal(undo.exitCode, 0, `farmclone undo failed:\n${undo.stdout}\n${undo.stderr}`);
	const state = await hostState();
	assert.equal(state.lvs, startingState.lvs);
	assert.equal(state.instances, startingState.instances);
	assert.equal(state.files, startingState.files);
});
