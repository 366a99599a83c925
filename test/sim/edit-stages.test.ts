import {execFileSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {after, before, test, type TestContext} from 'node:test';
import assert from 'node:assert/strict';
import {Host} from '../../source/host/host.js';
import {defaultSettings, type FarmSettings} from '../../source/settings/schema.js';
import {dhcpHostStage} from '../../source/stages/dhcp-host.js';
import {dnsRecordStage} from '../../source/stages/dns-record.js';
import {firewallRuleStage, previousFirewallFiles} from '../../source/stages/firewall-rule.js';
import {reverseProxyStage} from '../../source/stages/reverse-proxy.js';
import {StageError, type StageStates, type Stage, type StageContext} from '../../source/stages/types.js';
import {statesInMemory} from '../../source/stages/state.js';
import {refuses} from '../kit/stage.js';

/**
 * Each stage against real files in a temp directory, through a real Host,
 * with the real checkers. nginx and shorewall run only inside a network
 * namespace made here: nginx resolves the clone's name through that
 * namespace's /etc/hosts, shorewall probes iptables there.
 */

const namespace = `fct-${randomBytes(4).toString('hex')}`;
const namespaceEtc = path.join('/etc/netns', namespace);
const ip = '/usr/sbin/ip';

before(() => {
	execFileSync(ip, ['netns', 'add', namespace]);
	fs.mkdirSync(namespaceEtc, {recursive: true});
	fs.writeFileSync(
		path.join(namespaceEtc, 'hosts'),
		'127.0.0.1\tlocalhost\n10.10.60.6\tgallifrey-dev.xivo.vm.farm\n10.10.60.5\tgallifrey.xivo.vm.farm\n',
	);
	fs.writeFileSync(path.join(namespaceEtc, 'resolv.conf'), 'nameserver 127.0.0.1\n');
	// The reverse proxy asks nginx over HTTP, on the namespace's loopback, what it loaded.
	execFileSync(ip, ['-n', namespace, 'link', 'set', 'lo', 'up']);
	// Shorewall compiles for these interfaces; veth because this kernel has no dummy interfaces.
	execFileSync(ip, ['-n', namespace, 'link', 'add', 'net0', 'type', 'veth', 'peer', 'name', 'farm0']);
});

after(() => {
	try {
		execFileSync(ip, ['netns', 'delete', namespace]);
	} finally {
		fs.rmSync(namespaceEtc, {recursive: true, force: true});
	}
});

const zone = `$TTL 86400
$ORIGIN farm.
@	IN	SOA	ns.farm. hostmaster.farm. (
			2011072501	; serial
			3600		; refresh
			900		; retry
			604800		; expire
			86400 )		; negative TTL
	IN	NS	ns
ns	IN	A	10.10.60.1
gallifrey.xivo.vm	IN	A	10.10.60.5
`;

const dhcpdConf = `option domain-name "farm";
default-lease-time 600;
authoritative;

subnet 10.10.60.0 netmask 255.255.255.0 {
	range 10.10.60.100 10.10.60.200;
	option routers 10.10.60.1;
}

host gallifrey.xivo.vm.farm {
	hardware ethernet 52:54:a2:31:7c:01;
	fixed-address 10.10.60.5;
}
`;

const shorewallFiles = {
	zones: '#ZONE\tTYPE\nfw\tfirewall\nnet\tipv4\nloc\tipv4\n',
	interfaces: '?FORMAT 2\n#ZONE\tINTERFACE\tOPTIONS\nnet\tnet0\ttcpflags,nosmurfs\nloc\tfarm0\ttcpflags,routeback\n',
	policy: '#SOURCE\tDEST\tPOLICY\tLOGLEVEL\nloc\tnet\tACCEPT\nnet\tall\tDROP\tinfo\nall\tall\tREJECT\tinfo\n',
	params: 'IP_FAILOVER=192.0.2.10\nVM_GALLIFREY_XIVO=10.10.60.5\n',
	rules: `#ACTION\t\tSOURCE\t\tDEST\t\tPROTO\tDEST\tSOURCE\t\tORIGINAL
#\t\t\t\t\t\t\tPORT\tPORT(S)\t\tDEST
?SECTION NEW
ACCEPT\t\tnet\t\t$FW\t\ttcp\t22
?COMMENT gallifrey
DNAT\t\tnet\t\tloc:$VM_GALLIFREY_XIVO:22\ttcp\t22005\t-\t$IP_FAILOVER
`,
};

type Farm = {
	root: string;
	settings: FarmSettings;
	context: StageContext;
	states: StageStates;
	logs: string[];
	/** Lines the reload stand-in and the shorewall wrapper wrote. */
	reloads(): string[];
	shorewallCalls(): string[];
};

function write(file: string, content: string, mode?: number): void {
	fs.mkdirSync(path.dirname(file), {recursive: true});
	fs.writeFileSync(file, content, {mode});
}

/** Stops the nginx a reverse-proxy test started in the namespace, and waits until it is gone. */
async function stopNginx(pidFile: string): Promise<void> {
	const pid = Number(fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').trim() : 0);
	if (!pid) return;
	const alive = () => {
		try {
			process.kill(pid, 0);
			return true;
		} catch {
			return false;
		}
	};

	if (alive()) process.kill(pid, 'SIGTERM');
	for (let waited = 0; alive() && waited < 5000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
}

function makeFarm(t: TestContext, overrides: Partial<FarmSettings> = {}): Farm {
	const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-edit-'));
	t.after(async () => {
		await stopNginx(path.join(root, 'nginx.pid'));
		fs.rmSync(root, {recursive: true, force: true});
	});
	const bin = path.join(root, 'bin');
	const log = (name: string) => path.join(root, `${name}.log`);
	const inNamespace = `${ip} netns exec ${namespace}`;
	write(path.join(bin, 'nginx'), `#!/bin/sh\nexec ${inNamespace} /usr/sbin/nginx "$@"\n`, 0o755);
	write(path.join(bin, 'curl'), `#!/bin/sh\nexec ${inNamespace} /usr/bin/curl "$@"\n`, 0o755);
	write(
		path.join(bin, 'shorewall'),
		`#!/bin/sh\necho "$*" >> ${log('shorewall')}\n[ "$1" = check ] || { echo "test wrapper: only check" >&2; exit 2; }\nexec ${ip} netns exec ${namespace} /usr/sbin/shorewall "$@"\n`,
		0o755,
	);
	// A real nginx in the namespace, started by the first reload: the stage asks it what it loaded.
	const nginx = `${inNamespace} /usr/sbin/nginx -c ${path.join(root, 'etc/nginx/nginx.conf')}`;
	write(
		path.join(bin, 'reload-nginx'),
		`#!/bin/sh\necho reload >> ${log('reloads')}\nif [ -s ${root}/nginx.pid ]; then exec ${nginx} -s reload; else exec ${nginx}; fi\n`,
		0o755,
	);

	const etc = path.join(root, 'etc');
	write(path.join(etc, 'bind/db.farm'), zone);
	write(path.join(etc, 'dhcp/dhcpd.conf'), dhcpdConf);
	write(path.join(etc, 'shorewall/shorewall.conf'), fs.readFileSync('/etc/shorewall/shorewall.conf', 'utf8'));
	for (const [name, content] of Object.entries(shorewallFiles)) write(path.join(etc, 'shorewall', name), content);
	const logDir = path.join(root, 'var/log/nginx');
	fs.mkdirSync(logDir, {recursive: true});
	write(
		path.join(etc, 'nginx/nginx.conf'),
		`pid ${root}/nginx.pid;\nerror_log ${logDir}/error.log;\nevents { worker_connections 64; }\nhttp {\n\taccess_log ${logDir}/access.log;\n\tinclude sites-enabled/*;\n}\n`,
	);
	fs.mkdirSync(path.join(etc, 'nginx/sites-available'));
	fs.mkdirSync(path.join(etc, 'nginx/sites-enabled'));

	const settings = defaultSettings('gallifrey-dev', {
		commandPath: [bin],
		zoneFile: path.join(etc, 'bind/db.farm'),
		dhcpdConf: path.join(etc, 'dhcp/dhcpd.conf'),
		mac: '52:54:86:b3:3f:10',
		shorewallDir: path.join(etc, 'shorewall'),
		nginxConf: path.join(etc, 'nginx/nginx.conf'),
		sitesAvailable: path.join(etc, 'nginx/sites-available'),
		sitesEnabled: path.join(etc, 'nginx/sites-enabled'),
		nginxLogDir: logDir,
		nginxReload: [path.join(bin, 'reload-nginx')],
		...overrides,
	});
	const {states, saveState} = statesInMemory();
	const logs: string[] = [];
	const context: StageContext = {
		settings,
		host: new Host({backupDir: path.join(root, 'backups'), commandPath: [bin]}),
		states,
		saveState,
		async updateSettings(patch) {
			Object.assign(settings, patch);
		},
		stateDir: path.join(root, 'state'),
		log: (text) => logs.push(text),
		progress() {},
		prompt: {
			confirm: async () => false,
			choose: async () => {
				throw new Error('no prompt in these tests');
			},
			typed: async () => false,
		},
		signal: new AbortController().signal,
	};
	const lines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n') : []);
	return {
		root,
		settings,
		context,
		states,
		logs,
		reloads: () => lines(log('reloads')),
		shorewallCalls: () => lines(log('shorewall')),
	};
}

/** Runs the stage to the end and back, asserting what check says at each step. */
async function roundTrip(stage: Stage, context: StageContext): Promise<void> {
	assert.equal((await stage.check(context)).status, 'pending');
	await stage.apply(context);
	const done = await stage.check(context);
	assert.equal(done.status, 'done', done.detail);
	await stage.verify(context);
}

const read = (file: string) => fs.readFileSync(file, 'utf8');

test('dns-record: plan, apply, idempotent, verify, undo', async (t) => {
	const {settings, context, states, logs} = makeFarm(t);
	const plan = await dnsRecordStage.plan(context);
	assert.deepEqual(plan.commands, [['named-checkzone', '-i', 'local', 'farm', settings.zoneFile]]);
	assert.match(plan.diffs[0]!.diff, /^\+gallifrey-dev\.xivo\.vm\tIN\tA\t10\.10\.60\.6 ; farmclone:gallifrey-dev$/m);
	assert.match(plan.diffs[0]!.diff, /^-\t\t\t2011072501\t; serial$/m);

	await roundTrip(dnsRecordStage, context);
	const applied = read(settings.zoneFile);
	assert.equal(read(String(states['dns-record']?.['backup'])), zone);
	assert.equal(states['dns-record']?.['serialBefore'], '2011072501');
	assert.ok(applied.includes(`\t\t\t${String(states['dns-record']?.['serialAfter'])}\t; serial`));
	assert.match(logs.join('\n'), /added "gallifrey-dev\.xivo\.vm/);

	await dnsRecordStage.apply(context);
	assert.equal(read(settings.zoneFile), applied);

	assert.equal((await dnsRecordStage.undoPlan!(context)).diffs.length, 1);
	await dnsRecordStage.undo(context);
	// One NS and no secondaries: nothing can hold the run's serial, so the file comes back byte for byte.
	assert.equal(read(settings.zoneFile), zone);
	assert.equal((await dnsRecordStage.check(context)).status, 'pending');
	await refuses(dnsRecordStage.verify(context), /not in/);

	// With secondaries (and no server saying the old serial is still the served one) undo bumps the serial again.
	await dnsRecordStage.apply(context);
	const secondaries = {...context, settings: {...settings, zoneSecondaries: 'yes' as const}};
	assert.match((await dnsRecordStage.undoPlan!(secondaries)).notes.join('\n'), /bumps it again/);
	await dnsRecordStage.undo(secondaries);
	const undoSerial = String(states['dns-record']?.['undoSerial']);
	assert.ok(Number(undoSerial) > Number(states['dns-record']?.['serialAfter']));
	assert.equal(read(settings.zoneFile), zone.replace('2011072501', undoSerial));
});

test('dns-record: the IP held by another name is refused, the file untouched', async (t) => {
	const {settings, context} = makeFarm(t);
	const taken = `${zone}build.xivo.vm\tIN\tA\t10.10.60.6\n`;
	fs.writeFileSync(settings.zoneFile, taken);
	const check = await dnsRecordStage.check(context);
	assert.equal(check.status, 'conflict');
	assert.match(check.detail, /build\.xivo\.vm.*already holds 10\.10\.60\.6/);
	await refuses(dnsRecordStage.apply(context), /already holds/);
	assert.equal(read(settings.zoneFile), taken);
});

test('dns-record: named-checkzone refusing the zone puts the old bytes back', async (t) => {
	const {settings, context, states} = makeFarm(t);
	// An in-zone NS without an address: our parser has no objection, named-checkzone has.
	const broken = zone.replace('\tIN\tNS\tns\n', '\tIN\tNS\tns\n\tIN\tNS\tns2\n');
	fs.writeFileSync(settings.zoneFile, broken);
	await refuses(dnsRecordStage.apply(context), /named-checkzone .* refused[\s\S]*ns2\.farm[\s\S]*no address records/);
	assert.equal(read(settings.zoneFile), broken);
	assert.equal(states['dns-record']?.['backup'], undefined);
});

test('dhcp-host: apply, dhcpd -t, idempotent, undo to the same bytes', async (t) => {
	const {settings, context, states, logs} = makeFarm(t);
	const plan = await dhcpHostStage.plan(context);
	assert.deepEqual(plan.commands, [['dhcpd', '-t', '-cf', settings.dhcpdConf]]);
	assert.match(plan.diffs[0]!.diff, /^\+\tfixed-address 10\.10\.60\.6; # farmclone:gallifrey-dev$/m);
	assert.match(plan.notes.join('\n'), /IP literal/);

	await roundTrip(dhcpHostStage, context);
	const applied = read(settings.dhcpdConf);
	assert.equal(read(String(states['dhcp-host']?.['backup'])), dhcpdConf);
	assert.match(logs.join('\n'), /IP literal/);
	await dhcpHostStage.apply(context);
	assert.equal(read(settings.dhcpdConf), applied);

	await dhcpHostStage.undo(context);
	assert.equal(read(settings.dhcpdConf), dhcpdConf);
	assert.equal((await dhcpHostStage.check(context)).status, 'pending');
});

test('dhcp-host: no MAC, a MAC in use, dhcpd -t refusing: the file keeps its bytes', async (t) => {
	const {settings, context} = makeFarm(t);
	settings.mac = '';
	await refuses(dhcpHostStage.apply(context), /no MAC/);
	assert.equal(read(settings.dhcpdConf), dhcpdConf);

	settings.mac = '52:54:A2:31:7C:01';
	assert.equal((await dhcpHostStage.check(context)).status, 'conflict');
	await refuses(dhcpHostStage.apply(context), /already has hardware ethernet/);
	assert.equal(read(settings.dhcpdConf), dhcpdConf);

	settings.mac = '52:54:86:b3:3f:10';
	const rejected = `${dhcpdConf}option no-such-option 1;\n`;
	fs.writeFileSync(settings.dhcpdConf, rejected);
	await refuses(dhcpHostStage.apply(context), /dhcpd -t -cf .* refused[\s\S]*unknown option/);
	assert.equal(read(settings.dhcpdConf), rejected);
});

test('firewall-rule: apply, shorewall check in the namespace, undo to the same bytes', async (t) => {
	const farm = makeFarm(t);
	const {settings, context} = farm;
	const paramsPath = path.join(settings.shorewallDir, 'params');
	const rulesPath = path.join(settings.shorewallDir, 'rules');
	const plan = await firewallRuleStage.plan(context);
	assert.deepEqual(plan.commands, [['shorewall', 'check', settings.shorewallDir]]);
	assert.deepEqual(
		plan.diffs.map((diff) => diff.path),
		[paramsPath, rulesPath],
	);
	assert.equal(firewallRuleStage.danger, 'confirm');

	await roundTrip(firewallRuleStage, context);
	const rules = read(rulesPath);
	assert.match(
		rules,
		/^DNAT\t\tnet\t\tloc:\$VM_GALLIFREY_DEV_XIVO:22\ttcp\t22006\t-\t\$IP_FAILOVER # farmclone:gallifrey-dev\n\?COMMENT gallifrey$/m,
	);
	assert.match(read(paramsPath), /^VM_GALLIFREY_DEV_XIVO=10\.10\.60\.6 # farmclone:gallifrey-dev$/m);

	assert.deepEqual(await previousFirewallFiles(context), {
		[paramsPath]: shorewallFiles.params,
		[rulesPath]: shorewallFiles.rules,
	});
	await firewallRuleStage.undo(context);
	assert.equal(read(paramsPath), shorewallFiles.params);
	assert.equal(read(rulesPath), shorewallFiles.rules);
	// Checked with the rule (apply) and without it (undo); verify's check of the same files as apply's is not run
	// again in the same process (Host.runCheck).
	assert.deepEqual(farm.shorewallCalls(), [`check ${settings.shorewallDir}`, `check ${settings.shorewallDir}`]);
});

test('firewall-rule: the port already forwarded, or shorewall check refusing: files keep their bytes', async (t) => {
	const farm = makeFarm(t);
	const {settings, context} = farm;
	const rulesPath = path.join(settings.shorewallDir, 'rules');
	const paramsPath = path.join(settings.shorewallDir, 'params');
	const forwarded = `${shorewallFiles.rules}DNAT\tnet\tloc:10.10.60.9:22\ttcp\t22000:22010\t-\t$IP_FAILOVER\n`;
	fs.writeFileSync(rulesPath, forwarded);
	assert.equal((await firewallRuleStage.check(context)).status, 'conflict');
	await refuses(firewallRuleStage.apply(context), /port 22006 is already forwarded/);
	assert.equal(read(rulesPath), forwarded);
	assert.deepEqual(farm.shorewallCalls(), []);

	fs.writeFileSync(rulesPath, shorewallFiles.rules);
	settings.originalDest = '$NOT_SET_ANYWHERE';
	await refuses(firewallRuleStage.apply(context), /shorewall check .* refused[\s\S]*NOT_SET_ANYWHERE/);
	assert.equal(read(rulesPath), shorewallFiles.rules);
	assert.equal(read(paramsPath), shorewallFiles.params);
});

test('reverse-proxy: site, relative link, nginx -t in the namespace, reload; undo removes both', async (t) => {
	const farm = makeFarm(t);
	const {settings, context, states} = farm;
	const file = path.join(settings.sitesAvailable, settings.serverName);
	const link = path.join(settings.sitesEnabled, settings.serverName);
	const plan = await reverseProxyStage.plan(context);
	assert.deepEqual(plan.commands.slice(0, 2), [['nginx', '-t', '-c', settings.nginxConf], settings.nginxReload]);
	assert.equal(plan.commands[2]?.[0], 'curl', 'then curl asks nginx what it loaded');
	assert.match(plan.diffs[0]!.diff, /^--- \/dev\/null$/m);
	assert.match(plan.notes.join('\n'), /DNS record must be served first/);
	assert.match(plan.notes.join('\n'), /includes .*sites-enabled/);

	await roundTrip(reverseProxyStage, context);
	assert.equal(fs.readlinkSync(link), `../sites-available/${settings.serverName}`);
	assert.match(read(file), /proxy_pass http:\/\/gallifrey-dev\.xivo\.vm\.farm;/);
	assert.equal(states['reverse-proxy']?.['link'], link);
	assert.deepEqual(farm.reloads(), ['reload']);

	await reverseProxyStage.undo(context);
	assert.ok(!fs.existsSync(file));
	assert.throws(() => fs.lstatSync(link));
	assert.deepEqual(fs.readdirSync(settings.sitesEnabled), []);
	assert.deepEqual(farm.reloads(), ['reload', 'reload']);
	assert.equal((await reverseProxyStage.check(context)).status, 'pending');
});

test('reverse-proxy: a site not ours, or another server with the name, is refused', async (t) => {
	const {settings, context} = makeFarm(t);
	const file = path.join(settings.sitesAvailable, settings.serverName);
	const handmade = 'server {\n\tlisten 80;\n\tserver_name gallifrey-dev.dachary.org;\n}\n';
	fs.writeFileSync(file, handmade);
	await refuses(reverseProxyStage.apply(context), /not written by farmclone/);
	assert.equal(read(file), handmade);
	assert.deepEqual(fs.readdirSync(settings.sitesEnabled), []);

	fs.rmSync(file);
	const other = path.join(settings.sitesAvailable, 'default');
	fs.writeFileSync(other, `server {\n\tlisten *:80;\n\tserver_name www.dachary.org ${settings.serverName};\n}\n`);
	fs.symlinkSync('../sites-available/default', path.join(settings.sitesEnabled, 'default'));
	const check = await reverseProxyStage.check(context);
	assert.equal(check.status, 'conflict');
	assert.match(check.detail, /sites-enabled\/default line 1: a server already answers/);
	await refuses(reverseProxyStage.apply(context), /already answers/);
	assert.ok(!fs.existsSync(file));
});

test('reverse-proxy: nginx -t refusing (the name does not resolve) removes what was added', async (t) => {
	const farm = makeFarm(t, {record: 'not-in-dns.xivo.vm'});
	const {settings, context} = farm;
	await assert.rejects(reverseProxyStage.apply(context), (error: unknown) => {
		assert.ok(error instanceof StageError);
		assert.match(error.message, /host not found in upstream "not-in-dns\.xivo\.vm\.farm"/);
		assert.match(error.hint ?? '', /DNS record must be served first/);
		return true;
	});
	assert.deepEqual(fs.readdirSync(settings.sitesAvailable), []);
	assert.deepEqual(fs.readdirSync(settings.sitesEnabled), []);
	assert.deepEqual(farm.reloads(), []);
});

test('reverse-proxy without sites-enabled: says whether nginx.conf includes sites-available', async (t) => {
	const {settings, context, root} = makeFarm(t);
	fs.rmSync(settings.sitesEnabled, {recursive: true});
	const check = await reverseProxyStage.check(context);
	assert.equal(check.status, 'pending');
	assert.match(check.detail, /nothing in .*nginx\.conf includes .*sites-available\/gallifrey-dev\.dachary\.org/);

	fs.writeFileSync(settings.nginxConf, read(settings.nginxConf).replace('sites-enabled/*', 'sites-available/*'));
	assert.match((await reverseProxyStage.check(context)).detail, /includes .* through "include .*sites-available\/\*"/);
	await roundTrip(reverseProxyStage, context);
	assert.deepEqual(fs.readdirSync(path.join(root, 'etc/nginx')).sort(), ['nginx.conf', 'sites-available']);
	await reverseProxyStage.undo(context);
	assert.deepEqual(fs.readdirSync(settings.sitesAvailable), []);
});
