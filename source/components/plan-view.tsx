import {Box, Text} from 'ink';
import React from 'react';
import {fitLines, planLines, type PlanLine, type PlanLineTone} from '../ui/format.js';
import type {Plan} from '../stages/types.js';
import {useTone, type Tone} from './theme.js';

const tones: Partial<Record<PlanLineTone, Tone>> = {add: 'add', remove: 'remove', hunk: 'info', command: 'accent'};

export function PlanLineView({line}: {line: PlanLine}) {
	const tone = useTone();
	return (
		<Text
			wrap="truncate-end"
			color={tone(tones[line.tone])}
			bold={line.tone === 'file'}
			dimColor={line.tone === 'context'}
		>
			{line.text}
		</Text>
	);
}

/** The plan cut to `budget` lines; what does not fit is counted, and `d` puts all of it in the log. */
export function PlanView(props: {plan: Plan; width: number; budget: number}) {
	const lines = planLines(props.plan, props.width);
	if (lines.length === 0) {
		return <Text dimColor>nothing to run: no commands, no file changes</Text>;
	}

	const {shown, hidden} = fitLines(lines, Math.max(1, props.budget));
	return (
		<Box flexDirection="column">
			{shown.map((line, index) => (
				<PlanLineView key={index} line={line} />
			))}
			{hidden > 0 ? (
				<Text dimColor wrap="truncate-end">{`(${hidden} more lines, press d for the full diff)`}</Text>
			) : (
				''
			)}
		</Box>
	);
}
