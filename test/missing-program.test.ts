import assert from 'node:assert/strict';
import {test} from 'node:test';
import {Host, missingProgram} from '../source/host/host.js';

test('a missing program names itself and its Debian package', () => {
	assert.equal(
		missingProgram('/usr/sbin/named-checkzone'),
		'named-checkzone is not installed (not found on PATH): apt-get install bind9-utils',
	);
});

test('running a program that is not on PATH says it is missing, not that the command failed with ENOENT', async () => {
	const host = new Host({backupDir: '/nonexistent'} as ConstructorParameters<typeof Host>[0]);
	const result = await host.run(['farmclone-no-such-program', 'x'], {reject: false, quiet: true});
	assert.equal(result.exitCode, 127);
	assert.match(result.stderr, /^farmclone-no-such-program is not installed/);
	assert.doesNotMatch(result.stderr, /ENOENT/);
});
