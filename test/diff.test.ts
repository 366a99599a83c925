import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {unifiedDiff} from '../source/host/diff.js';
import {
	alignLike,
	insertLines,
	isMarkedLine,
	markLine,
	removeMarkedLines,
	splitSegments,
} from '../source/host/markers.js';

/** GNU diff -u's hunks, without its two header lines (they carry dates). */
function gnuHunks(dir: string, before: string, after: string): string {
	const [a, b] = [path.join(dir, 'a'), path.join(dir, 'b')];
	fs.writeFileSync(a, before);
	fs.writeFileSync(b, after);
	const result = spawnSync('diff', ['-u', a, b], {encoding: 'utf8'});
	return result.stdout.split('\n').slice(2).join('\n');
}

function ourHunks(before: string, after: string): string {
	return unifiedDiff(before, after, '/x').split('\n').slice(2).join('\n');
}

/** Deterministic pseudo-random numbers, so a failure can be replayed. */
function random(seed: number): () => number {
	let state = seed;
	return () => {
		state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
		return state / 2_147_483_648;
	};
}

test('hunks are the same as GNU diff -u on random edits of a file', (t) => {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-diff-'));
	t.after(() => fs.rmSync(dir, {recursive: true, force: true}));
	const next = random(7);
	for (let round = 0; round < 60; round++) {
		const lines = Array.from({length: 5 + Math.floor(next() * 40)}, (_, index) => `line ${index % 7} ${index}`);
		const edited = [...lines];
		for (let edit = 0; edit < 1 + Math.floor(next() * 4); edit++) {
			const at = Math.floor(next() * (edited.length + 1));
			const kind = next();
			if (kind < 0.4) edited.splice(at, 0, `added ${round}.${edit}`);
			else if (kind < 0.7) edited.splice(at, 1);
			else edited.splice(at, 1, `changed ${round}.${edit}`);
		}

		const noFinalNewline = next() < 0.2;
		const before = lines.join('\n') + '\n';
		const after = edited.join('\n') + (noFinalNewline ? '' : '\n');
		assert.equal(ourHunks(before, after), gnuHunks(dir, before, after), `round ${round}`);
	}
});

test('headers name the path as a/ and b/, /dev/null for a file that is created or removed', () => {
	const diff = unifiedDiff('one\n', 'one\ntwo\n', '/etc/bind/db.farm');
	assert.deepEqual(diff.split('\n').slice(0, 3), ['--- a/etc/bind/db.farm', '+++ b/etc/bind/db.farm', '@@ -1 +1,2 @@']);
	const created = unifiedDiff(undefined, 'server {\n}\n', '/etc/nginx/sites-available/x');
	assert.equal(created, '--- /dev/null\n+++ b/etc/nginx/sites-available/x\n@@ -0,0 +1,2 @@\n+server {\n+}\n');
	const removed = unifiedDiff('a\n', undefined, '/x');
	assert.equal(removed, '--- a/x\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n');
	assert.equal(unifiedDiff('same\n', 'same\n', '/x'), '');
});

test('CRLF lines compare with their CR but print without it', () => {
	const diff = unifiedDiff('a\r\nb\r\n', 'a\r\nb\r\nc\r\n', '/x');
	assert.doesNotMatch(diff, /\r/);
	assert.match(diff, /^\+c$/m);
	assert.match(unifiedDiff('a\n', 'a\r\n', '/x'), /^-a\n\+a$/m);
});

test('markers: insert and remove are inverses, whatever the line endings and final newline', () => {
	const texts = ['a\nb\n', 'a\r\nb\r\n', 'a\nb', '', 'only'];
	for (const text of texts) {
		for (let index = 0; index <= splitSegments(text).length; index++) {
			const marked = [markLine('x = 1;', 'dev'), markLine('y', 'dev')];
			const added = insertLines(text, index, marked);
			assert.notEqual(added, text);
			assert.equal(removeMarkedLines(added, 'dev').text, text, JSON.stringify([text, index]));
			if (text.includes('\r\n')) assert.doesNotMatch(added.replaceAll('\r\n', ''), /\n/);
		}
	}
});

test('markers match the farm exactly and only as a trailing comment', () => {
	assert.ok(isMarkedLine('x ; farmclone:dev', 'dev', ';'));
	assert.ok(isMarkedLine('# farmclone:dev\r\n', 'dev'));
	assert.ok(!isMarkedLine('x # farmclone:dev2', 'dev'));
	assert.ok(!isMarkedLine('x # farmclone:dev more', 'dev'));
	assert.ok(!isMarkedLine('x#farmclone:devx', 'dev'));
	assert.ok(!isMarkedLine('x ; farmclone:dev', 'dev', '#'));
	assert.throws(() => markLine('x', 'bad name'));
});

test('alignLike follows the sample’s tabs or spaces', () => {
	assert.equal(
		alignLike('host\tIN\tA\t10.0.0.1', ['longer-name', 'IN', 'A', '10.0.0.2']),
		'longer-name\tIN\tA\t10.0.0.2',
	);
	assert.equal(alignLike('a\t\tb', ['x', 'y']), 'x\t\ty');
	assert.equal(alignLike('a    b  c', ['xy', 'z', 'w']), 'xy   z  w');
	assert.equal(alignLike('a    b', ['toolongname', 'z']), 'toolongname z');
	assert.equal(alignLike(undefined, ['x', 'y']), 'x\ty');
});
