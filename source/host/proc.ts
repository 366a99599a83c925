import fs from 'node:fs/promises';

export type ProcStat = {
	/** One letter: R, S, D, Z (zombie), X (dead)... */
	state: string;
	/** Field 22, clock ticks since boot: with the pid it names one process for good. */
	startTime: string;
};

/** The fields of /proc/PID/stat farmclone needs, or undefined when there is no such process. */
export async function readProcStat(pid: number): Promise<ProcStat | undefined> {
	let stat: string;
	try {
		stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
	} catch {
		return undefined;
	}

	// Field 2 is the command name in parentheses and may itself hold spaces or parentheses.
	const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
	const [state, startTime] = [fields[0], fields[22 - 3]];
	return state === undefined || startTime === undefined ? undefined : {state, startTime};
}
