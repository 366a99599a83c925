/**
 * One farm's settings: everything farmclone needs to clone `sourceInstance`
 * into the development VM `name`. File paths are settings so that the same
 * code runs against a real host and the simulated farm; device paths are not
 * (they come from `lvs`).
 */
export type FarmSettings = {
	/** The clone's short name, also the farm's key: `gallifrey-dev`. */
	name: string;
	/** Directories searched for commands before PATH (the simulated farm's `bin/`). */
	commandPath: string[];

	// LVM
	vg: string;
	/** Ganeti instance being cloned: `gallifrey.xivo.vm.farm`. */
	sourceInstance: string;
	/** The source instance's disk LV inside `vg`: `f3e8d23f-….disk0`. */
	sourceLv: string;
	/** Size given to the copy-on-write snapshot, LVM syntax (`1G`). */
	snapshotSize: string;
	/** Snapshot LV name: says whose snapshot it is. */
	snapshotLv: string;
	/** Target LV name before Ganeti adopts (and renames) it. */
	targetLv: string;
	/** dd block size, in bytes. */
	copyBlockSize: number;
	/** `auto` (full speed while the disks are otherwise idle, gentle while VMs use them), `max`, or a rate such as `80M`. */
	copyRate: string;
	/** Fill level at which the snapshot is extended (headless) or the admin asked (TUI). */
	snapshotWarnPercent: number;
	/** Extend the snapshot by this much when it fills up, LVM syntax; empty: never extend. */
	snapshotExtendBy: string;

	// DNS
	zoneFile: string;
	/** Zone origin without the trailing dot: `farm`. */
	zone: string;
	/** Record name relative to the zone: `gallifrey-dev.xivo.vm`. */
	record: string;
	ip: string;
	/** Reload argv for BIND; the zone name is appended. */
	rndc: string[];
	/** DNS server asked to prove the record is served, and its port. */
	dnsServer: string;
	dnsPort: number;
	/**
	 * Whether other servers transfer the zone. They never take a lower SOA
	 * serial, so undo then bumps it again instead of restoring the old one.
	 * `auto`: yes when the zone names more than one NS at its apex.
	 */
	zoneSecondaries: 'auto' | 'yes' | 'no';

	// DHCP
	dhcpdConf: string;
	/** Filled in by the MAC stage on first run, then reused. */
	mac: string;
	subnetMask: string;
	dhcpRestart: string[];
	/**
	 * dhcpd's pid file, to prove after a restart that a new dhcpd runs with the
	 * current dhcpd.conf. Debian's isc-dhcp-server init script starts dhcpd
	 * without -pf, so dhcpd writes its built-in /var/run/dhcpd.pid (the
	 * script's DHCPDv4_PID, /etc/default/isc-dhcp-server); Ubuntu's systemd
	 * unit passes -pf /run/dhcp-server/dhcpd.pid.
	 */
	dhcpdPidFile: string;

	// Ganeti
	ganetiNode: string;
	ganetiOs: string;
	/** Memory at boot, Ganeti syntax (`4G`). */
	memory: string;
	/** Memory after ballooning down (`1G`). */
	balloonMemory: string;
	/** QEMU monitor socket; `{instance}` is replaced by the instance name. */
	monitorSocket: string;

	// Shorewall
	shorewallDir: string;
	/** External port forwarded to the clone's SSH port. */
	sshPort: number;
	/** Shell variable holding the clone's IP in `params`. */
	shorewallParam: string;
	sourceZone: string;
	destZone: string;
	/** ORIGINAL DEST column: the host's public address, usually a `$PARAM`. */
	originalDest: string;
	/** Seconds the admin has to confirm the new firewall before it is rolled back. */
	firewallTimeout: number;
	/** Seconds `shorewall restart` may take; past them the watchdog rolls back (the confirmation time starts after it). */
	firewallRestartTimeout: number;

	// nginx
	nginxConf: string;
	sitesAvailable: string;
	sitesEnabled: string;
	/** Public name served by the reverse proxy: `gallifrey-dev.dachary.org`. */
	serverName: string;
	listen: string;
	nginxLogDir: string;
	nginxReload: string[];

	// The clone's identity, changed in its filesystem before it first boots
	/** `/etc/hostname` and the `127.0.1.1` line of `/etc/hosts` name the clone. */
	identityHostname: boolean;
	/** The copied SSH host keys removed, fresh ones generated. */
	identitySshKeys: boolean;
	/** `/etc/machine-id` (and a D-Bus copy that is a file) emptied: the clone makes its own on first boot. */
	identityMachineId: boolean;
	/** udev's `70-persistent-net.rules` removed: it pins eth0 to the source's MAC. */
	identityPersistentNet: boolean;
	/** DHCP client leases removed. */
	identityDhcpLeases: boolean;
	/** `GIT_REVISION=master` in the packaging farm's configuration: a development farm builds from master. */
	identityGitRevision: boolean;
	/** Where the packaging farm's configuration is, inside the clone. */
	packagingFarmConf: string;
};

export type SettingsField = keyof FarmSettings;

/** The clone's fully qualified name: record + zone. */
export function fqdn(settings: Pick<FarmSettings, 'record' | 'zone'>): string {
	return `${settings.record}.${settings.zone}`;
}

export function monitorSocketPath(settings: FarmSettings): string {
	return settings.monitorSocket.replaceAll('{instance}', fqdn(settings));
}

export function lastOctet(ip: string): number {
	return Number(ip.split('.').at(-1));
}

/** `gallifrey-dev.xivo` -> `VM_GALLIFREY_DEV_XIVO`, as the seed names its params. */
export function shorewallParamFor(record: string): string {
	const labels = record.split('.');
	const meaningful = labels.length > 2 ? labels.slice(0, -1) : labels;
	return `VM_${meaningful
		.join('_')
		.replaceAll(/[^A-Za-z\d]/g, '_')
		.toUpperCase()}`;
}

/** Settings that follow the seed, for a clone called `name` of `sourceInstance`. */
export function defaultSettings(name: string, overrides: Partial<FarmSettings> = {}): FarmSettings {
	const record = overrides.record ?? `${name}.xivo.vm`;
	const ip = overrides.ip ?? '10.10.60.6';
	const base: FarmSettings = {
		name,
		commandPath: [],
		vg: 'all',
		sourceInstance: 'gallifrey.xivo.vm.farm',
		sourceLv: '',
		snapshotSize: '1G',
		snapshotLv: `${name}-farmclone-snap`,
		targetLv: name,
		copyBlockSize: 1024 * 1024,
		copyRate: 'auto',
		snapshotWarnPercent: 80,
		snapshotExtendBy: '1G',
		zoneFile: '/etc/bind/db.farm',
		zone: 'farm',
		record,
		ip,
		rndc: ['rndc', 'reload'],
		dnsServer: '127.0.0.1',
		dnsPort: 53,
		zoneSecondaries: 'auto',
		dhcpdConf: '/etc/dhcp/dhcpd.conf',
		mac: '',
		subnetMask: '255.255.255.0',
		dhcpRestart: ['systemctl', 'restart', 'isc-dhcp-server'],
		dhcpdPidFile: '/run/dhcpd.pid',
		ganetiNode: 'host01.farm',
		ganetiOs: 'debootstrap+default',
		memory: '4G',
		balloonMemory: '1G',
		monitorSocket: '/var/run/ganeti/kvm-hypervisor/ctrl/{instance}.monitor',
		shorewallDir: '/etc/shorewall',
		sshPort: 22_000 + lastOctet(ip),
		shorewallParam: shorewallParamFor(record),
		sourceZone: 'net',
		destZone: 'loc',
		originalDest: '$IP_FAILOVER',
		firewallTimeout: 60,
		firewallRestartTimeout: 120,
		nginxConf: '/etc/nginx/nginx.conf',
		sitesAvailable: '/etc/nginx/sites-available',
		sitesEnabled: '/etc/nginx/sites-enabled',
		serverName: `${name}.dachary.org`,
		listen: '80',
		nginxLogDir: '/var/log/nginx',
		nginxReload: ['systemctl', 'reload', 'nginx'],
		identityHostname: true,
		identitySshKeys: true,
		identityMachineId: true,
		identityPersistentNet: true,
		identityDhcpLeases: true,
		identityGitRevision: true,
		packagingFarmConf: '/etc/packaging-farm/packaging-farm.conf',
	};
	return {...base, ...overrides};
}
