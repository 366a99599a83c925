import {Box, Text} from 'ink';
import React from 'react';
import type {StageState} from '../engine/events.js';
import {formatDuration, stageWindow} from '../ui/format.js';
import type {StageRow} from '../ui/run-state.js';
import {useTone, type Tone} from './theme.js';

const spinnerFrames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

const marks: Record<Exclude<StageState, 'running'>, {mark: string; tone?: Tone}> = {
	pending: {mark: '·'},
	done: {mark: '✔', tone: 'success'},
	failed: {mark: '✘', tone: 'error'},
	skipped: {mark: '↷', tone: 'warning'},
	undone: {mark: '↺', tone: 'accent'},
};

export function stageMark(state: StageState, tick: number): {mark: string; tone?: Tone} {
	if (state === 'running') return {mark: spinnerFrames[tick % spinnerFrames.length] ?? '*', tone: 'info'};
	return marks[state];
}

/**
 * Every stage as its mark, in order, the one in focus as `›`: the list as it
 * is while a gate needs the room (never a spinner: nothing runs at a gate).
 */
export function StageMarks(props: {stages: StageRow[]; focus: number}) {
	const tone = useTone();
	return (
		<>
			{props.stages.map((stage, index) => {
				const {mark, tone: markTone} =
					index === props.focus ? {mark: '›', tone: 'info' as const} : stageMark(stage.state, 0);
				return (
					<Text key={stage.id} color={tone(markTone)} bold={index === props.focus}>
						{stage.state === 'running' && index !== props.focus ? '·' : mark}
					</Text>
				);
			})}
		</>
	);
}

/** A stage that waits for the admin's answer. */
export const waitingMark = {mark: '?', tone: 'warning'} as const satisfies {mark: string; tone: Tone};

/** How many lines the list takes for `count` stages when it may use `maxLines`. */
export function stageListHeight(count: number, maxLines: number): number {
	return Math.min(count, Math.max(3, maxLines));
}

/** One line per stage; when they do not all fit, a window around the focused one with "… n more". */
export function StageList(props: {
	stages: StageRow[];
	focus: number;
	maxLines: number;
	tick: number;
	waiting?: boolean;
}) {
	const tone = useTone();
	const {stages, focus, maxLines, tick, waiting} = props;
	const window = stageWindow(stages.length, focus, stageListHeight(stages.length, maxLines));
	const more = (count: number) => (
		<Text dimColor wrap="truncate-end">
			{'     … '}
			{count} more
		</Text>
	);
	return (
		<Box flexDirection="column">
			{window.hiddenBefore > 0 && more(window.hiddenBefore)}
			{stages.slice(window.start, window.end).map((stage, offset) => {
				const index = window.start + offset;
				const focused = index === focus;
				// The stage in focus waits for an answer: no spinner, whatever runs behind it.
				const {mark, tone: markTone} = focused && waiting ? waitingMark : stageMark(stage.state, tick);
				const extra =
					stage.state === 'done' && stage.seconds ? formatDuration(stage.seconds) : stage.danger === 'typed' ? '⚠' : '';
				return (
					<Text key={stage.id} wrap="truncate-end" bold={focused}>
						{focused ? '› ' : '  '}
						<Text color={tone(markTone)}>{mark}</Text>
						{` ${String(index + 1).padStart(2)} ${stage.title}`}
						{extra ? <Text dimColor>{`  ${extra}`}</Text> : ''}
					</Text>
				);
			})}
			{window.hiddenAfter > 0 && more(window.hiddenAfter)}
		</Box>
	);
}
