import {Select} from '@inkjs/ui';
import {Box, Text, useApp, useInput} from 'ink';
import React, {useRef} from 'react';
import {useTerminalSize} from '../hooks/use-terminal-size.js';
import {wrapText} from '../ui/format.js';
import {ColorProvider, colorWanted} from './theme.js';

export type FarmChoice = {name: string; summary: string};

export type FarmPickerProps = {
	farms: FarmChoice[];
	/** The farm picked, or undefined when the admin left with q or Esc. */
	onDone: (farm: string | undefined) => void;
	columns?: number;
	rows?: number;
	color?: boolean;
};

/** `farmclone` alone: which farm to carry on with. */
export function FarmPicker(props: FarmPickerProps) {
	return (
		<ColorProvider enabled={props.color ?? colorWanted()}>
			<FarmList {...props} />
		</ColorProvider>
	);
}

function FarmList({farms, onDone, columns, rows}: FarmPickerProps) {
	const {exit} = useApp();
	const size = useTerminalSize({columns, rows});
	const done = useRef(false);
	const finish = (farm: string | undefined) => {
		if (done.current) return;
		done.current = true;
		onDone(farm);
		exit();
	};

	useInput((input, key) => {
		if (key.escape || input === 'q' || (key.ctrl && input === 'c')) finish(undefined);
	});
	const nameWidth = Math.min(24, Math.max(...farms.map((farm) => farm.name.length), 4));
	const options = farms.map((farm) => ({
		value: farm.name,
		label: wrapText(`${farm.name.padEnd(nameWidth)}  ${farm.summary}`, size.columns - 4)[0] ?? farm.name,
	}));
	return (
		<Box flexDirection="column" width={size.columns}>
			<Text bold>Which farm?</Text>
			{farms.length === 0 ? (
				<Text dimColor>No farm remembered yet.</Text>
			) : (
				<Select
					options={options}
					visibleOptionCount={Math.max(1, Math.min(options.length, size.rows - 3))}
					onChange={finish}
				/>
			)}
			<Text dimColor>↑↓ move · Enter open · q quit</Text>
		</Box>
	);
}
