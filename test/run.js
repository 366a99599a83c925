// Runs test files with node's test runner; Node 20 has no glob for --test.
//
//   node test/run.js                 the fast tier: test/*.test.ts(x) (npm test)
//   node test/run.js --tier sim      test/sim/: the simulated farm, as root (npm run test:sim)
//   node test/run.js --tier faults   test/faults/: the fault-injection matrix, as root (npm run test:faults)
//   node test/run.js --tier host     test/host/: a real farm host in a QEMU guest, as root (npm run test:host)
//   node test/run.js --tier faults --tier host
//                                    several tiers; the host tier runs beside the others, in a process of its own
//   node test/run.js PATTERN...      the files of any tier whose path contains a pattern
import {spawn} from 'node:child_process';
import {existsSync, readdirSync, statSync} from 'node:fs';
import path from 'node:path';

const tiers = {fast: '', sim: 'sim', faults: 'faults', host: 'host'};
/** The tiers that build network namespaces, mount loop devices or start QEMU: they need root. */
const rootTiers = new Set(['sim', 'faults', 'host']);

const argv = process.argv.slice(2);
const chosen = new Set();
for (let at = argv.indexOf('--tier'); at !== -1; at = argv.indexOf('--tier')) {
	const tier = argv[at + 1];
	argv.splice(at, 2);
	if (!(tier in tiers)) {
		console.error(`unknown tier ${tier}: one of ${Object.keys(tiers).join(', ')}`);
		process.exit(2);
	}

	chosen.add(tier);
}

const only = argv;
const tierOf = (file) => {
	const first = path.relative('test', file).split(path.sep);
	return first.length === 1 ? 'fast' : first[0];
};

const files = readdirSync('test', {recursive: true})
	.map(String)
	.filter((file) => /\.test\.tsx?$/.test(file))
	.map((file) => path.join('test', file))
	.filter((file) => tierOf(file) in tiers)
	.filter((file) => (chosen.size > 0 ? chosen.has(tierOf(file)) : only.length > 0 || tierOf(file) === 'fast'))
	.filter((file) => only.length === 0 || only.some((pattern) => file.includes(pattern)))
	.sort();
if (files.length === 0) {
	console.error('no test files matched');
	process.exit(1);
}

const isRoot = process.getuid?.() === 0;
const needRoot = files.filter((file) => rootTiers.has(tierOf(file)));
let run = files;
if (needRoot.length > 0 && !isRoot) {
	const names = [...new Set(needRoot.map(tierOf))].map((name) => `test/${name}`).join(', ');
	console.log(
		`skipped ${needRoot.length} test file(s) of ${names}: they need root (network namespaces, loop devices, QEMU); run them as root`,
	);
	run = files.filter((file) => !needRoot.includes(file));
	if (run.length === 0) process.exit(0);
}

/** The newest modification time under `dir` of the files `keep` accepts. */
function newest(dir, keep) {
	let latest = 0;
	for (const entry of readdirSync(dir, {recursive: true, withFileTypes: true})) {
		if (!entry.isFile() || !keep(entry.name)) continue;
		latest = Math.max(latest, statSync(path.join(entry.parentPath ?? entry.path, entry.name)).mtimeMs);
	}

	return latest;
}

// The root tiers run the CLI from dist/, and every tier runs the sim's stand-ins compiled when dist/ is current:
// through tsx a stand-in call costs twice as much, and a farmclone run makes hundreds.
const built = existsSync('dist/cli.js') ? statSync('dist/cli.js').mtimeMs : 0;
const sources = Math.max(
	statSync('cli.tsx').mtimeMs,
	newest('source', (name) => /\.tsx?$/.test(name)),
);
const current = built >= sources;
if (!current && run.some((file) => rootTiers.has(tierOf(file)))) {
	console.error('dist/ is older than source/ (or missing): run npm run build first');
	process.exit(1);
}

// The root tiers wait on daemons, QEMU and dd more than they compute, and every file builds farms of its own
// (own namespace, temp root, settings, run state): two files at a time on two cores. The fast tier stays one
// file at a time: it is CPU-bound, and its component tests render frames they then compare.
const concurrency =
	process.env['FARMCLONE_TEST_CONCURRENCY'] ?? (run.some((file) => rootTiers.has(tierOf(file))) ? '2' : '1');
// As root the tests mount clones, and daemons started through `ip netns exec` copy every mount there is at that
// moment into a namespace of their own. On a machine whose mounts are private (containers, CI) an umount never
// reaches those copies, and a file system the test unmounted stays in use (its loop device too) for as long as the
// daemon of another test runs. In a mount namespace of the run's own, with shared propagation, it does.
const env = {
	...process.env,
	FORCE_COLOR: '0',
	// Ink prints only the last frame when CI is set; component tests read every frame.
	CI: 'false',
	...(current ? {FARMCLONE_SIM_STANDINS: 'compiled'} : {}),
};

/** node --test on `files`, `filesAtOnce` at a time; resolves to its exit code. */
function nodeTest(files, filesAtOnce) {
	const testArgv = [
		process.execPath,
		...['--import', 'tsx', '--test', `--test-concurrency=${filesAtOnce}`, '--test-reporter=spec', ...files],
	];
	const [command, ...commandArgs] = isRoot ? ['unshare', '--mount', '--propagation', 'shared', ...testArgv] : testArgv;
	const child = spawn(command, commandArgs, {stdio: 'inherit', env});
	return new Promise((resolve) => {
		child.on('close', (code) => resolve(code ?? 1));
	});
}

// The host tier is one long file that mostly waits on its guest: beside the other tiers, not after them, in a
// process of its own so that it does not take one of their two slots.
const host = run.filter((file) => tierOf(file) === 'host');
const others = run.filter((file) => tierOf(file) !== 'host');
const groups = [
	...(others.length > 0 ? [{name: [...new Set(others.map(tierOf))].join('+'), files: others, at: concurrency}] : []),
	...(host.length > 0 ? [{name: 'host', files: host, at: '1'}] : []),
];
const started = Date.now();
const codes = await Promise.all(
	groups.map(async (group) => {
		const code = await nodeTest(group.files, group.at);
		if (groups.length > 1) {
			const seconds = Math.round((Date.now() - started) / 1000);
			console.log(`test/run.js: ${group.name} ended with exit ${code} after ${seconds} s`);
		}

		return code;
	}),
);
process.exit(codes.find((code) => code !== 0) ?? 0);
