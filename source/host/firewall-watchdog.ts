/**
 * The dead-man switch of the firewall restart, run detached from farmclone
 * and the SSH session. Unless the confirm file appears before the deadline,
 * it puts the previous rules/params back and restores the previous firewall.
 * It never runs `shorewall clear` on a firewall that was running.
 */
import fs from 'node:fs';
import {execa} from 'execa';
import {writeFileAtomic} from './atomic.js';

export type WatchdogJob = {
	/**
	 * Written by farmclone once `shorewall restart` returned: the confirmation
	 * time starts there, so that a slow restart does not eat it.
	 */
	restartedFile: string;
	/** Epoch ms: no restartedFile by then means the restart hung, and it is rolled back. */
	restartBound: number;
	restartTimeoutSeconds: number;
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

/** The restartedFile: when the restart returned, on the wall clock and on /proc's clock since boot. */
export type RestartRecord = {at: string; uptime: number; deadline: number};

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
	const restarted = (): RestartRecord | undefined => {
		try {
			return JSON.parse(fs.readFileSync(job.restartedFile, 'utf8')) as RestartRecord;
		} catch {
			return undefined;
		}
	};

	let reason = 'not confirmed before the deadline';
	let record: RestartRecord | undefined;
	while (!(record = restarted())) {
		if (job.rollbackFile && fs.existsSync(job.rollbackFile)) {
			reason = 'the restart failed';
			break;
		}

		if (stopRequested) {
			reason = stopRequested;
			break;
		}

		if (Date.now() > job.restartBound) {
			reason = `shorewall restart did not return within ${job.restartTimeoutSeconds} s`;
			break;
		}

		await new Promise((resolve) => setTimeout(resolve, 200));
	}

	while (record && Date.now() < record.deadline && !confirmed()) {
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

	if (record && confirmed()) {
		let detail = 'confirmed in time';
		try {
			detail = (JSON.parse(fs.readFileSync(job.confirmFile, 'utf8')) as {detail?: string}).detail ?? detail;
		} catch {}

		await finish({outcome: 'confirmed', detail});
		return;
	}

	const result = await rollBack(job, reason);
	await finish(result);
	if (result.outcome !== 'rolled-back') process.exitCode = 1;
}

const jobFile = process.argv[2];
if (jobFile) await main(jobFile);
