import {Text} from 'ink';
import React from 'react';
import {useTextField} from '../hooks/use-text-field.js';

/** A one-line field; the cursor is a reverse-video block, which is not a colour. */
export function TypedField(props: {isActive: boolean; onSubmit: (value: string) => void; onCancel?: () => void}) {
	const value = useTextField(props);
	return (
		<Text wrap="truncate-start">
			{'> '}
			{value}
			{props.isActive ? <Text inverse> </Text> : ''}
		</Text>
	);
}
