const pad = (value: number, width = 2) => String(value).padStart(width, '0');

/**
 * Local HH:MM:SS, with hundredths when two close instants must be told apart.
 * Padded by hand: `toLocaleTimeString` falls back to `9:50:25` where Node
 * lacks the locale data. Here, not in ui/, because host/ messages use it too.
 */
export function clockTime(epochMs: number, hundredths = false): string {
	const date = new Date(epochMs);
	const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
	return hundredths ? `${time}.${pad(Math.floor(date.getMilliseconds() / 10))}` : time;
}
