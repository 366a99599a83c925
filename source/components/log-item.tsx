import {Box, Text} from 'ink';
import React from 'react';
import {commandOutputLines, formatArgv, formatDuration, repeatSuffix, sanitizeLine} from '../ui/format.js';
import type {LogEntry} from '../ui/run-state.js';
import {useTone, type Tone} from './theme.js';

const stageMarks = {
	done: {mark: '✔', tone: 'success'},
	skipped: {mark: '↷', tone: 'warning'},
	failed: {mark: '✘', tone: 'error'},
	undone: {mark: '↺', tone: 'accent'},
} as const satisfies Record<string, {mark: string; tone: Tone}>;

/**
 * Output lines worth keeping in the log: a little on success, more of stderr
 * on failure; what is cut is counted, with the file that holds all of it.
 */
function commandTail(command: {exitCode: number; stdout: string; stderr: string; log?: string}): string[] {
	if (command.exitCode !== 0) return commandOutputLines(command.stderr || command.stdout, 4, command.log);
	const output = command.stdout || command.stderr;
	// The last lines of a JSON report are closing brackets: say how long it was instead.
	const trimmed = output.trim();
	if (/^[[{]/.test(trimmed) && /[\]}]$/.test(trimmed)) {
		const where = command.log ? `: full output in ${command.log}` : '';
		return [`(${trimmed.split('\n').length} lines of JSON${where})`];
	}

	return commandOutputLines(output, 2, command.log);
}

/** One finished thing in the log above the live region. */
export function LogItem({entry, width}: {entry: LogEntry; width: number}) {
	const tone = useTone();
	switch (entry.kind) {
		case 'note':
			// A note may hold several lines (what the run made): each is kept a line of its own.
			return (
				<Box width={width} flexDirection="column">
					{entry.text.split('\n').map((line, index) => (
						<Text key={index} color={tone(entry.tone)}>
							{sanitizeLine(line)}
						</Text>
					))}
				</Box>
			);
		case 'log': {
			const warning = /^warn(ing)?\b/i.test(entry.text);
			return (
				<Box width={width} flexDirection="column" paddingLeft={2}>
					{entry.text.split('\n').map((line, index) => (
						<Text key={index} color={tone(warning ? 'warning' : undefined)}>
							{index === 0 ? (warning ? '⚠ ' : '· ') : '  '}
							{sanitizeLine(line)}
						</Text>
					))}
				</Box>
			);
		}

		case 'command': {
			const {command} = entry;
			const failed = command.exitCode !== 0;
			return (
				<Box width={width} flexDirection="column" paddingLeft={2}>
					<Text dimColor={!failed}>
						{`$ ${sanitizeLine(formatArgv(command.argv))} → `}
						<Text color={tone(failed ? 'error' : undefined)}>{`exit ${command.exitCode}`}</Text>
						{` (${formatDuration(command.durationMs / 1000)})${repeatSuffix(entry.repeats)}`}
					</Text>
					{commandTail(command).map((line, index) => (
						// The marker of a cut keeps its whole path: it wraps rather than being cut in turn.
						<Text key={index} dimColor wrap={/^[(…]/.test(line) ? 'wrap' : 'truncate-end'}>
							{`    ${line}`}
						</Text>
					))}
				</Box>
			);
		}

		case 'stage': {
			const {mark, tone: markTone} = stageMarks[entry.state];
			const [first = '', ...rest] = (entry.detail ?? '').split('\n');
			const verb = entry.state === 'done' ? '' : ` ${entry.state}`;
			const timing = entry.seconds === undefined ? '' : ` (${formatDuration(entry.seconds)})`;
			return (
				<Box width={width} flexDirection="column">
					<Text>
						<Text color={tone(markTone)}>{mark}</Text>
						<Text bold>{` ${entry.number} ${entry.title}`}</Text>
						{verb}
						{timing}
						{first ? (
							<Text color={tone(entry.state === 'failed' ? 'error' : undefined)} dimColor={entry.state !== 'failed'}>
								{`: ${sanitizeLine(first)}`}
							</Text>
						) : (
							''
						)}
					</Text>
					{rest.slice(0, 8).map((line, index) => (
						<Text key={index}>{`    ${sanitizeLine(line)}`}</Text>
					))}
					{entry.hint ? <Text color={tone('info')}>{`  hint: ${sanitizeLine(entry.hint)}`}</Text> : ''}
				</Box>
			);
		}
	}
}
