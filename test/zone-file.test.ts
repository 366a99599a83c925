import {execFileSync, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {splitLines} from '../source/host/markers.js';
import {
	addZoneRecord,
	bumpSerial,
	inspectZone,
	parseZone,
	removeZoneRecord,
	ZoneConflictError,
	ZoneParseError,
} from '../source/host/zone-file.js';
import {zoneSecondaries} from '../source/stages/dns-record.js';

const request = {zone: 'farm', record: 'gallifrey-dev.xivo.vm', ip: '10.10.60.6', farm: 'gallifrey-dev'};
const today = new Date(2024, 4, 17, 12);

/** A farm zone as the seed's admin keeps it: tabs, multi-line SOA with comments, a $GENERATE for the DHCP pool. */
const seedZone = `; farm zone
$TTL 86400
$ORIGIN farm.
@	IN	SOA	ns.farm. hostmaster.farm. (
			2011072501	; serial
			3600		; refresh
			900		; retry
			604800		; expire
			86400 )		; negative TTL
	IN	NS	ns
ns	IN	A	10.10.60.1
host01	IN	A	10.10.60.1
gallifrey.xivo.vm	IN	A	10.10.60.5
txt	IN	TXT	"v=spf1 ; not a comment"
$GENERATE 100-120 dhcp-$ IN A 10.10.60.$
`;

/** 1-based number of a line appended to seedZone. */
const appendedLine = seedZone.split('\n').length;

function withTemp(t: import('node:test').TestContext): string {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-zone-'));
	t.after(() => fs.rmSync(dir, {recursive: true, force: true}));
	return dir;
}

function namedCheckzone(dir: string, text: string): {ok: boolean; output: string} {
	const file = path.join(dir, 'db.farm');
	fs.writeFileSync(file, text);
	const result = spawnSync('named-checkzone', ['-i', 'local', 'farm', file], {encoding: 'utf8'});
	return {ok: result.status === 0, output: result.stdout + result.stderr};
}

/** Lines that differ between two texts of the same length in lines. */
function differingLines(a: string, b: string): number[] {
	const [left, right] = [a.split('\n'), b.split('\n')];
	assert.equal(left.length, right.length);
	return left.flatMap((line, index) => (line === right[index] ? [] : [index]));
}

test('adds a marked record at the end, bumps a dated serial to today, named-checkzone accepts it', (t) => {
	const edit = addZoneRecord(seedZone, request, today);
	assert.equal(edit.serialBefore, '2011072501');
	assert.equal(edit.serialAfter, '2024051700');
	assert.ok(edit.text.startsWith(seedZone.replace('2011072501', '2024051700')));
	const added = edit.text.slice(seedZone.length).trimEnd();
	assert.match(added, /^gallifrey-dev\.xivo\.vm\tIN\tA\t10\.10\.60\.6 ; farmclone:gallifrey-dev$/);
	const check = namedCheckzone(withTemp(t), edit.text);
	assert.ok(check.ok, check.output);
	assert.match(check.output, /loaded serial 2024051700/);
	assert.equal(inspectZone(edit.text, request).status, 'ours');
});

test('applying twice adds nothing the second time', () => {
	const once = addZoneRecord(seedZone, request, today);
	const twice = addZoneRecord(once.text, request, today);
	assert.equal(twice.text, once.text);
	assert.equal(twice.serialAfter, twice.serialBefore);
});

test('undo removes exactly the record and bumps the serial again', () => {
	const added = addZoneRecord(seedZone, request, today);
	const undone = removeZoneRecord(added.text, request, today);
	assert.equal(undone.removed.length, 1);
	assert.equal(undone.serialBefore, '2024051700');
	assert.equal(undone.serialAfter, '2024051701');
	const changed = differingLines(seedZone, undone.text);
	assert.deepEqual(changed, [4]);
	assert.equal(undone.text, seedZone.replace('2011072501', '2024051701'));
	assert.equal(removeZoneRecord(undone.text, request, today).text, undone.text);
});

test('CRLF zone with the SOA on one line and a counter serial keeps its line endings', () => {
	const zone = [
		'$TTL 3600',
		'@ IN SOA ns.farm. root.farm. 41 3600 900 604800 3600',
		'  IN NS ns.farm.',
		'ns.farm.     IN A 10.10.60.1',
		'build        IN A 10.10.60.2',
		'',
	].join('\r\n');
	const edit = addZoneRecord(zone, request, today);
	assert.equal(edit.serialAfter, '42');
	assert.doesNotMatch(edit.text.replaceAll('\r\n', ''), /\n/);
	// Spaces in the file: the new line lines up with `build        IN A ...`.
	assert.ok(edit.text.endsWith('gallifrey-dev.xivo.vm IN A 10.10.60.6 ; farmclone:gallifrey-dev\r\n'));
	const undone = removeZoneRecord(edit.text, request, today);
	assert.equal(undone.text, zone.replace(' 41 ', ' 43 '));
});

test('aligns with spaces when the last A record pads with spaces', () => {
	const zone = ['$ORIGIN farm.', '@ IN SOA ns root 1 1 1 1 1', '@ IN NS ns', 'ns          IN  A   10.10.60.1', ''].join(
		'\n',
	);
	const line = splitLines(addZoneRecord(zone, {...request, record: 'dev'}, today).text).at(-1)!;
	assert.equal(line, 'dev         IN  A   10.10.60.6 ; farmclone:gallifrey-dev');
});

test('a zone without a final newline gets its bytes back on undo', () => {
	const zone = seedZone.trimEnd();
	const edit = addZoneRecord(zone, request, today);
	assert.ok(!edit.text.endsWith('\n'));
	const undone = removeZoneRecord(edit.text, request, today);
	assert.equal(undone.text, zone.replace('2011072501', '2024051701'));
});

test('names are written relative to the $ORIGIN in force at the end of the file', (t) => {
	const zone = `${seedZone}$ORIGIN xivo.vm.farm.\ngallifrey-old\tIN\tA\t10.10.60.9\n`;
	const edit = addZoneRecord(zone, request, today);
	assert.ok(edit.line?.startsWith('gallifrey-dev\tIN\tA\t10.10.60.6'));
	const check = namedCheckzone(withTemp(t), edit.text);
	assert.ok(check.ok, check.output);
	// The relative name resolves to the same owner, so the record is seen as there.
	assert.equal(inspectZone(edit.text, request).status, 'ours');

	const elsewhere = `${seedZone}$ORIGIN other.\n`;
	assert.ok(addZoneRecord(elsewhere, request, today).line?.startsWith('gallifrey-dev.xivo.vm.farm.\t'));
});

test('finds the name however it is spelled: relative under another $ORIGIN, absolute, blank owner', () => {
	const spellings = [
		'$ORIGIN xivo.vm.farm.\ngallifrey-dev IN A 10.10.60.7\n',
		'gallifrey-dev.xivo.vm.farm. IN A 10.10.60.7\n',
		'GALLIFREY-DEV.xivo.vm 300 IN CNAME gallifrey\n',
		'gallifrey-dev.xivo.vm IN MX 10 host01\n',
		'other IN A 10.10.60.8\n$ORIGIN vm.farm.\ngallifrey-dev.xivo IN A 10.10.60.7\n\tIN TXT "second record of the same owner"\n',
	];
	for (const spelling of spellings) {
		const state = inspectZone(seedZone + spelling, request);
		assert.equal(state.conflicts.length >= 1, true, spelling);
		assert.ok(
			state.conflicts.every((conflict) => conflict.includes('already uses the name gallifrey-dev.xivo.vm.farm.')),
			spelling,
		);
		assert.throws(() => addZoneRecord(seedZone + spelling, request, today), ZoneConflictError);
	}
});

test('a second A record for the IP is a conflict, although named-checkzone accepts it', (t) => {
	const zone = `${seedZone}build.xivo.vm\tIN\tA\t10.10.60.6\n`;
	assert.deepEqual(inspectZone(zone, request).conflicts, [
		`line ${appendedLine}: build.xivo.vm\tIN\tA\t10.10.60.6 already holds 10.10.60.6`,
	]);
	const withBoth = `${zone}gallifrey-dev.xivo.vm\tIN\tA\t10.10.60.6\n`;
	assert.ok(namedCheckzone(withTemp(t), withBoth).ok);
	assert.equal(inspectZone(withBoth, request).conflicts.length, 1);
});

test('addresses from $GENERATE count', () => {
	const state = inspectZone(seedZone, {...request, ip: '10.10.60.110'});
	assert.equal(state.conflicts.length, 1);
	assert.match(state.conflicts[0]!, /\$GENERATE.*dhcp-110\.farm\. A 10\.10\.60\.110/);
	const offset = parseZone('$GENERATE 1-3/2 host${10,3,d} A 10.0.0.${5}\n@ IN SOA a b 1 1 1 1 1\n', 'farm');
	assert.deepEqual(
		offset.records.filter((record) => record.generated).map((record) => [record.owner, record.rdata[0]]),
		[
			['host011.farm.', '10.0.0.6'],
			['host013.farm.', '10.0.0.8'],
		],
	);
});

test('the same A record written by hand counts as done and undo leaves it', () => {
	const zone = `${seedZone}gallifrey-dev.xivo.vm\tIN\tA\t10.10.60.6\n`;
	assert.equal(inspectZone(zone, request).status, 'manual');
	assert.equal(addZoneRecord(zone, request, today).text, zone);
	assert.equal(removeZoneRecord(zone, request, today).text, zone);
});

test('only this farm’s marker is removed', () => {
	const other = addZoneRecord(
		seedZone,
		{...request, record: 'gallifrey-dev2.xivo.vm', ip: '10.10.60.7', farm: 'gallifrey-dev2'},
		today,
	);
	const both = addZoneRecord(other.text, request, today);
	const undone = removeZoneRecord(both.text, request, today);
	assert.match(undone.text, /gallifrey-dev2\.xivo\.vm\tIN\tA\t10\.10\.60\.7 ; farmclone:gallifrey-dev2/);
	assert.doesNotMatch(undone.text, /farmclone:gallifrey-dev$/m);
});

test('$INCLUDE is reported, not followed', () => {
	const zone = `${seedZone}$INCLUDE /etc/bind/db.farm.vms xivo.vm.farm.\n`;
	const state = inspectZone(zone, request);
	assert.equal(state.conflicts.length, 0);
	assert.ok(state.notes[0]!.startsWith(`line ${appendedLine}: $INCLUDE /etc/bind/db.farm.vms is not read`));
});

test('serials: dated serials move to today, counters count, the 32-bit limit holds', () => {
	assert.equal(bumpSerial('2011072501', today), '2024051700');
	assert.equal(bumpSerial('2024051700', today), '2024051701');
	assert.equal(bumpSerial('2024051799', today), '2024051800');
	assert.equal(bumpSerial('2030010100', today), '2030010101');
	assert.equal(bumpSerial('7', today), '8');
	assert.equal(bumpSerial('1000000001', today), '1000000002');
	assert.throws(() => bumpSerial('4294967295', today));
});

test('unreadable zones are refused with the line', () => {
	assert.throws(() => parseZone('@ IN SOA a b ( 1 1 1 1 1\n', 'farm'), ZoneParseError);
	assert.throws(() => parseZone('@ IN TXT "open\n', 'farm'), /line 1/);
	assert.deepEqual(inspectZone('$TTL 1\nns IN A 10.10.60.1\n', request).conflicts, [
		'no SOA record in this file: its serial cannot be bumped',
	]);
});

test('the real named-checkzone agrees with the parser on the owner names it loads', (t) => {
	const dir = withTemp(t);
	const zone = `${seedZone}$ORIGIN xivo.vm.farm.\nbuild\tIN\tA\t10.10.60.7\n\tIN\tTXT\t"blank owner"\n`;
	const file = path.join(dir, 'db.farm');
	fs.writeFileSync(file, zone);
	const dumped = execFileSync('named-checkzone', ['-i', 'local', '-D', '-o', '-', 'farm', file], {encoding: 'utf8'});
	const owners = new Set(
		dumped
			.split('\n')
			.filter((line) => /\sIN\s/.test(line))
			.map((line) => line.split(/\s+/)[0]!.toLowerCase()),
	);
	const parsed = new Set(parseZone(zone, 'farm').records.map((record) => record.owner.toLowerCase()));
	assert.deepEqual(parsed, owners);
});

test('zoneSecondaries: auto counts the NS records at the apex; yes and no are taken as said', () => {
	const one = [
		'$ORIGIN farm.',
		'@ 3600 IN SOA ns.farm. root.farm. 1 3600 600 86400 300',
		'@ IN NS ns.farm.',
		'sub IN NS other.',
		'',
	];
	const two = [...one.slice(0, 3), '  IN NS ns2.example.', ''].join('\n');
	assert.equal(
		zoneSecondaries({zone: 'farm', zoneSecondaries: 'auto'}, one.join('\n')).some,
		false,
		'a delegation is not a secondary',
	);
	assert.equal(zoneSecondaries({zone: 'farm', zoneSecondaries: 'auto'}, two).some, true);
	assert.match(zoneSecondaries({zone: 'farm', zoneSecondaries: 'auto'}, two).why, /2 name servers/);
	assert.equal(zoneSecondaries({zone: 'farm', zoneSecondaries: 'no'}, two).some, false);
	assert.equal(zoneSecondaries({zone: 'farm', zoneSecondaries: 'yes'}, one.join('\n')).some, true);
});
