import {Box, Static, Text} from 'ink';
import React from 'react';
import {focusIndex, type RunState} from '../ui/run-state.js';
import {LogItem} from './log-item.js';
import {StagePanel, type PanelHandlers} from './stage-panel.js';
import {StageList, stageListHeight} from './stage-list.js';

/**
 * How the live region shares the screen: a header, the stage list, a blank
 * line, the panel. It stays a line shorter than the terminal: Ink clears the
 * whole screen (log included) on every frame once its output is as tall as
 * the terminal.
 */
export function liveRegionLayout(rows: number, stageCount: number): {list: number; panel: number} {
	const usable = Math.max(10, rows - 1);
	const list = stageListHeight(stageCount, Math.floor(usable * 0.4));
	return {list, panel: usable - 2 - list};
}

/** The whole run screen: the log of finished things above, the live region below. No state of its own. */
export function RunScreen(props: PanelHandlers & {state: RunState; columns: number; rows: number; tick: number}) {
	const {state, columns, rows, tick} = props;
	const layout = liveRegionLayout(rows, state.stages.length);
	const done = state.stages.filter((stage) => stage.state === 'done').length;
	return (
		<>
			<Static items={state.log}>{(entry) => <LogItem key={entry.id} entry={entry} width={columns} />}</Static>
			<Box flexDirection="column" width={columns}>
				<Text wrap="truncate-end" bold>
					{`farmclone ${state.farm}`}
					<Text dimColor bold={false}>{` · ${done}/${state.stages.length} done`}</Text>
				</Text>
				<StageList stages={state.stages} focus={focusIndex(state)} maxLines={layout.list} tick={tick} />
				<Text> </Text>
				<StagePanel {...props} width={columns} height={layout.panel} />
			</Box>
		</>
	);
}
