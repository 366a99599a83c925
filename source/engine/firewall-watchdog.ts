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
	/** Appears when the admin answered no: roll back now instead of at the deadline. */
	rollbackFile?: string;
	resultFile: string;
	/** Files to put back: the edited file and the copy of it from before the edit. */
	files: Array<{path: string; previous: string}>;
	/** Commands that bring the previous firewall back, in order. */
	restore: string[][];
	env: Record<string, string>;
};

export type WatchdogResult = {outcome: 'confirmed' | 'rolled-back' | 'rollback-failed'; at: string; detail: string};

async function rollBack(job: WatchdogJob, reason: string): Promise<Omit<WatchdogResult, 'at'>> {
	const notes: string[] = [reason];
	for (const file of job.files) {
		await writeFileAtomic(file.path, fs.readFileSync(file.previous, 'utf8'));
		notes.push(`restored ${file.path}`);
	}

	for (const argv of job.restore) {
		const [command, ...args] = argv;
		const result = await execa(command!, args, {env: job.env, extendEnv: true, reject: false, all: true});
		notes.push(`${argv.join(' ')} -> ${result.exitCode}`);
		if (result.exitCode !== 0) {
			return {outcome: 'rollback-failed', detail: `${notes.join('; ')}: ${String(result.all).trim()}`};
		}
	}

	return {outcome: 'rolled-back', detail: notes.join('; ')};
}

async function main(jobFile: string): Promise<void> {
	const job = JSON.parse(fs.readFileSync(jobFile, 'utf8')) as WatchdogJob;
	let stopRequested: string | undefined;
	// The SSH session going away must not stop the switch; being told to stop means nobody will confirm.
	process.on('SIGHUP', () => undefined);
	for (const signal of ['SIGTERM', 'SIGINT'] as const) {
		process.on(signal, () => {
			stopRequested = `got ${signal} before any confirmation`;
		});
	}

	const finish = async (result: Omit<WatchdogResult, 'at'>) => {
		await writeFileAtomic(job.resultFile, JSON.stringify({...result, at: new Date().toISOString()}));
		console.log(`${new Date().toISOString()} ${result.outcome}: ${result.detail}`);
	};

	const confirmed = () => fs.existsSync(job.confirmFile);
	let reason = 'not confirmed before the deadline';
	while (Date.now() < job.deadline && !confirmed()) {
		if (job.rollbackFile && fs.existsSync(job.rollbackFile)) {
			reason = 'the admin did not keep the new firewall';
			break;
		}

		if (stopRequested) {
			reason = stopRequested;
			break;
		}

		await new Promise((resolve) => setTimeout(resolve, 200));
	}

	if (confirmed()) {
		await finish({outcome: 'confirmed', detail: 'confirmed in time'});
		return;
	}

	const result = await rollBack(job, reason);
	await finish(result);
	if (result.outcome !== 'rolled-back') process.exitCode = 1;
}

const jobFile = process.argv[2];
if (jobFile) await main(jobFile);
