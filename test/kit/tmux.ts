import {execa} from 'execa';

/**
 * The tests' own tmux server: sessions there never mix with the admin's
 * (or the developer's) default server, and a test run can be cleaned up
 * without touching anybody else's sessions.
 */
export const tmuxSocket = 'farmclone-tests';

export async function tmux(...args: string[]): Promise<string> {
	return (await execa('tmux', ['-L', tmuxSocket, ...args])).stdout;
}

/** Ends a session if it is still there; for `after` hooks, where a session already gone is fine. */
export async function killSession(session: string): Promise<void> {
	await execa('tmux', ['-L', tmuxSocket, 'kill-session', '-t', session], {reject: false});
}

export const capture = async (session: string) => tmux('capture-pane', '-p', '-t', session);

/**
 * Answers what the screen asks, as a person at the console would: Enter to
 * run, the farm's name where it is typed, y to questions, and at the firewall
 * waiting screen "keep without proof" (a tmux pane has no second SSH
 * connection; test/sim/firewall-confirm.test.ts proves that path). `typed`
 * remembers the questions already answered, so that a slow redraw is not
 * answered twice.
 */
export async function answerScreen(session: string, screen: string, farm: string, typed: Set<string>): Promise<void> {
	const once = async (pattern: RegExp, keys: () => Promise<void>) => {
		const line = screen.split('\n').find((text) => pattern.test(text)) ?? '';
		if (typed.has(line)) return;
		typed.add(line);
		await keys();
	};

	const type = async (text: string) => {
		await tmux('send-keys', '-t', session, '-l', text);
		await tmux('send-keys', '-t', session, 'Enter');
	};

	if (/press any key to exit/.test(screen)) {
		await tmux('send-keys', '-t', session, 'x');
	} else if (/Type the farm's name/.test(screen)) {
		await once(/Type the farm's name/, async () => type(farm));
	} else if (/Type "keep without proof"/.test(screen)) {
		await once(/Type "keep without proof"/, async () => type('keep without proof'));
	} else if (/k keep without proof/.test(screen)) {
		await tmux('send-keys', '-t', session, 'k');
	} else if (/\(y\/n\)/.test(screen)) {
		await tmux('send-keys', '-t', session, 'y');
	} else if (/Enter run|Enter go on/.test(screen)) {
		await tmux('send-keys', '-t', session, 'Enter');
	}
}
