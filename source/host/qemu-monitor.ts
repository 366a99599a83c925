import net from 'node:net';

const terminalEscape = new RegExp(`${String.fromCodePoint(27)}\\[[\\d;]*[A-Za-z]`, 'g');

/**
 * One command over QEMU's human monitor protocol on a unix socket: read the
 * banner up to the first prompt, send the command, collect until the next
 * prompt. What socat would do in the seed, without a shell.
 */
export async function monitorCommand(socketPath: string, command: string, timeoutMs = 5000): Promise<string> {
	return new Promise((resolve, reject) => {
		const socket = net.createConnection(socketPath);
		let buffer = '';
		let sent = false;
		const timer = setTimeout(() => {
			socket.destroy();
			reject(new Error(`QEMU monitor ${socketPath} did not answer "${command}" within ${timeoutMs / 1000} s`));
		}, timeoutMs);
		socket.setEncoding('utf8');
		socket.on('data', (chunk: string) => {
			buffer += chunk;
			if (!buffer.includes('(qemu)')) return;
			if (!sent) {
				sent = true;
				buffer = '';
				socket.write(`${command}\n`);
				return;
			}

			clearTimeout(timer);
			socket.end();
			const answer = buffer
				.replace('(qemu)', '')
				// The monitor echoes the command line with terminal escapes.
				.replaceAll(terminalEscape, '')
				.split(/\r?\n/)
				.map((line) => line.trim())
				.filter((line) => line && line !== command)
				.join('\n');
			resolve(answer);
		});
		socket.on('error', (error) => {
			clearTimeout(timer);
			reject(new Error(`cannot reach QEMU monitor ${socketPath}: ${error.message}`));
		});
	});
}

/** `info balloon` -> the guest's current memory in MiB. */
export function parseBalloon(answer: string): number | undefined {
	const match = /actual=(\d+)/.exec(answer);
	return match ? Number(match[1]) : undefined;
}
