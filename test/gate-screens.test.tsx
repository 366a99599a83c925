import assert from 'node:assert/strict';
import {test} from 'node:test';
import {isChange, planLines, type PlanLine} from '../source/ui/format.js';
import {readGatePlans, type GatePlan} from './kit/gate-plans.js';
import {showGate} from './kit/gate-screen.js';

const gates = await readGatePlans();
const gateOf = (stage: string): GatePlan => {
	const found = gates.find((gate) => gate.stage === stage);
	assert.ok(found, `the fixture has the gate of ${stage}`);
	return found;
};

/**
 * The stages whose commands are cut at 80x24 (their changes are not): identity
 * runs seven commands, three of them two lines long; the reverse proxy's
 * curl takes three lines. Every other gate shows its commands whole.
 */
const commandsCut = new Set(['identity', 'reverse-proxy']);

/** The ports a plan names: the clone's SSH port, the port forwarded to, nginx's listen. */
function portsIn(text: string): string[] {
	const found = text.matchAll(/\blisten (\d+)|\bport (\d+)|\b(22\d\d\d)\b|:(22)\b(?!:)/g);
	return [...new Set([...found].map((match) => match.slice(1).find(Boolean)!))];
}

const spinner = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;

/** Whether every piece of `lines` is a row of the view, in order. */
function missing(view: string[], lines: PlanLine[]): string[] {
	return lines.map((line) => line.text.trimEnd()).filter((text) => !view.includes(text));
}

/** What each stage's gate must show at 80x24 without paging, beyond its changed lines and files. */
const keyLines: Record<string, RegExp[]> = {
	'dns-record': [/^\+gallifrey-dev\.xivo\.vm\s+IN\s+A\s+10\.10\.60\.\d+/m, /SOA serial \d+ -> \d+/],
	'dhcp-host': [/hardware ethernet 52:54:/, /fixed-address 10\.10\.60\.\d+;/],
	'firewall-rule': [/^\+DNAT .*:22 tcp 22006$/m, /^\+VM_GALLIFREY_DEV_XIVO=10\.10\.60\.\d+/m],
	'firewall-restart': [/run farmclone confirm\s+gallifrey-dev;/, /\$ shorewall restart /],
	'ganeti-instance': [/\$ gnt-instance add .*/],
	identity: [/^\+gallifrey-dev$/m, /^\+GIT_REVISION=master$/m, /generated for gallifrey-dev/],
	'reverse-proxy': [
		/^\+ +listen 80;$/m,
		/server_name gallifrey-dev\.dachary\.org;/,
		/proxy_pass http:\/\/gallifrey-dev\.xivo\.vm\.farm;/,
	],
	copy: [/\$ node \S+copier\.js\s+if=/],
	mac: [/MAC 52:54:/],
};

for (const gate of gates) {
	test(`at 80x24 the gate of ${gate.stage} shows its changes, files and commands without paging`, async () => {
		const screen = await showGate(gate);
		try {
			const view = screen.view();
			const text = view.join('\n');
			assert.ok(view.length <= 24);
			assert.match(view[0] ?? '', /^farmclone gallifrey-dev · \d+\/15 done {2}[✔›·]+$/, 'the list is one line');
			assert.match(text, /^\? \d+\/15 .* · waits for you$/m, 'the gate says it waits');
			assert.doesNotMatch(text, spinner, 'no spinner while nothing runs');
			assert.match(view.at(-1) ?? '', /^Enter run .*d whole plan · q quit$/, 'the footer lists d');
			const lines = planLines(gate.plan, 80);
			const files = lines.filter((line) => line.tone === 'file' && line.text.startsWith('~ '));
			assert.deepEqual(missing(view, files), [], `every file it changes is named:\n${text}`);
			const changes = lines.filter((line) => isChange(line));
			assert.deepEqual(missing(view, changes), [], `every changed line is shown:\n${text}`);
			const ports = portsIn(lines.map((line) => line.text).join('\n'));
			assert.deepEqual(
				ports.filter((port) => !portsIn(text).includes(port)),
				[],
				`every port is shown:\n${text}`,
			);
			const commands = lines.filter((line) => line.tone === 'command');
			if (!commandsCut.has(gate.stage)) {
				assert.deepEqual(missing(view, commands), [], `every command is shown:\n${text}`);
			}

			for (const pattern of keyLines[gate.stage] ?? []) assert.match(text, pattern);
		} finally {
			screen.unmount();
		}
	});
}

test('the firewall restart shows its whole instruction at 80x24', async () => {
	const gate = gateOf('firewall-restart');
	const screen = await showGate(gate);
	try {
		const proof = planLines(gate.plan, 80).filter((line) => line.text.includes('proof: from a NEW ssh'));
		assert.equal(proof.length, 1);
		const pieces = planLines(gate.plan, 80).filter((line) => line.item === proof[0]!.item);
		assert.ok(pieces.length > 1, 'the instruction wraps');
		assert.deepEqual(missing(screen.view(), pieces), [], screen.view().join('\n'));
	} finally {
		screen.unmount();
	}
});

test('d pages the whole plan in place: PgDn and PgUp scroll it, nothing goes to the scrollback, d goes back', async () => {
	const gate = gateOf('reverse-proxy');
	const screen = await showGate(gate);
	try {
		const all = planLines(gate.plan, 80);
		const compact = screen.view();
		assert.match(compact.join('\n'), /… \d+ more lines?( of context)?: d shows the whole plan/);
		const first = await screen.press('d', (view) => /lines 1-\d+ of \d+/.test(view), 'the first page');
		assert.match(first.at(-1) ?? '', new RegExp(`^lines 1-(\\d+) of ${all.length} · ↑↓ PgUp PgDn scroll · d back`));
		assert.ok(first.includes(all[0]!.text.trimEnd()), 'the whole plan starts at its first line');
		const pageSize = Number(/lines 1-(\d+)/.exec(first.at(-1) ?? '')?.[1]);
		const second = await screen.press('\u001B[6~', (view) => !/lines 1-/.test(view), 'the next page');
		const secondEnd = Math.min(2 * pageSize, all.length);
		assert.match(second.at(-1) ?? '', new RegExp(`^lines ${secondEnd - pageSize + 1}-${secondEnd} of`));
		const end = await screen.press('\u001B[6~\u001B[6~', (view) => view.includes(`-${all.length} of`), 'the end');
		assert.ok(end.includes(all.at(-1)!.text.trimEnd()), 'the last line of the plan');
		await screen.press('\u001B[5~', (view) => !view.includes(`-${all.length} of`), 'a page up');
		await screen.press('\u001B[5~\u001B[5~', (view) => /lines 1-/.test(view), 'the top');
		const down = await screen.press('\u001B[B', (view) => /lines 2-/.test(view), 'a line down');
		assert.ok(!down.includes(all[0]!.text.trimEnd()) || all[0]!.text === all[1]!.text);
		const back = await screen.press('\u001B[5~', (view) => /lines 1-/.test(view), 'the first page again');
		assert.deepEqual(back, first);
		const closed = await screen.press('d', (view) => /d whole plan/.test(view), 'the plan cut to its changes');
		assert.deepEqual(closed, compact);
		// Paging happens in place: no frame ever held more than the live region (the log stays empty).
		for (const frame of screen.frames()) assert.ok(frame.split('\n').length <= 23, frame);
	} finally {
		screen.unmount();
	}
});
