import {Box, Text, useInput} from 'ink';
import React, {useState} from 'react';
import type {FirewallWaitAnswer} from '../stages/types.js';
import {formatClock} from '../ui/format.js';
import type {PromptRequest} from '../ui/tui-prompt.js';
import {useTone} from './theme.js';
import {TypedField} from './typed-field.js';

export const keepWithoutProof = 'keep without proof';

function Line({children, dim, bold, color}: {children: string; dim?: boolean; bold?: boolean; color?: string}) {
	return (
		<Text wrap="truncate-end" dimColor={dim} bold={bold} color={color}>
			{children}
		</Text>
	);
}

type Props = {
	request: Extract<PromptRequest, {kind: 'firewall'}>;
	/** False while another question (quit?) has the keys. */
	isActive: boolean;
	onAnswer: (answer: FirewallWaitAnswer) => void;
	/** Re-renders the countdown. */
	tick?: number;
};

/**
 * The waiting screen of a Shorewall restart: the command that proves new
 * SSH connections get in, the time left, and once it came, who confirmed
 * from where. This session cannot prove it (Shorewall keeps established
 * connections), so its own way out is typed and said to be without proof.
 */
export function FirewallWait({request, isActive, onAnswer}: Props) {
	const tone = useTone();
	const [typing, setTyping] = useState(false);
	const [mismatch, setMismatch] = useState<string | undefined>(undefined);
	const {confirmed} = request;
	useInput(
		(input, key) => {
			if (confirmed) {
				if (key.return) onAnswer('confirmed');
				return;
			}

			if (input === 'r') onAnswer('roll-back');
			else if (input === 'k') setTyping(true);
		},
		{isActive: isActive && !typing},
	);

	if (confirmed) {
		return (
			<Box flexDirection="column">
				<Line bold color={tone('success')}>
					{`✔ confirmed from ${confirmed.client ?? 'a new connection'} at ${formatClock(confirmed.at)}`}
				</Line>
				<Line>the new firewall is kept: a connection opened after the restart got in</Line>
				<Line dim>Enter go on</Line>
			</Box>
		);
	}

	const left = Math.max(0, Math.ceil((request.deadline - Date.now()) / 1000));
	return (
		<Box flexDirection="column">
			<Line bold>Firewall restarted. Keep it only if NEW ssh connections get in.</Line>
			<Line>From a NEW ssh session to this host, run:</Line>
			{/* The command whole, over as many lines as it takes: a cut one would not work as printed. */}
			<Text bold wrap="wrap" color={tone('accent')}>{`  ${request.command}`}</Text>
			<Line color={tone('warning')}>
				{`${left} s left · then the previous firewall comes back (${formatClock(request.deadline)})`}
			</Line>
			<Line dim>this session proves nothing: Shorewall keeps established connections</Line>
			{typing ? (
				<>
					<Line>{`No second connection (console)? Type "${keepWithoutProof}":`}</Line>
					<TypedField
						isActive={isActive}
						onSubmit={(value) => {
							if (value === keepWithoutProof) onAnswer('keep-without-proof');
							else setMismatch(value);
						}}
						onCancel={() => {
							setTyping(false);
							setMismatch(undefined);
						}}
					/>
					{mismatch === undefined ? (
						''
					) : (
						<Line color={tone('error')}>{`✘ "${mismatch}" is not "${keepWithoutProof}"`}</Line>
					)}
					<Line dim>Enter keep without proof · Esc back</Line>
				</>
			) : (
				<Line dim>r roll back now · k keep without proof (typed)</Line>
			)}
		</Box>
	);
}
