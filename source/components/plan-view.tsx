import {Box, Text} from 'ink';
import React from 'react';
import {compactPlanLines, planLines, planPage, type PlanLine, type PlanLineTone} from '../ui/format.js';
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

/**
 * The plan in `budget` lines. Cut to its changes (`scroll` undefined): what
 * gives way is counted on the last line. Paged (`scroll` a line number): the
 * whole plan from that line, as much as fits.
 */
export function PlanView(props: {plan: Plan; width: number; budget: number; scroll?: number}) {
	const lines = planLines(props.plan, props.width);
	if (lines.length === 0) {
		return <Text dimColor>nothing to run: no commands, no file changes</Text>;
	}

	const budget = Math.max(1, props.budget);
	let shown: PlanLine[];
	let hidden = 0;
	let onlyContext = true;
	if (props.scroll === undefined) {
		({shown, hidden, onlyContext} = compactPlanLines(lines, budget));
	} else {
		const page = planPage(lines.length, budget, props.scroll);
		shown = lines.slice(page.first, page.end);
	}

	return (
		<Box flexDirection="column">
			{shown.map((line, index) => (
				<PlanLineView key={index} line={line} />
			))}
			{hidden > 0 ? (
				<Text
					dimColor
					wrap="truncate-end"
				>{`… ${hidden} more line${hidden === 1 ? '' : 's'}${onlyContext ? ' of context' : ''}: d shows the whole plan`}</Text>
			) : (
				''
			)}
		</Box>
	);
}
