import assert from 'node:assert/strict';
import {test} from 'node:test';
import {createRunStore} from '../source/ui/run-store.js';

const stages = [{id: 'snapshot', title: 'Snapshot', summary: 'snapshot', danger: 'none' as const, skippable: false}];

test("the engine's news reaches the screen at its repaint pace, all of it at once; keys at once", (t) => {
	t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 1_000_000});
	const store = createRunStore({farm: 'gallifrey-dev', stages, frameMs: 250});
	let shown = 0;
	store.subscribe(() => shown++);
	const log = (text: string) => store.onEvent({type: 'log', stage: 'snapshot', text});
	log('one');
	assert.equal(shown, 1, 'the first news is shown at once');
	log('two');
	log('three');
	assert.equal(shown, 1, 'news within the frame waits for it');
	assert.deepEqual(
		store.getState().log.map((entry) => ('text' in entry ? entry.text : entry.kind)),
		['one', 'two', 'three'],
		'the state has it all already',
	);
	t.mock.timers.tick(249);
	assert.equal(shown, 1);
	t.mock.timers.tick(1);
	assert.equal(shown, 2, 'one repaint for both');
	log('four');
	assert.equal(shown, 2);
	store.dispatch({type: 'ui:ask-quit'});
	assert.equal(shown, 3, 'a key is shown at once, with the news that waited');
	t.mock.timers.tick(1000);
	assert.equal(shown, 3, 'nothing is left to show');
});

test('without a frame every event is shown at once', () => {
	const store = createRunStore({farm: 'gallifrey-dev', stages});
	let shown = 0;
	store.subscribe(() => shown++);
	store.onEvent({type: 'log', stage: 'snapshot', text: 'one'});
	store.onEvent({type: 'log', stage: 'snapshot', text: 'two'});
	assert.equal(shown, 2);
});
