/**
 * The dead-man switch of the firewall restart, run detached from farmclone
 * and the SSH session. Unless the confirm file appears before the deadline,
 * it puts the previous rules/params back and restores the previous firewall.
 * It never runs `shorewall clear` on a firewall that was running.
 */
import fs from 'node:fs';
import {execa} from 'execa';
import {writeFileAtomic} from '../host/atomic.js';

export type WatchdogJob = {
	deadline: number;
	confirmFile: string;
	resultFile: string;
	/** Files to put back: the edited file and the copy of it from before the edit. */
	files: Array<{path: string; previous: string}>;
	/** Commands that bring the previous firewall back, in order. */
	restore: string[][];
	env: Record<string, string>;
};

export type WatchdogResult = {outcome: 'confirmed' | 'rolled-back' | 'rollback-failed'; at: string; detail: string};

async function main(jobFile: string): Promise<void> {
	const job = JSON.parse(fs.readFileSync(jobFile, 'utf8')) as WatchdogJob;
	process.on('SIGHUP', () => undefined);
	const finish = async (result: Omit<WatchdogResult, 'at'>) => {
		await writeFileAtomic(job.resultFile, JSON.stringify({...result, at: new Date().toISOString()}));
	};

	while (Date.now() < job.deadline) {
		if (fs.existsSync(job.confirmFile)) {
			await finish({outcome: 'confirmed', detail: 'confirmed in time'});
			return;
		}

		await new Promise((resolve) => setTimeout(resolve, 200));
	}

	if (fs.existsSync(job.confirmFile)) {
		await finish({outcome: 'confirmed', detail: 'confirmed in time'});
		return;
	}

	const notes: string[] = [];
	for (const file of job.files) {
		await writeFileAtomic(file.path, fs.readFileSync(file.previous, 'utf8'));
		notes.push(`restored ${file.path}`);
	}

	for (const argv of job.restore) {
		const [command, ...args] = argv;
		const result = await execa(command!, args, {env: job.env, extendEnv: true, reject: false, all: true});
		notes.push(`${argv.join(' ')} -> ${result.exitCode}`);
		if (result.exitCode !== 0) {
			await finish({outcome: 'rollback-failed', detail: `${notes.join('; ')}: ${String(result.all).trim()}`});
			process.exitCode = 1;
			return;
		}
	}

	await finish({outcome: 'rolled-back', detail: notes.join('; ')});
}

const jobFile = process.argv[2];
if (jobFile) await main(jobFile);
