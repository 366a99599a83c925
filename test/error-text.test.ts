import assert from 'node:assert/strict';
import {test} from 'node:test';
import {errorText} from '../source/error-text.js';
import {StageError} from '../source/stages/types.js';

test('an error that reaches the top prints its message only: no stack, no class name', () => {
	assert.equal(errorText(new StageError('all/dev is open'), false), 'farmclone: all/dev is open\n');
	let bug: unknown;
	try {
		(undefined as unknown as {field: string}).field.trim();
	} catch (error) {
		bug = error;
	}

	const text = errorText(bug, false);
	assert.match(text, /^farmclone: internal error: Cannot read properties of undefined/);
	assert.match(text, /FARMCLONE_DEBUG=1 shows where\)\n$/);
	assert.doesNotMatch(text, /TypeError|\n {4}at /);
	assert.equal(errorText('just text', false), 'farmclone: just text\n');
});

test('FARMCLONE_DEBUG=1 adds the stack', () => {
	const text = errorText(new Error('broke'), true);
	assert.match(text, /^farmclone: broke\nError: broke\n {4}at /);
});
