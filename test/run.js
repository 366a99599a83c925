// Runs every test file with node's test runner; Node 20 has no glob for --test.
import {spawnSync} from 'node:child_process';
import {readdirSync} from 'node:fs';
import path from 'node:path';

const only = process.argv.slice(2);
const files = readdirSync('test', {recursive: true})
	.map(String)
	.filter((file) => /\.test\.tsx?$/.test(file))
	.map((file) => path.join('test', file))
	.filter((file) => only.length === 0 || only.some((pattern) => file.includes(pattern)))
	.sort();
if (files.length === 0) {
	console.error('no test files matched');
	process.exit(1);
}

const result = spawnSync(
	process.execPath,
	['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
	// Ink prints only the last frame when CI is set; component tests read every frame.
	{stdio: 'inherit', env: {...process.env, FORCE_COLOR: '0', CI: 'false'}},
);
process.exit(result.status ?? 1);
