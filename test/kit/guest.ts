/**
 * A real farm host in a QEMU guest (test/host/): its image built by
 * test/host/image.sh, booted once with its VG disk, driven over SSH on a
 * loopback port forward, its booted and initialised state saved in the cache
 * (savevm on qcow2) so that later runs restore it instead of booting.
 */
import {createHash} from 'node:crypto';
import {createWriteStream} from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa, type ResultPromise} from 'execa';
import {readProcStat} from '../../source/host/proc.js';
import {writeSimDisk} from '../../source/sim/disk.js';

export const cacheDir = process.env['FARMCLONE_TEST_CACHE'] ?? '/var/cache/farmclone-test';
const hostDir = path.resolve('test/host');
const guestMemory = '4G';
const vgDiskSize = '24G';
const snapshotName = 'farm-ready';
/** What a saved guest's machine is made of: a snapshot restores only into the same machine. */
const machine = `pc, ${guestMemory}, virtio root+vg+source (read-only) disks, virtio-net user 10.10.60.0/24`;

export type Accel = 'kvm' | 'tcg';

/** How long a step may take on a shared 2-core machine under TCG: a guard against hangs, never a pace. */
export const patience = {bootMs: 20 * 60_000, commandMs: 60 * 60_000, pollMs: 2000};

function log(text: string) {
	console.log(`[guest ${new Date().toISOString().slice(11, 19)}] ${text}`);
}

/** Polls `condition` until it is true; fails naming `what` after `limitMs`. */
export async function waitFor(what: string, condition: () => Promise<boolean>, limitMs: number): Promise<void> {
	const deadline = Date.now() + limitMs;
	for (;;) {
		if (await condition()) return;
		if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${Math.round(limitMs / 1000)} s`);
		await sleep(patience.pollMs);
	}
}

/** The image directory (built or cached by image.sh) and how long getting it took. */
export async function farmHostImage(): Promise<{dir: string; seconds: number}> {
	const started = Date.now();
	const {stdout} = await execa(path.join(hostDir, 'image.sh'), [], {stderr: 'inherit', timeout: 2 * 60 * 60_000});
	const dir = stdout.trim().split('\n').at(-1) ?? '';
	return {dir, seconds: Math.round((Date.now() - started) / 1000)};
}

/**
 * KVM when the image's kernel really runs under it, else TCG. Starting QEMU is
 * not proof: some paravirtual /dev/kvm make QEMU abort ("failed to set MSR")
 * or leave the vCPU silent forever. The probe boots the kernel with no root
 * (it prints its banner, then panics and QEMU exits) and waits a bounded time
 * for the banner.
 */
export async function chooseAccel(image: string): Promise<Accel> {
	const forced = process.env['FARMCLONE_TEST_ACCEL'];
	if (forced === 'kvm' || forced === 'tcg') return forced;
	// The probe costs up to 90 s when KVM does not work: its answer is kept with the image it booted.
	const known = await fs.readFile(path.join(image, 'accel'), 'utf8').catch(() => '');
	if (known.trim() === 'kvm' || known.trim() === 'tcg') return known.trim() as Accel;
	const accel = await probeAccel(image);
	await fs.writeFile(path.join(image, 'accel'), `${accel}\n`).catch(() => undefined);
	return accel;
}

async function probeAccel(image: string): Promise<Accel> {
	try {
		await fs.access('/dev/kvm');
	} catch {
		return 'tcg';
	}

	const banner = execa(
		'qemu-system-x86_64',
		[
			...['-accel', 'kvm', '-machine', 'pc', '-cpu', 'host', '-m', '256', '-display', 'none', '-nodefaults'],
			...[
				'-no-reboot',
				'-serial',
				'stdio',
				'-kernel',
				path.join(image, 'vmlinuz'),
				'-append',
				'console=ttyS0 panic=-1',
			],
		],
		{reject: false, buffer: false, stdin: 'ignore', stderr: 'ignore'},
	);
	let seen = '';
	banner.stdout?.on('data', (data: Buffer) => (seen += data.toString()));
	let ended = false;
	void banner.then(() => (ended = true));
	try {
		await waitFor('the kernel banner under KVM', async () => /Linux version/.test(seen) || ended, 90_000);
	} catch {}

	banner.kill('SIGKILL');
	return /Linux version/.test(seen) ? 'kvm' : 'tcg';
}

function quote(arg: string): string {
	return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

async function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = net.createServer();
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => {
			const address = server.address();
			server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
		});
	});
}

export type GuestRun = {stdout: string; stderr: string; exitCode: number};

/** A command started in the background in the guest (Guest.start): its pid and where its output goes. */
export type GuestJob = {name: string; pid: number; output: string; exitFile: string};

/** Where background jobs keep their output and exit status in the guest. */
const jobDir = '/root/farmclone-test-jobs';

export class Guest {
	private exited = false;
	private stopping = false;

	constructor(
		readonly dir: string,
		readonly accel: Accel,
		private readonly qemu: ResultPromise,
		private readonly sshPort: number,
		private readonly key: string,
	) {
		void qemu.then(
			(result) => {
				this.exited = true;
				// An SSH command then only says "closed by remote host": say who ended the guest.
				if (!this.stopping) log(`QEMU ended on its own: exit ${result.exitCode}, signal ${result.signal ?? 'none'}`);
			},
			() => (this.exited = true),
		);
	}

	get serialLog() {
		return path.join(this.dir, 'serial.log');
	}

	private sshArgs(): string[] {
		return [
			'-i',
			this.key,
			'-p',
			String(this.sshPort),
			'-o',
			'StrictHostKeyChecking=no',
			'-o',
			'UserKnownHostsFile=/dev/null',
			'-o',
			'LogLevel=ERROR',
			'-o',
			'BatchMode=yes',
			'-o',
			'ConnectTimeout=60',
			'-o',
			'ServerAliveInterval=30',
			'-o',
			'ServerAliveCountMax=20',
		];
	}

	/** Runs argv in the guest as root (quoted for the remote shell); never rejects. */
	async run(argv: string[], options: {input?: string; timeoutMs?: number} = {}): Promise<GuestRun> {
		const result = await execa('ssh', [...this.sshArgs(), 'root@127.0.0.1', '--', argv.map(quote).join(' ')], {
			input: options.input ?? '',
			reject: false,
			// Byte for byte: real output is captured as fixtures.
			stripFinalNewline: false,
			timeout: options.timeoutMs ?? patience.commandMs,
		});
		return {stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1};
	}

	/** Like run, but a failure throws with the command's output. */
	async must(argv: string[], options: {input?: string; timeoutMs?: number} = {}): Promise<string> {
		const result = await this.run(argv, options);
		if (result.exitCode !== 0) {
			throw new Error(`guest: ${argv.join(' ')} exited ${result.exitCode}\n${result.stdout}\n${result.stderr}`);
		}

		return result.stdout;
	}

	/** A bash script in the guest, read from stdin (arguments after it). */
	async script(text: string, args: string[] = [], timeoutMs?: number): Promise<string> {
		return this.must(['bash', '-s', '--', ...args], {input: text, timeoutMs});
	}

	/**
	 * Starts argv in the guest in the background, in a session of its own (no terminal, stdin from
	 * /dev/null), so that it outlives the SSH connection and a signal reaches only it. Its output goes
	 * to a file in the guest, its exit status to another once it ends.
	 */
	async start(name: string, argv: string[]): Promise<GuestJob> {
		const files = {output: `${jobDir}/${name}.out`, exit: `${jobDir}/${name}.exit`, pid: `${jobDir}/${name}.pid`};
		const pid = await this.script(
			[
				'set -eu',
				'out=$1 exit=$2 pidfile=$3',
				'shift 3',
				`mkdir -p ${jobDir}`,
				'rm -f "$out" "$exit" "$pidfile"',
				// $! is argv's own pid (env execs node): the one to signal.
				'setsid sh -c \'out=$1 exit=$2 pidfile=$3; shift 3; "$@" >"$out" 2>&1 </dev/null & echo $! >"$pidfile"; wait $!; echo $? >"$exit.tmp"; mv "$exit.tmp" "$exit"\' sh "$out" "$exit" "$pidfile" "$@" >/dev/null 2>&1 </dev/null &',
				'until [ -s "$pidfile" ]; do sleep 0.2; done',
				'cat "$pidfile"',
			].join('\n'),
			[files.output, files.exit, files.pid, ...argv],
		);
		log(`started ${argv.join(' ')} in the background as pid ${pid.trim()} (${files.output})`);
		return {name, pid: Number(pid), output: files.output, exitFile: files.exit};
	}

	/** What a background job printed so far. */
	async output(job: GuestJob): Promise<string> {
		return this.must(['cat', job.output]);
	}

	/** Waits for a background job to end (waiting in the guest: one SSH connection); its exit status. */
	async exitOf(job: GuestJob, limitMs = patience.commandMs): Promise<number> {
		const seconds = Math.round(limitMs / 1000);
		const waited = await this.run(
			['timeout', String(seconds), 'sh', '-c', 'until [ -e "$1" ]; do sleep 2; done; cat "$1"', 'sh', job.exitFile],
			{timeoutMs: limitMs + 60_000},
		);
		if (waited.exitCode !== 0) throw new Error(`${job.name} (pid ${job.pid}) did not end within ${seconds} s`);
		return Number(waited.stdout);
	}

	/** Copies local files into the guest (scp -r). */
	async copyIn(local: string[], remote: string): Promise<void> {
		const args = this.sshArgs().map((arg) => (arg === '-p' ? '-P' : arg));
		await execa('scp', [...args, '-r', '-q', ...local, `root@127.0.0.1:${remote}`], {timeout: patience.commandMs});
	}

	async waitForSsh(limitMs = patience.bootMs): Promise<void> {
		await waitFor(
			'the guest to answer SSH',
			async () => {
				if (this.exited) throw new Error(`QEMU exited; see ${this.serialLog}`);
				return (await this.run(['true'], {timeoutMs: 120_000})).exitCode === 0;
			},
			limitMs,
		);
	}

	/** One HMP command on the monitor socket; returns what it printed. */
	async monitor(command: string, timeoutMs = patience.commandMs): Promise<string> {
		const socket = path.join(this.dir, 'monitor.sock');
		return new Promise((resolve, reject) => {
			let text = '';
			let sent = false;
			const connection = net.createConnection(socket);
			const timer = setTimeout(() => {
				connection.destroy();
				reject(new Error(`monitor: no answer to ${command} in ${timeoutMs / 1000} s`));
			}, timeoutMs);
			connection.on('data', (data) => {
				text += data.toString();
				if (!text.endsWith('(qemu) ')) return;
				if (!sent) {
					sent = true;
					text = '';
					connection.write(`${command}\n`);
					return;
				}

				clearTimeout(timer);
				connection.end();
				resolve(text);
			});
			connection.on('error', (error) => {
				clearTimeout(timer);
				reject(error);
			});
		});
	}

	async stop(): Promise<void> {
		this.stopping = true;
		if (!this.exited) {
			await this.monitor('quit', 60_000).catch(() => undefined);
			await waitFor('QEMU to exit', async () => this.exited, 120_000).catch(() => this.qemu.kill('SIGKILL'));
		}
	}
}

/** Starts QEMU on the disks in dir (root.qcow2, vg.qcow2), restoring `loadvm` when given. */
export async function startGuest(
	dir: string,
	image: string,
	accel: Accel,
	sourceDisk: string,
	loadvm?: string,
): Promise<Guest> {
	const sshPort = await freePort();
	const serial = createWriteStream(path.join(dir, 'serial.log'), {flags: 'a'});
	const args = [
		'-accel',
		accel,
		'-machine',
		'pc',
		...(accel === 'kvm' ? ['-cpu', 'host'] : ['-cpu', 'max']),
		'-smp',
		'2',
		'-m',
		guestMemory,
		'-display',
		'none',
		'-nodefaults',
		'-no-user-config',
		'-kernel',
		path.join(image, 'vmlinuz'),
		'-initrd',
		path.join(image, 'initrd.img'),
		'-append',
		// A TCG guest on a busy host can get no CPU for minutes: that is starvation, not a kernel bug, and the
		// lockup and RCU stall detectors only add their reports (and work) to it.
		'root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet rcupdate.rcu_cpu_stall_suppress=1 nowatchdog',
		'-drive',
		`file=${path.join(dir, 'root.qcow2')},if=virtio,format=qcow2,cache=unsafe`,
		'-drive',
		`file=${path.join(dir, 'vg.qcow2')},if=virtio,format=qcow2,cache=unsafe`,
		// The source VM's disk image, read-only (so savevm leaves it out): the guest copies it to its LV.
		'-drive',
		`file=${sourceDisk},if=virtio,format=raw,readonly=on`,
		// The user network: the guest's 10.10.60.0/24, restricted (no route out), SSH reachable on loopback only.
		'-netdev',
		`user,id=farm,net=10.10.60.0/24,host=10.10.60.2,dns=10.10.60.3,restrict=on,hostfwd=tcp:127.0.0.1:${sshPort}-10.10.60.1:22`,
		'-device',
		'virtio-net-pci,netdev=farm,mac=52:54:00:12:34:01',
		'-serial',
		'stdio',
		'-monitor',
		`unix:${path.join(dir, 'monitor.sock')},server=on,wait=off`,
		...(loadvm ? ['-loadvm', loadvm] : []),
	];
	log(
		`qemu-system-x86_64 with ${accel.toUpperCase()}${loadvm ? `, restoring ${loadvm}` : ''}, SSH on 127.0.0.1:${sshPort}`,
	);
	const qemu = execa('qemu-system-x86_64', args, {stdin: 'ignore', reject: false, buffer: false});
	qemu.stdout?.pipe(serial);
	qemu.stderr?.pipe(serial);
	// A panicked guest never answers again, and an SSH command waits for it up to its keepalive limit (10 min):
	// end QEMU at once, so that every command fails now, saying why.
	let serialTail = '';
	qemu.stdout?.on('data', (data: Buffer) => {
		serialTail = `${serialTail}${data.toString()}`.slice(-4096);
		const panic = /Kernel panic - not syncing: [^\r\n]*/.exec(serialTail);
		if (!panic) return;
		log(`the guest's kernel panicked (${panic[0]}; see ${path.join(dir, 'serial.log')}): ending QEMU`);
		qemu.kill('SIGKILL');
	});
	return new Guest(dir, accel, qemu, sshPort, path.join(image, 'id_ed25519'));
}

async function qemuImg(args: string[]) {
	await execa('qemu-img', args, {timeout: 600_000});
}

/** The name of the saved, initialised guest: the image's and the setup script's hash. */
async function stateKey(image: string): Promise<string> {
	const setup = await fs.readFile(path.join(hostDir, 'guest-farm.sh'));
	return createHash('sha256').update(path.basename(image)).update(machine).update(setup).digest('hex').slice(0, 16);
}

export type FarmHost = {guest: Guest; times: Record<string, number>};

/** Where a background preparation (test/host/prepare.ts) says it is under way: its pid. */
export const preparingFile = path.join(cacheDir, 'preparing.pid');

/** Waits while a background preparation of the same cache runs, so that the guest is not built twice. */
async function waitForPreparation(): Promise<void> {
	const pid = Number(await fs.readFile(preparingFile, 'utf8').catch(() => ''));
	// A zombie has ended too.
	const alive = async () => ((await readProcStat(pid))?.state ?? 'Z') !== 'Z';
	if (!pid || pid === process.pid || !(await alive())) return;
	log(`waiting for the guest being prepared in the background (pid ${pid}, its log: ${cacheDir}/prepare.log)`);
	await waitFor(
		'the background preparation of the guest',
		async () => !(await alive()),
		2 * patience.bootMs + 2 * 60 * 60_000,
	);
}

/**
 * The image and the saved, initialised guest in the cache (built when absent
 * or stale), and the accelerator: all a run needs before it restores.
 */
export async function prepareFarmHost(): Promise<{
	image: string;
	accel: Accel;
	state: string;
	times: Record<string, number>;
}> {
	await waitForPreparation();
	const times: Record<string, number> = {};
	const {dir: image, seconds} = await farmHostImage();
	times['image'] = seconds;
	const accel = await chooseAccel(image);
	log(`accelerator: ${accel.toUpperCase()}`);
	const state = path.join(cacheDir, `state-${await stateKey(image)}`);
	if (!(await fs.stat(path.join(state, 'ready')).catch(() => undefined))) {
		const started = Date.now();
		await saveFarmHost(image, accel, state, times);
		await pruneCache([image, state]);
		times['prepare'] = Math.round((Date.now() - started) / 1000);
	}

	return {image, accel, state, times};
}

/**
 * A booted farm host with its Ganeti cluster, services and source instance:
 * restored from the cached snapshot when one matches the image and setup
 * script, else booted and set up (guest-farm.sh), then saved for next time.
 * The guest runs on copies in a fresh temp dir; the cache is never written
 * to by a run.
 */
export async function farmHost(): Promise<FarmHost> {
	const started = Date.now();
	const {image, accel, state, times} = await prepareFarmHost();
	const work = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-host-'));
	for (const disk of ['root.qcow2', 'vg.qcow2']) {
		await execa('cp', ['--sparse=always', path.join(state, disk), path.join(work, disk)]);
	}

	const restoreStarted = Date.now();
	const guest = await startGuest(work, image, accel, path.join(state, 'source-disk.raw'), snapshotName);
	await guest.waitForSsh();
	// The restored clock is the saved one: set it, as Ganeti's certificates and job timestamps need a sane time.
	await guest.must(['date', '-u', '-s', `@${Math.floor(Date.now() / 1000)}`]);
	// A guest saved before the kernel command line said so: the same, at run time.
	const quiet = await guest.run([
		'sh',
		'-c',
		'echo 0 > /proc/sys/kernel/watchdog && echo 1 > /sys/module/rcupdate/parameters/rcu_cpu_stall_suppress',
	]);
	if (quiet.exitCode !== 0) log(`the lockup and stall detectors stay on: ${quiet.stderr.trim()}`);
	times['restore'] = Math.round((Date.now() - restoreStarted) / 1000);
	times['ready'] = Math.round((Date.now() - started) / 1000);
	log(`farm host ready in ${times['ready']} s (restore ${times['restore']} s)`);
	return {guest, times};
}

/** Removes the cache's stale images and saved guests (another key: older inputs), keeping `current`. */
async function pruneCache(current: string[]): Promise<void> {
	for (const entry of await fs.readdir(cacheDir)) {
		const dir = path.join(cacheDir, entry);
		if (/^(image|state)-[\da-f]{16}$/.test(entry) && !current.includes(dir)) {
			log(`removing the stale ${dir}`);
			await fs.rm(dir, {recursive: true, force: true});
		}
	}
}

/** The source VM's disk: the sim's (an MBR, an ext4 Debian-like root, the pattern around it), 1 GiB as Ganeti's policy wants. */
async function sourceDisk(dir: string): Promise<string> {
	const file = path.join(dir, 'source-disk.raw');
	await writeSimDisk(file, 1024 * 1024 * 1024);
	return file;
}

async function saveFarmHost(image: string, accel: Accel, state: string, times: Record<string, number>) {
	const building = `${state}.building`;
	await fs.rm(building, {recursive: true, force: true});
	await fs.mkdir(building, {recursive: true});
	await qemuImg([
		'create',
		'-q',
		'-f',
		'qcow2',
		'-F',
		'raw',
		'-b',
		path.join(image, 'root.raw'),
		path.join(building, 'root.qcow2'),
	]);
	await qemuImg(['create', '-q', '-f', 'qcow2', path.join(building, 'vg.qcow2'), vgDiskSize]);
	const disk = await sourceDisk(building);
	let started = Date.now();
	const guest = await startGuest(building, image, accel, disk);
	try {
		await guest.waitForSsh();
		times['boot'] = Math.round((Date.now() - started) / 1000);
		log(`booted in ${times['boot']} s`);
		started = Date.now();
		const setup = await fs.readFile(path.join(hostDir, 'guest-farm.sh'), 'utf8');
		const output = await guest.script(setup);
		await fs.writeFile(path.join(building, 'setup.log'), output);
		times['setup'] = Math.round((Date.now() - started) / 1000);
		log(`farm set up (cluster, services, source instance) in ${times['setup']} s`);
		await guest.must(['sync']);
		started = Date.now();
		const saved = await guest.monitor(`savevm ${snapshotName}`);
		if (/error/i.test(saved)) throw new Error(`savevm: ${saved}`);
		times['savevm'] = Math.round((Date.now() - started) / 1000);
	} finally {
		await guest.stop();
	}

	await fs.writeFile(path.join(building, 'times.json'), JSON.stringify(times, null, '\t'));
	await fs.writeFile(path.join(building, 'ready'), '');
	await fs.rm(state, {recursive: true, force: true});
	await fs.rename(building, state);
}

/**
 * Installs farmclone in the guest as an admin would put it on a host: what
 * `npm run build` made (dist/), package.json, the production dependencies
 * (node_modules pruned of the development ones, offline), under
 * /opt/farmclone, with /usr/local/bin/farmclone. node is in the image.
 */
export async function installFarmclone(guest: Guest): Promise<void> {
	const stage = await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-install-'));
	try {
		for (const entry of ['dist', 'package.json', 'package-lock.json', 'node_modules']) {
			await execa('cp', ['-a', entry, path.join(stage, entry)]);
		}

		await execa('npm', ['prune', '--omit=dev', '--offline', '--no-audit', '--no-fund'], {cwd: stage});
		const archive = path.join(stage, 'farmclone.tar.gz');
		await execa('tar', ['-C', stage, '-czf', archive, 'dist', 'package.json', 'node_modules']);
		await guest.must(['sh', '-c', 'rm -rf /opt/farmclone && mkdir -p /opt/farmclone']);
		await guest.copyIn([archive], '/opt/farmclone/');
		await guest.must([
			'sh',
			'-c',
			'cd /opt/farmclone && tar -xzf farmclone.tar.gz && rm farmclone.tar.gz && ln -sf /opt/farmclone/dist/cli.js /usr/local/bin/farmclone',
		]);
		const version = await guest.must(['farmclone', '--version']);
		log(`farmclone ${version.trim()} installed in the guest`);
	} finally {
		await fs.rm(stage, {recursive: true, force: true});
	}
}
