import {Select} from '@inkjs/ui';
import {Box, Text} from 'ink';
import React, {type ReactNode} from 'react';
import {planLines, planPage, wrapText} from '../ui/format.js';
import {preflightLine, summaryLine, type RunState, type StageRow} from '../ui/run-state.js';
import type {PromptRequest} from '../ui/tui-prompt.js';
import type {FirewallWaitAnswer} from '../stages/types.js';
import {CopyProgressView, copyProgressHeight} from './copy-progress.js';
import {FirewallWait} from './FirewallWait.js';
import {PlanView} from './plan-view.js';
import {stageMark, waitingMark} from './stage-list.js';
import {useTone} from './theme.js';
import {TypedField} from './typed-field.js';

export type PanelHandlers = {
	onTypedSubmit: (value: string) => void;
	onTypedCancel: () => void;
	onChoose: (value: string) => void;
	onFirewall?: (answer: FirewallWaitAnswer) => void;
};

type PanelProps = PanelHandlers & {state: RunState; width: number; height: number; tick: number};

function Line({children, dim, bold, color}: {children: ReactNode; dim?: boolean; bold?: boolean; color?: string}) {
	return (
		<Text wrap="truncate-end" dimColor={dim} bold={bold} color={color}>
			{children}
		</Text>
	);
}

function Wrapped(props: {text: string; width: number; maxLines: number; bold?: boolean; color?: string}) {
	const {text, width, maxLines, bold, color} = props;
	const lines = wrapText(text, width).slice(0, Math.max(1, maxLines));
	return (
		<>
			{lines.map((line, index) => (
				<Line key={index} bold={bold} color={color}>
					{line}
				</Line>
			))}
		</>
	);
}

function secondsLeft(deadline: number): number {
	return Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
}

function wrappedHeight(text: string, width: number, maxLines: number): number {
	return Math.min(Math.max(1, maxLines), wrapText(text, width).length);
}

function QuitQuestion() {
	const tone = useTone();
	return (
		<Line bold color={tone('warning')}>
			Quit farmclone? The run stays resumable. (y/n)
		</Line>
	);
}

function StageTitle(props: {stage: StageRow; number: number; total: number; tick: number; waiting?: boolean}) {
	const tone = useTone();
	const {stage, number, total, tick, waiting} = props;
	// Waiting for an answer is not work: no spinner then, whatever the stage's state.
	const {mark, tone: markTone} = waiting ? waitingMark : stageMark(stage.state, tick);
	const doing = waiting
		? ' · waits for you'
		: stage.state === 'running'
			? ' running…'
			: stage.state === 'pending'
				? ''
				: ` ${stage.state}`;
	return (
		<Line bold>
			<Text color={tone(markTone)}>{mark}</Text>
			{` ${number}/${total} ${stage.title}`}
			<Text color={tone(waiting ? 'warning' : undefined)}>{doing}</Text>
		</Line>
	);
}

/** Lines of the gate around its plan: title, summary, key line, and the typed field when shown. */
export function gatePlanBudget(panelHeight: number, state: Pick<RunState, 'typing' | 'typedError'>): number {
	const typingLines = state.typing ? 2 + (state.typedError ? 1 : 0) : 0;
	return Math.max(1, panelHeight - 3 - typingLines);
}

/** Before a stage runs: what it will do, then the keys (or the typed confirmation of a dangerous stage). */
function GatePanel(props: PanelProps & {request: Extract<PromptRequest, {kind: 'gate'}>}) {
	const tone = useTone();
	const {state, request, width, height} = props;
	const number = state.stages.findIndex((row) => row.id === request.stage) + 1;
	const stage = state.stages[number - 1];
	if (!stage) return <Line>{`unknown stage ${request.stage}`}</Line>;
	const asking = state.quit === 'asked';
	const detail = request.check.detail ? ` · ${request.check.detail}` : '';
	const planBudget = gatePlanBudget(height, state);
	const paging = state.planScroll !== undefined;
	const total = planLines(request.plan, width).length;
	const page = planPage(total, planBudget, state.planScroll ?? 0);
	// The first gate shows while the preflight's slowest checks finish: Enter is taken, and the stage waits for them.
	const checking = state.preflight?.running ?? [];
	const keysWith = (enter: string) =>
		paging
			? [`lines ${page.first + 1}-${page.end} of ${total}`, '↑↓ PgUp PgDn scroll', 'd back', enter, 'q quit']
			: [enter, stage.skippable ? 's skip' : '', 'd whole plan', 'q quit'];
	// The checks by name where the line has room for them and every key; else how many are left.
	const named = keysWith(`Enter: run once the preflight passes (checking ${checking.join(', ')})`);
	const keys =
		checking.length === 0
			? keysWith('Enter run')
			: named.filter(Boolean).join(' · ').length <= width
				? named
				: keysWith(`Enter: run once the preflight passes (${checking.length} checks left)`);
	return (
		<Box flexDirection="column">
			<StageTitle stage={stage} number={number} total={state.stages.length} tick={props.tick} waiting />
			<Line dim>{`${stage.summary}${detail}`}</Line>
			<PlanView plan={request.plan} width={width} budget={planBudget} scroll={state.planScroll} />
			{state.typing ? (
				<>
					<Line bold color={tone('warning')}>
						{`Type the farm's name to run ${stage.title}:`}
					</Line>
					<TypedField isActive={!asking} onSubmit={props.onTypedSubmit} onCancel={props.onTypedCancel} />
					{state.typedError ? (
						<Line color={tone('error')}>{`✘ ${state.typedError}: type ${state.farm} exactly`}</Line>
					) : (
						''
					)}
				</>
			) : (
				''
			)}
			{asking ? (
				<QuitQuestion />
			) : (
				<Line dim>{state.typing ? 'Enter confirm · Esc back' : keys.filter(Boolean).join(' · ')}</Line>
			)}
		</Box>
	);
}

/** A question the engine asked while a stage runs. */
function PromptPanel(props: PanelProps & {request: Exclude<PromptRequest, {kind: 'gate'}>}) {
	const tone = useTone();
	const {state, request, width, height} = props;
	const asking = state.quit === 'asked';
	const footer = asking ? <QuitQuestion /> : undefined;
	// The stage that asks, when one is running; an undo asks before any stage runs.
	const running = state.stages.find((row) => row.id === state.focus)?.state === 'running';
	// The stage waits for this answer: its line says so, without a spinner.
	const context = running ? <RunningLine {...props} waiting /> : '';
	const room = height - (running ? 1 : 0) - (footer ? 1 : 0);
	if (request.kind === 'confirm') {
		const left = request.deadline === undefined ? undefined : secondsLeft(request.deadline);
		return (
			<Box flexDirection="column">
				{context}
				<Wrapped text={`${request.message} (y/n)`} width={width} maxLines={room - (left === undefined ? 0 : 1)} bold />
				{left === undefined ? '' : <Line color={tone('warning')}>{`${left} s left · no answer by then is a no`}</Line>}
				{footer}
			</Box>
		);
	}

	if (request.kind === 'firewall') {
		return (
			<Box flexDirection="column">
				{context}
				<FirewallWait
					request={request}
					isActive={!asking}
					tick={props.tick}
					onAnswer={(answer) => props.onFirewall?.(answer)}
				/>
				{footer}
			</Box>
		);
	}

	if (request.kind === 'choose') {
		const messageLines = wrappedHeight(request.message, width, 2);
		const visible = Math.max(1, Math.min(request.choices.length, room - messageLines - 1));
		const options = request.choices.map((choice) => ({
			label: wrapText(choice.label, width - 4)[0] ?? choice.value,
			value: choice.value,
		}));
		return (
			<Box flexDirection="column">
				{context}
				<Wrapped text={request.message} width={width} maxLines={2} bold />
				<Select options={options} visibleOptionCount={visible} isDisabled={asking} onChange={props.onChoose} />
				{footer ?? <Line dim>↑↓ move · Enter choose</Line>}
			</Box>
		);
	}

	const messageLines = wrappedHeight(request.message, width, Math.max(1, room - 3));
	return (
		<Box flexDirection="column">
			{context}
			<Wrapped text={request.message} width={width} maxLines={messageLines} bold />
			<TypedField isActive={!asking} onSubmit={props.onTypedSubmit} onCancel={props.onTypedCancel} />
			{state.typedError ? <Line color={tone('error')}>{`✘ ${state.typedError}`}</Line> : ''}
			{footer ?? <Line dim>Enter confirm · Esc cancel</Line>}
		</Box>
	);
}

function RunningLine({state, tick, waiting}: PanelProps & {waiting?: boolean}) {
	const number = state.focus ? state.stages.findIndex((row) => row.id === state.focus) + 1 : 0;
	const stage = state.stages[number - 1];
	if (!stage) return <Line dim>{preflightLine(state.preflight)}</Line>;
	if (stage.state === 'pending') {
		return <Line dim>{`checking ${number}/${state.stages.length} ${stage.title}…`}</Line>;
	}

	return <StageTitle stage={stage} number={number} total={state.stages.length} tick={tick} waiting={waiting} />;
}

/** While a stage runs: its line, the copy's progress when there is one, and how to leave. */
function RunningPanel(props: PanelProps) {
	const {state, width, height} = props;
	const progress = state.progress && state.progress.stage === state.focus ? state.progress.progress : undefined;
	const showProgress = progress !== undefined && height >= 2 + copyProgressHeight;
	return (
		<Box flexDirection="column">
			<RunningLine {...props} />
			{showProgress ? <CopyProgressView progress={progress} width={width} /> : ''}
			{state.quit === 'asked' ? <QuitQuestion /> : <Line dim>q quit (the run stays resumable)</Line>}
		</Box>
	);
}

function EndPanel({state, width}: PanelProps) {
	const tone = useTone();
	const summary = summaryLine(state);
	const mark = summary.tone === 'success' ? '✔' : summary.tone === 'error' ? '✘' : '■';
	const made = state.end?.outcome === 'done' ? state.end.made : undefined;
	return (
		<Box flexDirection="column">
			<Wrapped text={`${mark} ${summary.text}`} width={width} maxLines={4} bold color={tone(summary.tone)} />
			{summary.resume ? <Wrapped text={`resume with: ${summary.resume}`} width={width} maxLines={4} /> : ''}
			{made ? <Wrapped text={`ssh: ${made.ssh}`} width={width} maxLines={2} /> : ''}
			{made ? <Wrapped text={`url: ${made.url} · all it made is above`} width={width} maxLines={2} /> : ''}
			{state.quit === 'quitting' ? '' : <Line dim>press any key to exit</Line>}
		</Box>
	);
}

/** The lower part of the live region: what the stage in focus needs from the admin now. */
export function StagePanel(props: PanelProps) {
	const {state} = props;
	if (state.finished !== undefined) return <EndPanel {...props} />;
	if (state.quit === 'quitting') return <Line dim>Stopping… the run stays resumable.</Line>;
	const {request} = state;
	if (request?.kind === 'gate') return <GatePanel {...props} request={request} />;
	if (request) return <PromptPanel {...props} request={request} />;
	return <RunningPanel {...props} />;
}
