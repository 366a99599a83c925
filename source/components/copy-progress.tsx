import {Box, Text} from 'ink';
import React from 'react';
import type {CopyProgress} from '../stages/types.js';
import {formatBytes, formatEta, formatRate, progressPercent} from '../ui/format.js';
import {useTone} from './theme.js';

export const copyProgressHeight = 3;

function ms(value: number | undefined): string {
	return value === undefined ? '-' : value < 10 ? value.toFixed(1) : value.toFixed(0);
}

function perSecond(value: number): string {
	return value < 1000 ? value.toFixed(0) : `${(value / 1000).toFixed(1)}k`;
}

/**
 * `auto, limit 16 MiB/s, 7.2k other io/s · disk latency 0.9 ms, 0.4 idle · +/- rate`: what the copy's rate
 * keeper sees and does; the other processes' requests are what holds `auto` back.
 */
export function rateLine(progress: CopyProgress): string | undefined {
	if (progress.rateMode === undefined) return undefined;
	const others =
		progress.otherRequestsPerSecond === undefined ? '' : `, ${perSecond(progress.otherRequestsPerSecond)} other io/s`;
	const limit = (progress.rateLimit === undefined ? 'no limit' : `limit ${formatRate(progress.rateLimit)}`) + others;
	const latency =
		progress.diskLatencyMs === undefined && progress.idleLatencyMs === undefined
			? ''
			: ` · disk latency ${ms(progress.diskLatencyMs)} ms, ${ms(progress.idleLatencyMs)} idle`;
	return `${progress.rateMode}, ${limit}${latency} · +/- rate`;
}

/** Bar and numbers of a running copy; the snapshot's fill turns yellow from `warnPercent`, red near full. */
export function CopyProgressView(props: {progress: CopyProgress; width: number; warnPercent?: number}) {
	const tone = useTone();
	const {progress, width, warnPercent = 80} = props;
	const percent = progressPercent(progress);
	const barWidth = Math.max(10, Math.min(width - 6, 72));
	const filled = Math.round((barWidth * percent) / 100);
	const snapshot = progress.snapshotPercent;
	const snapshotTone =
		snapshot === undefined || snapshot < warnPercent ? undefined : snapshot >= 95 ? 'error' : 'warning';
	return (
		<Box flexDirection="column">
			<Text wrap="truncate-end">
				<Text color={tone('info')}>{'█'.repeat(filled)}</Text>
				<Text dimColor>{'░'.repeat(barWidth - filled)}</Text>
				{` ${String(percent).padStart(3)}%`}
			</Text>
			<Text wrap="truncate-end">
				{`${formatBytes(progress.bytes)} / ${formatBytes(progress.total)} · ${formatRate(progress.rate)} · ETA ${formatEta(progress.etaSeconds)}`}
				{snapshot === undefined ? (
					''
				) : (
					<Text color={tone(snapshotTone)} bold={snapshotTone !== undefined}>
						{` · snapshot ${Math.round(snapshot)}% full`}
					</Text>
				)}
			</Text>
			{rateLine(progress) === undefined ? (
				''
			) : (
				<Text wrap="truncate-end" dimColor>
					{rateLine(progress)}
				</Text>
			)}
		</Box>
	);
}
