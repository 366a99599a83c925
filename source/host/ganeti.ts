import type {Host} from './host.js';

export type GanetiInstance = {
	name: string;
	status: string;
	pnode: string;
	macs: string[];
	ips: string[];
	maxmem: number | undefined;
	minmem: number | undefined;
};

const fields = ['name', 'status', 'pnode', 'nic.macs', 'nic.ips', 'be/maxmem', 'be/minmem'];

function list(value: string | undefined): string[] {
	return (value ?? '')
		.split(',')
		.map((item) => item.trim())
		.filter((item) => item && item !== '-' && item !== '(none)' && item !== 'None');
}

function mebibytes(value: string | undefined): number | undefined {
	const match = /^(\d+(?:\.\d+)?)([MGT]?)$/i.exec((value ?? '').trim());
	if (!match) return undefined;
	const factor = {'': 1, m: 1, g: 1024, t: 1024 * 1024}[match[2]!.toLowerCase() as '' | 'm' | 'g' | 't'];
	return Math.round(Number(match[1]) * factor);
}

/** `gnt-instance list` with a separator no field can hold. */
export async function listInstances(host: Host): Promise<GanetiInstance[]> {
	const {stdout} = await host.run(['gnt-instance', 'list', '--no-headers', '--separator=|', '-o', fields.join(',')]);
	return stdout
		.split('\n')
		.filter((line) => line.trim())
		.map((line) => {
			const [name = '', status = '', pnode = '', macs, ips, maxmem, minmem] = line.split('|');
			return {
				name,
				status,
				pnode,
				macs: list(macs).map((mac) => mac.toLowerCase()),
				ips: list(ips),
				maxmem: mebibytes(maxmem),
				minmem: mebibytes(minmem),
			};
		});
}

export async function findInstance(host: Host, name: string): Promise<GanetiInstance | undefined> {
	return (await listInstances(host)).find((instance) => instance.name === name);
}

/** Ganeti's version as [major, minor, patch], from `gnt-cluster --version`. */
export async function ganetiVersion(host: Host): Promise<[number, number, number]> {
	const {stdout} = await host.run(['gnt-cluster', '--version']);
	const match = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(stdout);
	if (!match) throw new Error(`cannot read Ganeti's version from: ${stdout.trim()}`);
	return [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
}

/** maxmem/minmem (and so `modify --runtime-memory`) exist since Ganeti 2.6. */
export function hasRuntimeMemory(version: [number, number, number]): boolean {
	return version[0] > 2 || (version[0] === 2 && version[1] >= 6);
}

export function toMebibytes(size: string): number {
	const value = mebibytes(size);
	if (value === undefined) throw new Error(`not a Ganeti size: ${size}`);
	return value;
}
