import assert from 'node:assert/strict';
import {test} from 'node:test';
import {formatDiscovery} from '../source/commands/farm-new.js';
import {freeValues} from '../source/engine/preflight.js';
import type {ReadOnlyHost, RunResult} from '../source/host/host.js';
import {
	addressBook,
	freeMac,
	freePort,
	ipHolder,
	pickAddress,
	subnetOf,
	type HostPicture,
} from '../source/settings/discover-addresses.js';
import {discoverFarm, DiscoveryError, hostSettings} from '../source/settings/discover.js';
import {defaultSettings} from '../source/settings/schema.js';

/** A farm host as its files say: .1 the host, .5 the source, .7 skaro, .6 forwarded by hand, a range from .100. */
const zone = `$TTL 3600
@	IN	SOA	host01.farm. hostmaster.farm. ( 2011072501 3600 900 604800 3600 )
@	IN	NS	host01.farm.
host01			IN	A	10.10.60.1
gallifrey.xivo.vm	IN	A	10.10.60.5
skaro.xivo.vm		IN	A	10.10.60.7
$ORIGIN xivo.vm.farm.
mondas			IN	A	10.10.60.8
`;

const dhcpd = `subnet 10.10.60.0 netmask 255.255.255.0 {
	range 10.10.60.100 10.10.60.200;
	option routers 10.10.60.1;
}
host gallifrey.xivo.vm.farm {
	hardware ethernet 52:54:a1:3c:5e:01;
	fixed-address 10.10.60.5;
}
host printer {
	hardware ethernet 52:54:00:00:00:09;
	fixed-address 10.10.60.10;
}
`;

const rules = `?SECTION NEW
SSH(ACCEPT)	net	$FW
DNAT	net	loc:$VM_GALLIFREY_XIVO:22	tcp	22005	-	$IP_FAILOVER
DNAT	net	loc:10.10.60.42:22	tcp	22009	-	$IP_FAILOVER
`;

const params = `IP_FAILOVER=192.0.2.10
VM_GALLIFREY_XIVO=10.10.60.5
`;

const instances = [
	{
		name: 'gallifrey.xivo.vm.farm',
		status: 'running',
		pnode: 'host01.farm',
		macs: ['52:54:a1:3c:5e:01'],
		ips: [],
		maxmem: 4096,
		minmem: 4096,
	},
	{
		name: 'web.xivo.vm.farm',
		status: 'ADMIN_down',
		pnode: 'host01.farm',
		macs: ['52:54:0b:7d:22:9f'],
		ips: ['10.10.60.11'],
		maxmem: 1024,
		minmem: 1024,
	},
];

const picture = (farms = [defaultSettings('gallifrey-dev', {ip: '10.10.60.6', sshPort: 22_006})]): HostPicture => ({
	zone: 'farm',
	zoneFile: {file: '/etc/bind/db.farm', text: zone},
	dhcpdConf: {file: '/etc/dhcp/dhcpd.conf', text: dhcpd},
	rules: {file: '/etc/shorewall/rules', text: rules},
	params: {file: '/etc/shorewall/params', text: params},
	instances,
	farms,
});

test('the address book: who holds each address, port and MAC, and where it says so', () => {
	const book = addressBook(picture());
	assert.equal(book.ips.get('10.10.60.7'), 'db.farm line 6 (skaro.xivo.vm)');
	// $ORIGIN moves the names; the record is still named relative to the zone.
	assert.equal(book.ips.get('10.10.60.8'), 'db.farm line 8 (mondas.xivo.vm)');
	assert.equal(book.ips.get('10.10.60.10'), 'dhcpd.conf line 9 (host printer)');
	assert.equal(book.ips.get('10.10.60.11'), 'Ganeti instance web.xivo.vm.farm (nic.ips)');
	assert.equal(book.ips.get('10.10.60.6'), "farm gallifrey-dev's settings");
	assert.equal(book.names.get('gallifrey.xivo.vm.farm.'), '10.10.60.5');
	assert.equal(book.macs.get('52:54:00:00:00:09'), 'dhcpd.conf line 9 (host printer)');
	assert.deepEqual(book.subnets, [
		{network: '10.10.60.0', netmask: '255.255.255.0', line: 0, where: 'dhcpd.conf line 1'},
	]);
	assert.match(
		ipHolder(book, '10.10.60.150')!,
		/dhcpd\.conf line 2: the dynamic range 10\.10\.60\.100-10\.10\.60\.200/,
	);
	const subnet = subnetOf(book, '10.10.60.5')!;
	assert.equal(ipHolder(book, '10.10.60.0', subnet), 'the network address of 10.10.60.0');
	assert.equal(ipHolder(book, '10.10.60.255', subnet), 'the broadcast address of 10.10.60.0');
	assert.equal(ipHolder(book, '10.10.60.20', subnet), undefined);
});

test('the first free address after the source, its port by the convention and not forwarded', () => {
	const book = addressBook(picture());
	const subnet = subnetOf(book, '10.10.60.5')!;
	const pick = pickAddress(book, subnet, '10.10.60.5')!;
	// .6 another farm's, .7 and .8 in the zone, .9 free but its port 22009 forwarded, .10 dhcpd, .11 Ganeti.
	assert.equal(pick.ip, '10.10.60.12');
	assert.equal(pick.sshPort, 22_012);
	assert.deepEqual(
		pick.skipped.map((entry) => entry.ip),
		['10.10.60.6', '10.10.60.7', '10.10.60.8', '10.10.60.9', '10.10.60.10', '10.10.60.11'],
	);
	assert.match(pick.skipped[3]!.holder, /its port 22009: rules line 4 \(forwarded\)/);
	// Past the last host address, round to the start of the subnet.
	assert.equal(pickAddress(book, subnet, '10.10.60.254')?.ip, '10.10.60.2');
});

test('no free address in a full subnet', () => {
	const book = addressBook({
		...picture([]),
		dhcpdConf: {file: '/d', text: 'subnet 10.0.0.0 netmask 255.255.255.252 {}'},
	});
	book.ips.set('10.0.0.1', 'x');
	book.ips.set('10.0.0.2', 'y');
	assert.equal(pickAddress(book, book.subnets[0]!), undefined);
});

test('free ports and MACs', () => {
	const book = addressBook(picture());
	assert.equal(freePort(book, 22_005), 22_007);
	assert.equal(freePort(book, 22_008), 22_008);
	assert.equal(freeMac(book, ['52:54:a1:3c:5e:01', '52:54:0B:7D:22:9F', '52:54:00:00:00:01']), '52:54:00:00:00:01');
});

test('a refused ip, port or MAC: the free one, and the command that takes it', () => {
	const book = addressBook(picture([]));
	const settings = defaultSettings('dev2', {
		ip: '10.10.60.7',
		sshPort: 22_007,
		mac: '52:54:a1:3c:5e:01',
		sourceLv: 'x',
	});
	const free = freeValues(book, settings, new Set(['ip', 'mac']));
	assert.equal(free.ip, '10.10.60.12 is free: farmclone farm set dev2 ip=10.10.60.12 sshPort=22012');
	assert.match(free.mac!, /^52:54:[\da-f:]{11} is free: farmclone farm set dev2 mac=52:54:/);
	// A port off the convention stays as it is when only the address moves.
	const own = {...settings, sshPort: 2222};
	assert.equal(
		freeValues(book, own, new Set(['ip'])).ip,
		'10.10.60.12 is free: farmclone farm set dev2 ip=10.10.60.12',
	);
	assert.equal(
		freeValues(book, {...settings, ip: '10.10.60.9', sshPort: 22_009}, new Set(['sshPort'])).sshPort,
		'22010 is free: farmclone farm set dev2 sshPort=22010',
	);
});

/** `gnt-instance info --static` as Ganeti 2.16 prints it (PrintGenericInfo). */
const info = (name: string, disk: string) => `- Instance name: ${name}
  UUID: 6a1e3c52-0f7d-4b8e-9d2a-3c4b5e6f7a80
  Serial number: 3
  State: configured to be up
  Nodes: 
    - primary: host01.farm
      group: default (UUID 0c7d5e2a-1b3c-4d5e-8f90-a1b2c3d4e5f6)
    - secondaries: 
  Operating system: debootstrap+buster
  Allocated network port: 11001
  Hypervisor: kvm
  Disk template: plain
  Disks: 
    - disk/0: plain, size 20.0G
      access mode: rw
      ${disk}
      name: None
      UUID: 1f2e3d4c-5b6a-4798-8a0b-c1d2e3f4a5b6
`;

/** A host that answers gnt-instance, lvs and file reads from the fixtures above; records what it runs. */
function fakeHost(options: {disk?: string; files?: Record<string, string>} = {}) {
	const ran: string[][] = [];
	const files: Record<string, string> = {
		'/etc/bind/db.farm': zone,
		'/etc/dhcp/dhcpd.conf': dhcpd,
		'/etc/shorewall/rules': rules,
		'/etc/shorewall/params': params,
		...options.files,
	};
	const answer = (stdout: string, exitCode = 0): RunResult => ({stdout, stderr: '', exitCode});
	const host = {
		async run(argv: string[]): Promise<RunResult> {
			ran.push(argv);
			const [command, verb] = argv;
			if (command === 'gnt-instance' && verb === 'list') {
				return answer(
					instances
						.map((i) => [i.name, i.status, i.pnode, i.macs.join(','), i.ips.join(','), '4096', '4096'].join('|'))
						.join('\n'),
				);
			}

			if (command === 'gnt-instance' && verb === 'info') {
				const name = argv.at(-1)!;
				return answer(info(name, options.disk ?? 'logical_id: all/f3e8d23f.disk0'));
			}

			if (command === 'lvs') return answer(JSON.stringify({report: [{lv: []}]}));
			throw new Error(`unexpected ${argv.join(' ')}`);
		},
		async readFileIfExists(file: string) {
			return files[file];
		},
	};
	return {host: host as unknown as ReadOnlyHost, ran};
}

const request = (name = 'dev2', from = 'gallifrey') => {
	const base = defaultSettings('gallifrey-dev', {ip: '10.10.60.6', serverName: 'gallifrey-dev.example.org'});
	return {name, from, base, baseFrom: 'farm gallifrey-dev', farms: [base]};
};

test('discovery: the settings and where each came from, by listings and reads only', async () => {
	const {host, ran} = fakeHost();
	const discovery = await discoverFarm(host, request());
	const {settings} = discovery;
	assert.equal(settings.sourceInstance, 'gallifrey.xivo.vm.farm');
	assert.equal(settings.vg, 'all');
	assert.equal(settings.sourceLv, 'f3e8d23f.disk0');
	assert.equal(settings.ganetiNode, 'host01.farm');
	assert.equal(settings.ganetiOs, 'debootstrap+buster');
	assert.equal(settings.record, 'dev2.xivo.vm');
	assert.equal(settings.ip, '10.10.60.12');
	assert.equal(settings.sshPort, 22_012);
	assert.equal(settings.serverName, 'dev2.example.org');
	assert.equal(settings.shorewallParam, 'VM_DEV2_XIVO');
	assert.equal(settings.mac, '');
	const from = Object.fromEntries(discovery.choices.map((choice) => [choice.field, choice.from]));
	assert.equal(from['sourceInstance'], '--from gallifrey');
	assert.equal(from['ip'], 'first free after gallifrey 10.10.60.5');
	assert.equal(from['subnetMask'], 'subnet 10.10.60.0, dhcpd.conf line 1');
	assert.deepEqual(
		ran.map((argv) => argv.slice(0, 2).join(' ')),
		['gnt-instance list', 'gnt-instance info', 'lvs --reportformat'],
	);
	const text = formatDiscovery(discovery, 80);
	for (const line of text.trimEnd().split('\n')) assert.ok(line.length <= 80, `wider than 80 columns: ${line}`);
	assert.match(text, /^ {2}ip +10\.10\.60\.12 +first free after gallifrey 10\.10\.60\.5$/m);
	assert.match(text, /taken: 10\.10\.60\.6: farm gallifrey-dev's settings; 10\.10\.60\.7: db\.farm line 6/);
});

test('the host part of the settings is shared, the farm part never', () => {
	const shared = hostSettings(defaultSettings('gallifrey-dev', {ip: '10.10.60.6', zoneFile: '/srv/db.farm'}));
	assert.equal(shared.zoneFile, '/srv/db.farm');
	for (const field of ['name', 'ip', 'sourceLv', 'sshPort', 'mac', 'serverName', 'record', 'targetLv'] as const) {
		assert.equal(field in shared, false, field);
	}
});

test('discovery refuses, naming the problem', async () => {
	const refuses = async (promise: Promise<unknown>, message: RegExp) =>
		assert.rejects(promise, (error: unknown) => error instanceof DiscoveryError && message.test(error.message));
	await refuses(
		discoverFarm(fakeHost().host, request('dev2', 'tardis')),
		/no Ganeti instance tardis \(gnt-instance list knows: gallifrey\.xivo\.vm\.farm, web\.xivo\.vm\.farm\)/,
	);
	await refuses(
		discoverFarm(fakeHost({disk: "logical_id: ('loop', '/srv/ganeti/file-storage/g/disk0')"}).host, request()),
		/gallifrey\.xivo\.vm\.farm has no disk on LVM/,
	);
	await refuses(
		discoverFarm(fakeHost().host, request('skaro')),
		/the name skaro is taken on this host: skaro\.xivo\.vm\.farm already has an A record \(10\.10\.60\.7\)/,
	);
	await refuses(discoverFarm(fakeHost().host, request('web')), /Ganeti instance web\.xivo\.vm\.farm exists/);
	const noZone = fakeHost({files: {'/etc/bind/db.farm': undefined as unknown as string}});
	await refuses(discoverFarm(noZone.host, request()), /zoneFile \/etc\/bind\/db\.farm: no such file/);
});
