import net from 'node:net';

/**
 * One command over QEMU's human monitor protocol on a unix socket, what
 * `socat - unix:…monitor` does in the seed, without a shell: wait for the
 * prompt, send, collect up to the next prompt.
 */
export async function monitorCommand(socketPath: string, command: string, timeoutMs = 5000): Promise<string> {
	return new Promise((resolve, reject) => {
		const connection = net.createConnection(socketPath);
		let buffer = '';
		let sent = false;
		const timer = setTimeout(() => {
			connection.destroy();
			reject(new Error(`the QEMU monitor ${socketPath} did not answer "${command}" within ${timeoutMs / 1000} s`));
		}, timeoutMs);
		connection.setEncoding('utf8');
		connection.on('data', (chunk: string) => {
			buffer += chunk;
			if (!sent) {
				if (!buffer.includes('(qemu) ')) return;
				sent = true;
				buffer = '';
				connection.write(`${command}\n`);
				return;
			}

			// The monitor echoes the line being typed (with terminal escapes), then answers, then prompts again.
			const echoEnd = buffer.indexOf('\r\n');
			const prompt = buffer.lastIndexOf('(qemu) ');
			if (echoEnd === -1 || prompt <= echoEnd) return;
			clearTimeout(timer);
			connection.end();
			resolve(buffer.slice(echoEnd + 2, prompt).replaceAll('\r\n', '\n'));
		});
		connection.on('error', (error) => {
			clearTimeout(timer);
			reject(new Error(`cannot reach the QEMU monitor ${socketPath}: ${error.message}`));
		});
	});
}

/** `info balloon` -> the guest's current memory in MiB. */
export function parseBalloon(answer: string): number | undefined {
	const match = /actual=(\d+)/.exec(answer);
	return match ? Number(match[1]) : undefined;
}
