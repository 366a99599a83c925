import assert from 'node:assert/strict';
import {test} from 'node:test';
import {nodeUnreachable} from '../source/host/ganeti.js';

test("Ganeti's words for a node it could not reach, as a loaded real host printed them, and nothing else", () => {
	// gnt-instance modify --runtime-memory on the real farm host in the QEMU guest (issue 10).
	const real =
		'Failure: prerequisites not met for this operation:\nError checking node host01.farm: Error 28: SSL connection timeout\n';
	assert.equal(nodeUnreachable(real), 'Error checking node host01.farm: Error 28: SSL connection timeout');
	for (const other of [
		"Failure: prerequisites not met for this operation:\nerror type: already_exists, error details:\nInstance 'x' is already in the cluster",
		'Failure: prerequisites not met for this operation:\nerror type: resolver_error, error details:\nThe given name (x) does not resolve: Name or service not known',
		"Failure: command execution error:\nCould not start instance 'x': Hypervisor error",
	]) {
		assert.equal(nodeUnreachable(other), undefined, other);
	}
});
