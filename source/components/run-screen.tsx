import {Box, Static, Text} from 'ink';
import React from 'react';
import {focusIndex, type RunState} from '../ui/run-state.js';
import {LogItem} from './log-item.js';
import {StagePanel, type PanelHandlers} from './stage-panel.js';
import {StageList, StageMarks, stageListHeight} from './stage-list.js';

/**
 * How the live region shares the screen: a header, the stage list, a blank
 * line, the panel. It stays a line shorter than the terminal: Ink clears the
 * whole screen (log included) on every frame once its output is as tall as
 * the terminal.
 */
export function liveRegionLayout(rows: number, stageCount: number, atGate = false): {list: number; panel: number} {
	const usable = Math.max(10, rows - 1);
	// At a gate the change comes first: the list shrinks to the marks on the header line.
	if (atGate) return {list: 0, panel: usable - 1};
	const list = stageListHeight(stageCount, Math.floor(usable * 0.4));
	return {list, panel: usable - 2 - list};
}

/** Whether the screen waits at a gate: the plan then gets the room. */
export function atGate(state: RunState): boolean {
	return state.request?.kind === 'gate' && state.finished === undefined && state.quit !== 'quitting';
}

/** The whole run screen: the log of finished things above, the live region below. No state of its own. */
export function RunScreen(props: PanelHandlers & {state: RunState; columns: number; rows: number; tick: number}) {
	const {state, columns, rows, tick} = props;
	const gate = atGate(state);
	const layout = liveRegionLayout(rows, state.stages.length, gate);
	const done = state.stages.filter((stage) => stage.state === 'done').length;
	return (
		<>
			<Static items={state.log}>{(entry) => <LogItem key={entry.id} entry={entry} width={columns} />}</Static>
			<Box flexDirection="column" width={columns}>
				<Text wrap="truncate-end" bold>
					{`farmclone ${state.farm}`}
					<Text dimColor bold={false}>{` · ${done}/${state.stages.length} done`}</Text>
					{gate ? (
						<Text bold={false}>
							{'  '}
							<StageMarks stages={state.stages} focus={focusIndex(state)} />
						</Text>
					) : (
						''
					)}
				</Text>
				{gate ? (
					''
				) : (
					<>
						<StageList
							stages={state.stages}
							focus={focusIndex(state)}
							maxLines={layout.list}
							tick={tick}
							waiting={state.request !== undefined}
						/>
						<Text> </Text>
					</>
				)}
				<StagePanel {...props} width={columns} height={layout.panel} />
			</Box>
		</>
	);
}
