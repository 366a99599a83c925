import path from 'node:path';

export type SimPaths = {
	root: string;
	/** Stand-ins for the commands this machine cannot run for real; first on the farm's command path. */
	bin: string;
	/** Logical volumes as sparse files: dev/<vg>/<lv>, like /dev/<vg>/<lv> on a real host. */
	dev: string;
	/** State of the stand-ins (LVM metadata, the Ganeti cluster). */
	state: string;
	etc: string;
	run: string;
};

/** Where things live inside a simulated farm rooted at `root`. */
export function simPaths(root: string): SimPaths {
	const absolute = path.resolve(root);
	return {
		root: absolute,
		bin: path.join(absolute, 'bin'),
		dev: path.join(absolute, 'dev'),
		state: path.join(absolute, 'var', 'lib', 'farmclone-sim'),
		etc: path.join(absolute, 'etc'),
		run: path.join(absolute, 'run'),
	};
}
