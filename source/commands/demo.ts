import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {createSimFarm} from '../sim/farm.js';

export {readServicesState, stopSimServices} from '../sim/services.js';
import {SettingsStore} from '../settings/store.js';
import {writeLauncher} from '../host/self.js';
import {farmcloneCommand, UsageError} from './context.js';
import {runCommand} from './run.js';

export type DemoFlags = {dir?: string; size: string; yes: boolean; json: boolean; run: boolean; keep: boolean};

export function parseDemoSize(size: string): number {
	const match = /^(\d+)([KMG]?)i?B?$/i.exec(size.trim());
	if (!match) throw new UsageError(`--size ${size}: expected a size such as 256M or 1G`);
	const factor = {'': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3}[match[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
	const bytes = Number(match[1]) * factor;
	if (bytes < 16 * 1024 ** 2) throw new UsageError(`--size ${size}: the simulated disk needs at least 16M`);
	if (bytes % (4 * 1024 ** 2) !== 0) throw new UsageError(`--size ${size}: must be a multiple of 4M (the LVM extent)`);
	return bytes;
}

/**
 * A simulated farm host in DIR, then a real run against it. Its settings and
 * run state live inside DIR unless FARMCLONE_CONFIG_DIR / FARMCLONE_STATE_DIR
 * say otherwise, so the demo never touches a real farm's settings.
 */
export async function demoCommand(flags: DemoFlags): Promise<number> {
	if (process.getuid?.() !== 0) {
		throw new UsageError(
			'the demo runs real named, dhcpd, nginx, shorewall and QEMU inside a network namespace of its own: run it as root',
		);
	}

	const sourceSize = parseDemoSize(flags.size);
	const root = path.resolve(flags.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'farmclone-demo-'))));
	process.env['FARMCLONE_CONFIG_DIR'] ||= path.join(root, 'farmclone', 'config');
	process.env['FARMCLONE_STATE_DIR'] ||= path.join(root, 'farmclone', 'state');
	const write = (line: string) => {
		if (!flags.json) process.stdout.write(`${line}\n`);
	};

	write(`building a simulated farm host in ${root} ...`);
	const farm = await createSimFarm({root, sourceSize, farm: 'gallifrey-dev'});
	await writeLauncher(path.join(root, 'bin', 'farmclone'), {
		FARMCLONE_CONFIG_DIR: process.env['FARMCLONE_CONFIG_DIR'],
		FARMCLONE_STATE_DIR: process.env['FARMCLONE_STATE_DIR'],
		FARMCLONE_DEMO_DIR: root,
	});
	let exitCode: number | undefined;
	try {
		const store = new SettingsStore();
		store.save(farm.settings);
		write(`saved farm ${farm.settings.name} (settings: ${store.path})`);
		if (!flags.run) {
			write(`run it with:\n  ${farmcloneCommand(['run', farm.settings.name])}`);
			return 0;
		}

		exitCode = await runCommand(store, farm.settings.name, {
			yes: flags.yes,
			json: flags.json,
			// A simulated farm: the demo confirms its own dangerous stages.
			confirm: flags.yes ? farm.settings.name : undefined,
			restartFirewall: flags.yes,
		});
		return exitCode;
	} finally {
		// A run that did not finish is resumed against the same simulated host: it keeps running for that.
		const unfinished = flags.run && exitCode !== 0;
		if (flags.keep || !flags.run || unfinished) {
			write(`the simulated host's services keep running; stop them with:\n  ${farmcloneCommand(['demo', '--stop'])}`);
		} else {
			await farm.stop();
			write(`stopped the simulated host's services; the tree stays in ${root}`);
		}
	}
}
