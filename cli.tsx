#!/usr/bin/env node
import meow from 'meow';
import {errorText} from './source/error-text.js';
import {usage} from './source/help.js';

// Whatever escapes main (a failure inside the screen, a stray promise): a clean message and exit 1, no stack.
const die = (error: unknown) => {
	process.stderr.write(errorText(error));
	process.exit(1);
};

process.on('uncaughtException', die);
process.on('unhandledRejection', die);

// meow only parses here: the help is ours, per command, and printed before anything heavy is loaded.
const cli = meow({
	importMeta: import.meta,
	autoHelp: false,
	flags: {
		help: {type: 'boolean', shortFlag: 'h', default: false},
		yes: {type: 'boolean', default: false},
		json: {type: 'boolean', default: false},
		confirm: {type: 'string'},
		restartFirewall: {type: 'boolean', default: false},
		dir: {type: 'string'},
		size: {type: 'string', default: '1G'},
		run: {type: 'boolean', default: true},
		keep: {type: 'boolean', default: false},
		stop: {type: 'boolean', default: false},
		from: {type: 'string'},
		like: {type: 'string'},
	},
	allowUnknownFlags: false,
});

const [command, ...rest] = cli.input;
const helpFor = command === 'help' ? rest[0] : cli.flags.help ? command : false;
if (helpFor !== false) {
	const text = usage(helpFor);
	if (text === undefined) {
		process.stderr.write(`farmclone: unknown command ${helpFor}; see farmclone --help\n`);
		process.exitCode = 2;
	} else {
		process.stdout.write(text);
	}
} else {
	// Loaded only now: Ink, React and the stages take most of a second to import.
	const {main} = await import('./source/main.js');
	process.exitCode = await main(cli.input, cli.flags);
}
