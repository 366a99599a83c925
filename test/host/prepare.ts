/**
 * Prepares the real-host tier's guest in the cache, ahead of the tests: the
 * image (test/host/image.sh), the accelerator probe, and the booted guest with
 * its cluster, services and source instance saved (savevm). CI starts it in
 * the background while the other tiers run; `npm run test:host` waits for it
 * (test/kit/guest.ts) and then only restores the saved guest.
 *
 *   node --import tsx test/host/prepare.ts
 */
import fs from 'node:fs/promises';
import {cacheDir, prepareFarmHost, preparingFile} from '../kit/guest.js';

await fs.mkdir(cacheDir, {recursive: true});
await fs.writeFile(preparingFile, String(process.pid));
try {
	const {image, accel, state, times} = await prepareFarmHost();
	console.log(`prepared: ${image}, ${state}, ${accel.toUpperCase()}, times (s): ${JSON.stringify(times)}`);
} finally {
	await fs.rm(preparingFile, {force: true});
}
