import assert from 'node:assert/strict';
import {existsSync, readFileSync} from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';

const readme = readFileSync('README.md', 'utf8');

test('the README stands on its own in a clone: every relative link is a file inside the repository', () => {
	const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)]
		.map((match) => match[1]!)
		.filter((link) => !/^[a-z]+:/.test(link));
	assert.ok(links.includes('docs/xivo-farm-dedicated-to-development.md'), 'it links the manual procedure');
	for (const link of links) {
		const file = path.resolve(link.split('#')[0]!);
		assert.ok(file.startsWith(process.cwd() + path.sep), `${link} points outside the repository`);
		assert.ok(existsSync(file), `${link} does not exist`);
	}
});

test('the README names Node >= 20, how to get it on Debian 12, and how to put farmclone on PATH', () => {
	assert.match(readme, /Node >= 20/);
	assert.match(readme, /Debian 12 ships Node 18/);
	assert.match(readme, /npm link\s+# puts farmclone on PATH/);
});
