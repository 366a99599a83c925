/**
 * farmclone against a real farm host: real LVM2, real Ganeti 3.0, BIND,
 * dhcpd, Shorewall and nginx in a QEMU guest (test/kit/guest.ts). farmclone is
 * installed there from what `npm run build` made, runs the whole clone
 * headless, interrupted in the middle of its copy twice (dd killed, then
 * farmclone hung up) and resumed to done, then undoes it; the host must be
 * back as it was. One clone for all: each one costs a quarter of an hour
 * under TCG.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import {after, before, test} from 'node:test';
import {farmHost, installFarmclone, patience, waitFor, type FarmHost, type GuestJob} from '../kit/guest.js';
import {heldCopyScript} from '../kit/farm.js';
import {GuestTmux} from '../kit/guest-tmux.js';
import {writeRealFixture, writeRealVersions} from '../kit/real-fixtures.js';

const farm = 'gallifrey-dev';
/** Where the guest keeps the dd that holds the copy at its start (heldCopyScript), first on farmclone's PATH. */
const heldBin = '/root/farmclone-test-held';
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
	await host.guest.must(['sh', '-c', `mkdir -p ${heldBin} && cat > ${heldBin}/dd && chmod 755 ${heldBin}/dd`], {
		input: heldCopyScript('dd', '/bin/dd'),
	});
	const settings = {
		name: farm,
		commandPath: [heldBin],
		sourceLv: lv,
		snapshotSize: '512M',
		memory: '512M',
		balloonMemory: '256M',
		firewallTimeout: 600,
		firewallRestartTimeout: 600,
		// A fixed rate copies with dd, which these scenarios hold, kill and follow (under a kernel limit far above
		// what the guest copies). auto and max run farmclone's copier, not driven on the real host yet.
		copyRate: '1G',
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
/** The MAC `farmclone plan` showed before the first run: the one the clone must get. */
let plannedMac = '';
const instanceName = `${farm}.xivo.vm.farm`;

/** The MAC `farmclone plan` shows: the one it will pick, or the one kept in the settings. */
async function macOfPlan(): Promise<string> {
	const plan = await host.guest.run(['farmclone', 'plan', farm]);
	const mac = /\bMAC (52:54(?::[\da-f]{2}){4})\b/.exec(plan.stdout)?.[1];
	assert.ok(mac, `farmclone plan names the MAC:\n${plan.stdout}\n${plan.stderr}`);
	return mac;
}

/**
 * FARMCLONE_HOST_ONLY=keys runs only the key-driven clone (=resume only the others) on a fresh guest: a
 * scenario on its own, without waiting a quarter of an hour for the others.
 */
const only = process.env['FARMCLONE_HOST_ONLY'];
const unless = (scenario: string) => (only && only !== scenario ? `FARMCLONE_HOST_ONLY=${only}` : false);

async function instanceMacs(): Promise<string> {
	return (await host.guest.must(['gnt-instance', 'list', '--no-headers', '-o', 'nic.macs', instanceName])).trim();
}

const runArgv = ['farmclone', 'run', farm, ...confirm, '--restart-firewall', '--json'];

type Journal = {stages: Record<string, {state: string}>; states: Record<string, Record<string, unknown>>};

/** The farm's journal in the guest, or undefined before the run wrote one. */
async function journal(): Promise<Journal | undefined> {
	const read = await host.guest.run(['cat', `/var/lib/farmclone/${farm}/journal.json`]);
	return read.exitCode === 0 ? (JSON.parse(read.stdout) as Journal) : undefined;
}

/**
 * The copy's dd (other than `not`) once the journal names it and it holds itself at its start (the
 * settings put heldCopyScript first on farmclone's PATH): caught before its first byte however fast the
 * guest copies.
 */
async function heldCopy(run: GuestJob, not?: number): Promise<number> {
	let pid = 0;
	await waitFor(
		"the copy's dd to hold itself at its start",
		async () => {
			const recorded = await journal();
			if (recorded?.stages['copy']?.state === 'done') throw new Error('the copy ended without being held');
			// A run that stopped before its copy (a refusal, a failed stage) will never start one: say why now.
			const ended = await host.guest.run(['cat', run.exitFile]);
			if (ended.exitCode === 0) {
				throw new Error(
					`${run.name} ended (exit ${ended.stdout.trim()}) before its copy started:\n${await host.guest.output(run)}`,
				);
			}

			pid = Number(recorded?.states['copy']?.['pid']);
			if (!Number.isInteger(pid) || pid <= 0 || pid === not) return false;
			const stat = await host.guest.run(['cut', '-d', ' ', '-f', '3', `/proc/${pid}/stat`]);
			return stat.stdout.trim() === 'T';
		},
		patience.commandMs,
	);
	return pid;
}

/**
 * Lets a held dd copy, half a second at a time, until it has reported its progress `reports` times
 * (dd reports once a second); leaves it stopped.
 */
async function copyUntil(pid: number, reports: number): Promise<void> {
	const progressFile = String((await journal())?.states['copy']?.['progressFile']);
	await host.guest.script(
		`pid=$1 file=$2 want=$3
		reported() { tr '\\r' '\\n' < "$file" | grep -c '^[0-9][0-9]* bytes.* copied'; }
		for step in $(seq 1200); do
			[ "$(reported)" -ge "$want" ] && exit 0
			kill -CONT "$pid"; sleep 0.5; kill -STOP "$pid"
		done
		echo "dd reported $(reported) times in 1200 steps" >&2; exit 1`,
		[String(pid), progressFile, String(reports)],
	);
}

/**
 * Kills a held dd (SIGKILL) and says how far it got: its write position on the target (from the
 * kernel, while it is stopped) and every byte count it reported, read in the same breath.
 */
async function killCopy(pid: number): Promise<{position: number; reports: number[]}> {
	const progressFile = String((await journal())?.states['copy']?.['progressFile']);
	const output = await host.guest.script(
		`pid=$1 file=$2
		kill -STOP "$pid"
		target=$(readlink -f "$(tr '\\0' '\\n' < /proc/$pid/cmdline | sed -n 's/^of=//p')")
		for fd in /proc/$pid/fd/*; do
			[ "$(readlink -f "$fd")" = "$target" ] && sed -n 's/^pos:[[:space:]]*//p' /proc/$pid/fdinfo/\${fd##*/}
		done
		tr '\\r' '\\n' < "$file" | sed -n 's/^\\([0-9][0-9]*\\) bytes.* copied.*/report \\1/p'
		kill -KILL "$pid"
		while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done`,
		[String(pid), progressFile],
	);
	const lines = output.trim().split('\n');
	return {
		position: Number(lines.find((line) => /^\d+$/.test(line))),
		reports: lines.filter((line) => line.startsWith('report ')).map((line) => Number(line.slice(7))),
	};
}

async function isRunning(pid: number): Promise<boolean> {
	return (await host.guest.run(['kill', '-0', String(pid)])).exitCode === 0;
}

/** The run's bytes copied again: where the resumed dd started, against where the killed one had written. */
let killed: {pid: number; position: number; reports: number[]; blockSize: number} | undefined;
/** The resumed run, its dd held mid-copy: what the SIGHUP scenario hangs up. */
let secondRun: {job: GuestJob; dd: number} | undefined;

test(
	"kill -9 of dd mid-copy: the next run resumes at dd's last report, copying again only what dd wrote after it",
	{skip: unless('resume')},
	async () => {
		startingState = await hostState();
		plannedMac = await macOfPlan();
		const first = await host.guest.start('clone-1', runArgv);
		const pid = await heldCopy(first);
		await copyUntil(pid, 3);
		const copyState = (await journal())?.states['copy'];
		const blockSize = Number(copyState?.['blockSize']);
		const firstOffset = Number(copyState?.['startOffset'] ?? 0);
		killed = {pid, blockSize, ...(await killCopy(pid))};
		assert.equal(await host.guest.exitOf(first), 1, 'farmclone saw its copy die and stopped');
		assert.match(await host.guest.output(first), /copy failed/);

		// The next run resumes the copy; its dd is held in turn, for the SIGHUP that follows, which takes it
		// over even if an assertion below fails, so that one failure does not leave a run holding the farm.
		const second = await host.guest.start('clone-2', runArgv);
		const resumed = await heldCopy(second, pid);
		secondRun = {job: second, dd: resumed};
		const restart = Number((await journal())?.states['copy']?.['startOffset']);
		const steps = killed.reports.map((bytes, index) => bytes - (killed!.reports[index - 1] ?? 0));
		const lastReport = firstOffset + Math.max(0, ...killed.reports);
		console.log(
			`dd had written ${killed.position} bytes, last reported ${lastReport}; the next one started at ${restart}: ${killed.position - restart} copied again (largest step between reports ${Math.max(...steps)}, block ${blockSize})`,
		);
		assert.ok(killed.position > 0 && killed.reports.length >= 3, `dd was caught mid-copy: ${JSON.stringify(killed)}`);
		assert.ok(restart > 0, 'the copy did not start over');
		assert.ok(restart <= killed.position, 'nothing dd had not written is skipped');
		// The checkpoint is dd's last report (same boot, no margin): what is copied again is only what dd wrote
		// after it, at most one report's stretch. Compared with the report itself, not with the stretch between
		// two earlier reports, whose size follows how fast a loaded machine let dd run.
		assert.equal(
			restart,
			Math.floor(lastReport / blockSize) * blockSize,
			"the copy resumes at dd's last report, in whole blocks",
		);
	},
);

test(
	'SIGHUP of farmclone mid-copy: dd goes on, the next run follows the same dd and runs every stage to done',
	{skip: unless('resume')},
	async () => {
		assert.ok(secondRun, 'the copy was resumed first');
		const {job, dd} = secondRun;
		// dd copies a while first: the session is hung up with its copy really under way.
		await copyUntil(dd, 1);
		await host.guest.must(['kill', '-HUP', String(job.pid)]);
		assert.equal(await host.guest.exitOf(job), 1, 'the hung-up run stopped');
		assert.match(await host.guest.output(job), /resume: .*dd is gone\): resumes at/);
		// Stopped again: a run without a cgroup for dd paces it with SIGSTOP/SIGCONT, and may have left it going.
		await host.guest.run(['kill', '-STOP', String(dd)]);
		assert.ok(await isRunning(dd), 'dd outlives the session that started it');
		assert.equal((await journal())?.stages['copy']?.state, 'running');

		const third = await host.guest.start('clone-3', runArgv);
		const reattaching = `reattaching to the copy still running as pid ${dd} (same pid and start time as recorded)`;
		await waitFor(
			'the next run to reattach to dd',
			async () => (await host.guest.output(third)).includes(reattaching),
			patience.commandMs,
		);
		await host.guest.must(['kill', '-CONT', String(dd)]);
		const exitCode = await timed('clone', async () => host.guest.exitOf(third));
		const output = await host.guest.output(third);
		assert.equal(exitCode, 0, `farmclone run failed:\n${output}`);
		assert.ok(events(output).length > 0, 'farmclone printed JSON events');
		assert.equal((await journal())?.states['copy']?.['pid'], dd, 'no second dd was started');
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
		assert.equal(await instanceMacs(), plannedMac, 'the clone has the MAC farmclone plan showed before the run');
		// The clone's real QEMU answers on the monitor socket Ganeti made, where farmclone asked for the balloon.
		const balloon = await host.guest.must(
			['socat', '-t', '10', '-', `UNIX-CONNECT:/var/run/ganeti/kvm-hypervisor/ctrl/${farm}.xivo.vm.farm.monitor`],
			{input: 'info balloon\n'},
		);
		assert.match(balloon, /^balloon: actual=\d+/m, 'info balloon answers on the real monitor socket');
		const address = await host.guest.must(['dig', '+short', '@127.0.0.1', `${farm}.xivo.vm.farm`, 'A']);
		assert.equal(address.trim(), '10.10.60.6', 'BIND serves the clone');
	},
);

test(
	'farmclone undo puts LVs, instances and every edited file back as they were',
	{skip: unless('resume')},
	async () => {
		assert.ok(startingState, 'the clone ran first');
		const undo = await timed('undo', async () => host.guest.run(['farmclone', 'undo', farm, ...confirm]));
		assert.equal(undo.exitCode, 0, `farmclone undo failed:\n${undo.stdout}\n${undo.stderr}`);
		const state = await hostState();
		assert.equal(state.lvs, startingState.lvs);
		assert.equal(state.instances, startingState.instances);
		assert.equal(state.files, startingState.files);
	},
);

/** What a screen of `farmclone run` waits for, by the line that asks (the same question is answered once). */
function waitsFor(screen: string): {kind: string; line: string} | undefined {
	const line = (pattern: RegExp) => screen.split('\n').find((text) => pattern.test(text));
	const kinds: Array<[string, RegExp]> = [
		['exited', /^\[exited \d+\]$/],
		['end', /press any key to exit/],
		['confirmed', /^✔ confirmed from /],
		['firewall', /^Firewall restarted\. Keep it only if NEW ssh connections get in\.$/],
		['typed', /^Type the farm's name to run .*:$/],
		['question', /\(y\/n\)/],
		['gate', /^\? \d+\/\d+ .* · waits for you$/],
	];
	for (const [kind, pattern] of kinds) {
		const found = line(pattern);
		// A gate's title shows before its keys do: its Enter waits for the key line.
		if (found && (kind !== 'gate' || /Enter run|Enter: run once the preflight passes/.test(screen))) {
			return {kind, line: found};
		}
	}

	return undefined;
}

test(
	"the same clone driven by keys in tmux in the guest, copied by farmclone's copier on real LVM; undo gives the host back",
	{skip: unless('keys')},
	async () => {
		// After the scenarios above (undone), or on its own on a fresh guest.
		startingState ??= await hostState();
		plannedMac ||= await macOfPlan();
		// auto copies with farmclone's own copier, not dd.
		await host.guest.must(['farmclone', 'farm', 'set', farm, 'copyRate=auto']);
		const terminal = new GuestTmux(host.guest, 'farmclone-keys');
		const answered = new Set<string>();
		const screens: Record<string, string> = {};
		try {
			await terminal.start(['env', 'CI=false', 'TERM=xterm-256color', 'farmclone', 'run', farm]);
			await timed('keys', async () => {
				for (;;) {
					let asks: {kind: string; line: string} | undefined;
					const screen = await terminal.waitForScreen('the next screen that waits for a key', (now) => {
						asks = waitsFor(now);
						return asks !== undefined && !answered.has(asks.line);
					});
					const {kind, line} = asks!;
					answered.add(line);
					screens[kind] ??= screen;
					for (const text of screen.split('\n')) assert.ok(text.length <= 80, `wider than 80 columns: ${text}`);
					if (kind === 'exited') break;
					if (kind === 'gate' || kind === 'confirmed') await terminal.keys('Enter');
					else if (kind === 'typed') await terminal.type(farm);
					else if (kind === 'question') await terminal.keys('y');
					else if (kind === 'end') {
						screens['end'] = await terminal.screen(40);
						await terminal.keys('x');
					} else if (kind === 'firewall') {
						// A NEW SSH connection into the guest, as the screen asks: the proof this session cannot give.
						const confirmed = await host.guest.run(['farmclone', 'confirm', farm]);
						assert.equal(confirmed.exitCode, 0, `farmclone confirm:\n${confirmed.stdout}\n${confirmed.stderr}`);
					}
				}
			});
		} finally {
			console.log(`last screen of the key-driven run:\n${await terminal.screen(40).catch(() => '')}`);
			await terminal.kill();
		}

		assert.equal(await terminal.exitCode(), 0, `farmclone run exited non-zero:\n${screens['exited']}`);
		assert.match(
			screens['gate'] ?? '',
			/^\? 1\/\d+ .* · waits for you$/m,
			'the first gate waits for Enter, no spinner',
		);
		assert.ok(
			[...answered].some((line) => /^Type the farm's name to run .*Copy/i.test(line)),
			`the copy asked for the farm's name: ${[...answered].join(' | ')}`,
		);
		const firewall = screens['firewall'] ?? '';
		assert.match(firewall, /^\d+ s left · then the previous firewall comes back \(\d\d:\d\d:\d\d UTC\)$/m);
		assert.match(firewall, new RegExp(`^ {2}.*farmclone confirm ${farm}$`, 'm'), 'the command to run, whole');
		assert.match(
			screens['confirmed'] ?? '',
			/^the new firewall is kept: a connection opened after the restart got in$/m,
		);
		const end = screens['end'] ?? '';
		assert.match(end, new RegExp(`✔ ${farm} is ready \\((\\d+)/\\1 done\\)`), 'every stage done');
		assert.match(end, new RegExp(`^${farm} \\(${instanceName}\\): 10\\.10\\.60\\.6, MAC ${plannedMac}$`, 'm'));
		assert.match(end, /^ssh: ssh -p \d+ root@\S+$/m);

		const recorded = await journal();
		assert.equal(recorded?.states['copy']?.['copier'], 'farmclone-copy', 'the copy ran with the copier, not dd');
		assert.equal(recorded?.states['copy']?.['completed'], true);
		const notDone = Object.entries(recorded?.stages ?? {}).filter(([, stage]) => stage.state !== 'done');
		assert.deepEqual(notDone, [], 'every stage is done');
		assert.equal(await instanceMacs(), plannedMac, 'the MAC is still the one the first plan showed');

		const undo = await timed('undo-keys', async () => host.guest.run(['farmclone', 'undo', farm, ...confirm]));
		assert.equal(undo.exitCode, 0, `farmclone undo failed:\n${undo.stdout}\n${undo.stderr}`);
		assert.deepEqual(await hostState(), startingState);
	},
);
