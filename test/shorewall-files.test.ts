import {test} from 'node:test';
import assert from 'node:assert/strict';
import {splitLines} from '../source/host/markers.js';
import {
	addShorewallEntries,
	inspectShorewall,
	parseParams,
	parseRules,
	portListHas,
	removeShorewallEntries,
	ShorewallConflictError,
} from '../source/host/shorewall-files.js';

const request = {
	param: 'VM_GALLIFREY_DEV_XIVO',
	ip: '10.10.60.6',
	sourceZone: 'net',
	destZone: 'loc',
	sshPort: 22006,
	originalDest: '$IP_FAILOVER',
	farm: 'gallifrey-dev',
};

const params = `#
# Shorewall version 4 - Params File
#
IP_FAILOVER=192.0.2.10
VM_GALLIFREY_XIVO=10.10.60.5
export LOG=info
`;

/** Shorewall 5 style: sections, a ?COMMENT still in force at the end of the NEW section, tab-aligned columns. */
const sectionedRules = `#
# Shorewall - Rules File
#
######################################################################################################################################################################################################
#ACTION		SOURCE		DEST		PROTO	DEST	SOURCE		ORIGINAL	RATE		USER/	MARK	CONNLIMIT	TIME		HEADERS		SWITCH		HELPER
#							PORT	PORT(S)		DEST		LIMIT		GROUP
?SECTION ALL
?SECTION ESTABLISHED
?SECTION RELATED
?SECTION INVALID
?SECTION UNTRACKED
?SECTION NEW
Invalid(DROP)	net		all		tcp
ACCEPT		net		$FW		tcp	22
?COMMENT gallifrey
DNAT		net		loc:$VM_GALLIFREY_XIVO:22	tcp	22005	-	$IP_FAILOVER
DNAT		net		loc:$VM_GALLIFREY_XIVO:80	tcp	8005	-	$IP_FAILOVER
`;

/** Shorewall 4 style: no sections, space-aligned, the old trailer line. */
const oldRules = `#ACTION         SOURCE          DEST            PROTO   DEST    SOURCE          ORIGINAL
#                                                       PORT    PORT(S)         DEST
ACCEPT          net             $FW             tcp     22
DNAT            net             loc:10.10.60.5:22 tcp   22005   -               $IP_FAILOVER
#LAST LINE -- ADD YOUR ENTRIES BEFORE THIS ONE -- DO NOT REMOVE
`;

test('sectioned rules: the rule goes in ?SECTION NEW, before the ?COMMENT still in force, aligned with tabs', () => {
	const edit = addShorewallEntries(params, sectionedRules, request);
	const lines = splitLines(edit.rules);
	const added = lines.findIndex((line) => line.includes('farmclone:gallifrey-dev'));
	assert.equal(lines[added + 1], '?COMMENT gallifrey');
	assert.equal(
		lines[added],
		'DNAT\t\tnet\t\tloc:$VM_GALLIFREY_DEV_XIVO:22\ttcp\t22006\t-\t$IP_FAILOVER # farmclone:gallifrey-dev',
	);
	const after = parseRules(edit.rules).rules;
	const rule = after.find((candidate) => candidate.columns[4] === '22006')!;
	assert.equal(rule.section, 'NEW');
	assert.equal(rule.comment, '');
	const others = after.filter((candidate) => candidate !== rule);
	assert.deepEqual(
		others.map((other) => [other.columns, other.comment]),
		parseRules(sectionedRules).rules.map((other) => [other.columns, other.comment]),
	);
	assert.ok(edit.params.endsWith('export LOG=info\nVM_GALLIFREY_DEV_XIVO=10.10.60.6 # farmclone:gallifrey-dev\n'));
});

test('a ?COMMENT closed in the section: the rule goes after the last rule, uncommented', () => {
	const rules = `${sectionedRules}?COMMENT\n`;
	const lines = splitLines(addShorewallEntries(params, rules, request).rules);
	assert.equal(lines.at(-2), '?COMMENT');
	assert.match(lines.at(-1)!, /^DNAT.*22006.*# farmclone:gallifrey-dev$/);
});

test('a ?COMMENT in force over the whole section: the rule takes it, and the plan says so', () => {
	const rules = '?COMMENT vms\n?SECTION NEW\nDNAT net loc:10.10.60.5:22 tcp 22005 - $IP_FAILOVER\n';
	const edit = addShorewallEntries(params, rules, request);
	assert.match(splitLines(edit.rules).at(-1)!, /^DNAT.*22006/);
	assert.deepEqual(edit.notes, ['the rule takes the ?COMMENT "vms" that is in force all over the section']);
});

test('old rules: before #LAST LINE, aligned with spaces', () => {
	const edit = addShorewallEntries(`${params}#LAST LINE -- DO NOT REMOVE\n`, oldRules, request);
	const lines = splitLines(edit.rules);
	// Fields start where the sample's do, but for those pushed right by the longer DEST.
	assert.match(
		lines[4]!,
		/^DNAT {12}net {13}loc:\$VM_GALLIFREY_DEV_XIVO:22 tcp 22006 - +\$IP_FAILOVER # farmclone:gallifrey-dev$/,
	);
	assert.equal(lines[4]!.indexOf('$IP_FAILOVER'), lines[3]!.indexOf('$IP_FAILOVER'));
	assert.match(lines[5]!, /^#LAST LINE/);
	assert.match(splitLines(edit.params).at(-2)!, /^VM_GALLIFREY_DEV_XIVO=10\.10\.60\.6 # farmclone/);
	assert.match(splitLines(edit.params).at(-1)!, /^#LAST LINE/);
});

test('sections without NEW: a marked ?SECTION NEW is added with the rule, and undo removes both', () => {
	const rules = '?SECTION ALL\n?SECTION ESTABLISHED\nACCEPT all all\n';
	const edit = addShorewallEntries(params, rules, request);
	assert.deepEqual(splitLines(edit.rules).slice(3), [
		'?SECTION NEW # farmclone:gallifrey-dev',
		// Under `ACCEPT all all`: DNAT padded to where `all` starts, then single spaces.
		'DNAT   net loc:$VM_GALLIFREY_DEV_XIVO:22 tcp 22006 - $IP_FAILOVER # farmclone:gallifrey-dev',
	]);
	assert.equal(removeShorewallEntries(edit.params, edit.rules, request.farm).rules, rules);
});

test('never inside ?IF blocks, embedded scripts or continuation lines', () => {
	const rules = [
		'?SECTION NEW',
		'ACCEPT net $FW tcp 22',
		'?IF $VERSION >= 50200',
		'ACCEPT net $FW tcp 443',
		'?ENDIF',
		'?BEGIN PERL',
		'1;',
		'?END PERL',
		'ACCEPT net $FW \\',
		'       tcp 80',
		'?IF 0',
		'ACCEPT net $FW tcp 8080',
		'?ENDIF',
		'',
	].join('\n');
	const parsed = parseRules(rules);
	assert.deepEqual(
		parsed.rules.map((rule) => [rule.line, rule.lastLine, rule.columns.join(' ')]),
		[
			[1, 1, 'ACCEPT net $FW tcp 22'],
			[3, 3, 'ACCEPT net $FW tcp 443'],
			[8, 9, 'ACCEPT net $FW tcp 80'],
			[11, 11, 'ACCEPT net $FW tcp 8080'],
		],
	);
	const lines = splitLines(addShorewallEntries(params, rules, request).rules);
	const added = lines.findIndex((line) => line.includes('# farmclone:'));
	assert.equal(added, 13);
});

test('CRLF files: line endings kept, undo returns the exact bytes, applying twice adds nothing', () => {
	const [crlfParams, crlfRules] = [params.replaceAll('\n', '\r\n'), sectionedRules.replaceAll('\n', '\r\n')];
	const edit = addShorewallEntries(crlfParams, crlfRules, request);
	for (const text of [edit.params, edit.rules]) assert.doesNotMatch(text.replaceAll('\r\n', ''), /\n/);
	const again = addShorewallEntries(edit.params, edit.rules, request);
	assert.deepEqual([again.params, again.rules, again.added], [edit.params, edit.rules, []]);
	const state = inspectShorewall(edit.params, edit.rules, request);
	assert.deepEqual([state.param, state.rule, state.conflicts], ['ours', 'ours', []]);
	const undone = removeShorewallEntries(edit.params, edit.rules, request.farm);
	assert.deepEqual([undone.params, undone.rules], [crlfParams, crlfRules]);
});

test('the external port already forwarded is a conflict: single port, list, range, variants of DNAT and REDIRECT', () => {
	const forwarded = [
		'DNAT net loc:10.10.60.9:22 tcp 22006 - $IP_FAILOVER',
		'DNAT net loc:10.10.60.9:22 tcp 80,22006 - 192.0.2.10',
		'DNAT:info net loc:10.10.60.9 tcp 22000:22010 - $IP_FAILOVER',
		'DNAT- net loc:10.10.60.9 tcp,udp 22006 -',
		'REDIRECT net 2222 tcp 22006 - $IP_FAILOVER',
		'SSH(DNAT) net loc:10.10.60.9 tcp 22006 - $IP_FAILOVER',
		'DNAT net loc:10.10.60.9 - - - $IP_FAILOVER',
	];
	for (const rule of forwarded) {
		const rules = `?SECTION NEW\n${rule}\n`;
		const state = inspectShorewall(params, rules, request);
		assert.equal(state.conflicts.length, 1, rule);
		assert.match(state.conflicts[0]!, /rules line 2: port 22006 is already forwarded/);
		assert.throws(() => addShorewallEntries(params, rules, request), ShorewallConflictError);
	}

	const elsewhere = [
		'DNAT net loc:10.10.60.9:22 tcp 22007 - $IP_FAILOVER',
		'DNAT net loc:10.10.60.9:22 udp 22006 - $IP_FAILOVER',
		'DNAT net loc:10.10.60.9:22 tcp 22006 - 198.51.100.7',
		'ACCEPT net $FW tcp 22006',
	];
	for (const rule of elsewhere) assert.deepEqual(inspectShorewall(params, `${rule}\n`, request).conflicts, [], rule);
});

test('params: the name taken by another value is a conflict; the IP under another name is a note', () => {
	const taken = inspectShorewall(`${params}VM_GALLIFREY_DEV_XIVO=10.10.60.66\n`, oldRules, request);
	assert.deepEqual(taken.conflicts, ['params line 7: VM_GALLIFREY_DEV_XIVO is already set to 10.10.60.66']);
	const shared = inspectShorewall(`${params}DEV="10.10.60.6"\n`, oldRules, request);
	assert.deepEqual(shared.conflicts, []);
	assert.deepEqual(shared.notes, ['params line 7: DEV also holds 10.10.60.6']);
	const invalid = inspectShorewall(params, oldRules, {...request, param: 'VM-GALLIFREY'});
	assert.match(invalid.conflicts[0]!, /not a valid shell variable name/);
	const undefinedDest = inspectShorewall('', oldRules, request);
	assert.deepEqual(undefinedDest.notes, ['ORIGINAL DEST uses $IP_FAILOVER, which params does not set']);
	assert.deepEqual(
		parseParams(`${params}QUOTED='a b' # c\n`).map((param) => [param.name, param.value]),
		[
			['IP_FAILOVER', '192.0.2.10'],
			['VM_GALLIFREY_XIVO', '10.10.60.5'],
			['LOG', 'info'],
			['QUOTED', 'a b'],
		],
	);
});

test('the seed’s lines written by hand count as done and undo leaves them', () => {
	const handParams = `${params}VM_GALLIFREY_DEV_XIVO=10.10.60.6\n`;
	const handRules = `${oldRules}DNAT           net             loc:$VM_GALLIFREY_DEV_XIVO:22 tcp     22006           -       $IP_FAILOVER\n`;
	const state = inspectShorewall(handParams, handRules, request);
	assert.deepEqual([state.param, state.rule, state.conflicts], ['manual', 'manual', []]);
	const edit = addShorewallEntries(handParams, handRules, request);
	assert.deepEqual(edit.added, []);
	const undone = removeShorewallEntries(handParams, handRules, request.farm);
	assert.deepEqual([undone.params, undone.rules], [handParams, handRules]);
});

test('INCLUDE in rules is reported, not followed', () => {
	const state = inspectShorewall(params, `?SECTION NEW\nINCLUDE rules.vms\n`, request);
	assert.deepEqual(state.conflicts, []);
	assert.deepEqual(state.notes, [
		'rules line 2: INCLUDE rules.vms is not read by farmclone; its rules are not checked',
	]);
});

test('port lists', () => {
	assert.ok(portListHas('22006', 22006));
	assert.ok(portListHas('80,443,22006', 22006));
	assert.ok(portListHas('22000:22010', 22006));
	assert.ok(!portListHas('22007:22010', 22006));
	assert.ok(portListHas('!22', 22006));
	assert.ok(!portListHas('!22006', 22006));
});
