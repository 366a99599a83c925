import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import {test} from 'node:test';
import {execa} from 'execa';
import {createSimFarm, type SimFarm} from '../../source/sim/farm.js';
import {readGanetiState} from '../../source/sim/ganeti-state.js';
import {vmPid} from '../../source/sim/kvm.js';
import {isServiceProcess, readServicesState, simServiceFiles, simServiceNames} from '../../source/sim/services.js';
import {gallifreyForward} from '../../source/sim/shorewall-tree.js';
import {simFarm} from '../../source/sim/tree.js';

const needsRoot = process.getuid?.() === 0 ? false : 'the simulated farm needs root (network namespaces)';
const mebibyte = 1024 * 1024;

async function newFarm(t: {after: (fn: () => Promise<void>) => void}): Promise<SimFarm> {
	const farm = await createSimFarm({sourceSize: 8 * mebibyte});
	t.after(async () => {
		await farm.stop();
		await fs.rm(farm.root, {recursive: true, force: true});
	});
	return farm;
}

/** Runs one of the sim's commands (root/bin) as farmclone would find it on its command path. */
async function sim(farm: SimFarm, command: string, args: string[]) {
	const result = await execa(path.join(farm.root, 'bin', command), args, {reject: false, env: {LC_ALL: 'C'}});
	return {exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr)};
}

async function namespaceOf(pid: number): Promise<string> {
	return String((await execa('ip', ['netns', 'identify', String(pid)])).stdout).trim();
}

async function namespaces(): Promise<string[]> {
	const {stdout} = await execa('ip', ['netns', 'list']);
	return String(stdout)
		.split('\n')
		.map((line) => line.split(' ')[0]!)
		.filter(Boolean);
}

async function bumpSerial(zoneFile: string, extraLine: string): Promise<void> {
	const zone = await fs.readFile(zoneFile, 'utf8');
	const bumped = zone.replace(
		/(\d{10})(\s*;\s*serial)/,
		(_match, serial: string, rest: string) => `${Number(serial) + 1}${rest}`,
	);
	assert.notEqual(bumped, zone, 'the zone has a serial to bump');
	await fs.writeFile(zoneFile, `${bumped}${extraLine}\n`);
}

test(
	'named, dhcpd and nginx run inside the sim host namespace, answering through the wrappers',
	{skip: needsRoot, timeout: 120_000},
	async (t) => {
		const farm = await newFarm(t);
		const state = await readServicesState(farm.root);
		assert.ok(state, 'services.json records the sim host');
		assert.match(state.namespace, /^fcsim-[\da-f]{8}$/);
		assert.ok((await namespaces()).includes(state.namespace));
		for (const service of simServiceNames) {
			const pid: number | undefined = state.pids[service];
			assert.ok(pid && (await isServiceProcess(pid, service)), `${service} runs`);
			assert.equal(await namespaceOf(pid), state.namespace, `${service} runs inside the namespace`);
		}

		const soa = await sim(farm, 'dig', ['@127.0.0.1', 'farm', 'SOA', '+short']);
		assert.equal(soa.exitCode, 0, soa.stderr);
		assert.match(soa.stdout, new RegExp(`^${simFarm.node.replaceAll('.', '\\.')}\\. `));

		// A record added to the zone is served once rndc reloads it: the real named, through the real rndc.
		await bumpSerial(farm.settings.zoneFile, 'tardis.xivo.vm\tIN\tA\t10.10.60.42');
		const reload = await sim(farm, 'rndc', ['reload', 'farm']);
		assert.equal(reload.exitCode, 0, reload.stderr);
		assert.match(reload.stdout, /zone reload/);
		const answer = await sim(farm, 'dig', ['@127.0.0.1', 'tardis.xivo.vm.farm', 'A', '+short']);
		assert.equal(answer.stdout.trim(), '10.10.60.42');

		// Names resolve through the sim's named only: the namespace's resolv.conf points at it.
		const resolvConf = await fs.readFile(path.join('/etc/netns', state.namespace, 'resolv.conf'), 'utf8');
		assert.deepEqual(resolvConf.match(/^nameserver .*$/gm), ['nameserver 127.0.0.1']);

		const nginx = await sim(farm, 'nginx', ['-t', '-c', farm.settings.nginxConf]);
		assert.equal(nginx.exitCode, 0, nginx.stderr);
		assert.match(nginx.stderr, /syntax is ok/);

		const shorewall = await sim(farm, 'shorewall', ['check', farm.settings.shorewallDir]);
		assert.equal(shorewall.exitCode, 0, `${shorewall.stdout}${shorewall.stderr}`);
		assert.match(shorewall.stdout, /Shorewall configuration verified/);

		const dhcpdLog = await fs.readFile(path.join(simServiceFiles(farm.root).logDir, 'dhcpd.log'), 'utf8');
		assert.match(dhcpdLog, /Listening on LPF\/farm0\//);
	},
);

test(
	'systemctl restarts, reloads and reports the sim services like systemd',
	{skip: needsRoot, timeout: 120_000},
	async (t) => {
		const farm = await newFarm(t);
		const before = (await readServicesState(farm.root))!.pids.dhcpd;
		const restart = await sim(farm, 'systemctl', ['restart', 'isc-dhcp-server']);
		assert.equal(restart.exitCode, 0, restart.stderr);
		const after = (await readServicesState(farm.root))!.pids.dhcpd;
		assert.ok(after && after !== before, 'dhcpd was started again');
		assert.ok(await isServiceProcess(after, 'dhcpd'));
		assert.ok(!(await isServiceProcess(before, 'dhcpd')), 'the old dhcpd is gone');

		const conf = await fs.readFile(farm.settings.dhcpdConf, 'utf8');
		await fs.writeFile(farm.settings.dhcpdConf, `${conf}\nhost broken.farm {\n\thardware ethernet nonsense;\n}\n`);
		const refused = await sim(farm, 'systemctl', ['restart', 'isc-dhcp-server']);
		assert.equal(refused.exitCode, 1);
		assert.match(
			refused.stderr,
			/^Job for isc-dhcp-server\.service failed because the control process exited with error code\./,
		);
		const failed = await sim(farm, 'systemctl', ['is-active', 'isc-dhcp-server']);
		assert.deepEqual([failed.exitCode, failed.stdout.trim()], [3, 'failed']);

		// named keeps working while dhcpd.conf is broken.
		assert.equal((await sim(farm, 'rndc', ['status'])).exitCode, 0);

		await fs.writeFile(farm.settings.dhcpdConf, conf);
		assert.equal((await sim(farm, 'systemctl', ['restart', 'isc-dhcp-server'])).exitCode, 0);
		const active = await sim(farm, 'systemctl', ['is-active', 'isc-dhcp-server']);
		assert.deepEqual([active.exitCode, active.stdout.trim()], [0, 'active']);

		const nginxPid = (await readServicesState(farm.root))!.pids.nginx;
		const reload = await sim(farm, 'systemctl', ['reload', 'nginx']);
		assert.equal(reload.exitCode, 0, reload.stderr);
		assert.equal((await readServicesState(farm.root))!.pids.nginx, nginxPid, 'a reload keeps the master process');
		const status = await sim(farm, 'systemctl', ['status', 'nginx.service']);
		assert.equal(status.exitCode, 0);
		assert.match(status.stdout, new RegExp(`Main PID: ${nginxPid} `));

		const noReload = await sim(farm, 'systemctl', ['reload', 'isc-dhcp-server']);
		assert.equal(noReload.exitCode, 1);
		assert.match(noReload.stderr, /Job type reload is not applicable/);
		const unknown = await sim(farm, 'systemctl', ['restart', 'apache2']);
		assert.equal(unknown.exitCode, 5);
		assert.match(unknown.stderr, /Unit apache2\.service not found/);

		assert.equal((await sim(farm, 'systemctl', ['reload', 'bind9'])).exitCode, 0);
	},
);

test('shorewall restart changes the sim host firewall only', {skip: needsRoot, timeout: 120_000}, async (t) => {
	const farm = await newFarm(t);
	const {namespace} = (await readServicesState(farm.root))!;
	const hostRules = String((await execa('iptables', ['-t', 'nat', '-S'])).stdout);
	const restart = await sim(farm, 'shorewall', ['restart', farm.settings.shorewallDir]);
	assert.equal(restart.exitCode, 0, `${restart.stdout}${restart.stderr}`);
	const simRules = String((await execa('ip', ['netns', 'exec', namespace, 'iptables', '-t', 'nat', '-S'])).stdout);
	assert.match(simRules, new RegExp(`--dport ${gallifreyForward.port} .*--to-destination ${gallifreyForward.ip}:22`));
	assert.equal(String((await execa('iptables', ['-t', 'nat', '-S'])).stdout), hostRules);
	// Its compiled firewall and state stay in the sim tree (the vardir file).
	await fs.access(path.join(farm.root, 'var', 'lib', 'shorewall', 'firewall'));
});

test(
	'stop leaves no process and no namespace; any wrapper brings the sim host back',
	{skip: needsRoot, timeout: 120_000},
	async (t) => {
		const farm = await newFarm(t);
		const state = (await readServicesState(farm.root))!;
		const ganeti = await readGanetiState(farm.root);
		const qemu = await vmPid(ganeti.cluster, simFarm.sourceInstance);
		assert.ok(qemu, 'the source instance runs');
		assert.equal(await namespaceOf(qemu), state.namespace, 'its QEMU runs inside the namespace');

		await farm.stop();
		assert.ok(!(await namespaces()).includes(state.namespace));
		await assert.rejects(fs.access(path.join('/etc/netns', state.namespace)));
		for (const service of simServiceNames) assert.ok(!(await isServiceProcess(state.pids[service], service)));
		assert.equal(await vmPid(ganeti.cluster, simFarm.sourceInstance), undefined);
		await fs.access(farm.settings.zoneFile);

		// A later run on the same tree needs no start step.
		const soa = await sim(farm, 'dig', ['@127.0.0.1', 'farm', 'SOA', '+short']);
		assert.equal(soa.exitCode, 0, soa.stderr);
		assert.ok((await namespaces()).includes(state.namespace));
		const list = await sim(farm, 'gnt-instance', ['list', '--no-headers', '-o', 'status', simFarm.sourceInstance]);
		assert.equal(list.stdout.trim(), 'running', 'instances meant to be up are started again');
	},
);

test('the simulated farm says it needs root', async (t) => {
	t.mock.method(process as unknown as {getuid: () => number}, 'getuid', () => 1000);
	await assert.rejects(createSimFarm({sourceSize: 8 * mebibyte}), /must run as root: it creates a network namespace/);
});
