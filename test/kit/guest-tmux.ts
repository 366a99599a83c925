/**
 * A terminal in the farm-host guest (test/kit/guest.ts): a tmux session of
 * the tests' own server (test/kit/tmux.ts's socket name) inside the guest,
 * 80x24, driven over SSH one command at a time, as an admin's keys would
 * drive farmclone on a real host.
 */
import {patience, waitFor, type Guest} from './guest.js';
import {tmuxSocket} from './tmux.js';

/** Where the session's command writes its exit status once it ends. */
const exitDir = '/root/farmclone-test-jobs';

export class GuestTmux {
	readonly exitFile: string;

	constructor(
		private readonly guest: Guest,
		readonly session: string,
	) {
		this.exitFile = `${exitDir}/${session}.tmux-exit`;
	}

	async tmux(...args: string[]): Promise<string> {
		return this.guest.must(['tmux', '-L', tmuxSocket, ...args]);
	}

	/**
	 * Starts argv in a new 80x24 session; the shell around it says `[exited N]` on the screen once it
	 * ended, and keeps the pane open for a last look.
	 */
	async start(argv: string[]): Promise<void> {
		await this.guest.must(['sh', '-c', `mkdir -p ${exitDir} && rm -f "$1"`, 'sh', this.exitFile]);
		await this.tmux(
			...['new-session', '-d', '-s', this.session, '-x', '80', '-y', '24'],
			...[
				'sh',
				'-c',
				'exit_file=$1; shift; "$@"; code=$?; echo $code > "$exit_file"; echo "[exited $code]"; sleep 3600',
				'sh',
				this.exitFile,
				...argv,
			],
		);
	}

	/** The visible screen; with `history`, that many lines of scrollback above it too. */
	async screen(history = 0): Promise<string> {
		return this.tmux('capture-pane', '-p', '-t', this.session, ...(history > 0 ? ['-S', String(-history)] : []));
	}

	/** Named keys (Enter, Escape, ...), as tmux send-keys reads them. */
	async keys(...keys: string[]): Promise<void> {
		await this.tmux('send-keys', '-t', this.session, ...keys);
	}

	/** Text typed as is, then Enter. */
	async type(text: string): Promise<void> {
		await this.tmux('send-keys', '-t', this.session, '-l', text);
		await this.keys('Enter');
	}

	/** The command's exit status once it ended, else undefined. */
	async exitCode(): Promise<number | undefined> {
		const read = await this.guest.run(['cat', this.exitFile]);
		return read.exitCode === 0 && read.stdout.trim() !== '' ? Number(read.stdout) : undefined;
	}

	/** Polls the screen until `wanted` says yes; returns that screen. */
	async waitForScreen(what: string, wanted: (screen: string) => boolean, limitMs = patience.commandMs) {
		let last = '';
		await waitFor(
			what,
			async () => {
				last = await this.screen();
				return wanted(last);
			},
			limitMs,
		).catch((error: unknown) => {
			throw new Error(`${error instanceof Error ? error.message : String(error)}; last screen:\n${last}`);
		});
		return last;
	}

	async kill(): Promise<void> {
		await this.guest.run(['tmux', '-L', tmuxSocket, 'kill-session', '-t', this.session]);
	}
}
