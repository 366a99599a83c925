#!/usr/bin/env node
import meow from 'meow';
import {main} from './source/main.js';

const cli = meow(
	`
  Usage
    $ farmclone                          pick a farm and run or resume it
    $ farmclone run NAME                 clone step by step, asking before each stage
    $ farmclone plan NAME                print every stage's check and plan; changes nothing
    $ farmclone status NAME [--json]     print the journal of the farm's run
    $ farmclone undo NAME                reverse the completed stages, last first
    $ farmclone confirm NAME             from a NEW ssh connection: keep the restarted firewall
    $ farmclone demo                     build a simulated farm host and run against it
    $ farmclone farm list | show NAME | edit NAME | set NAME key=value...
    $ farmclone farm import FILE [NAME] | export NAME | rm NAME

  Options
    --yes              run without prompts (one line per event)
    --json             with --yes or status: JSON lines / JSON
    --confirm NAME     headless twin of the typed confirmation of dangerous stages
    --restart-firewall headless: restart Shorewall (with its rollback watchdog);
                       without it a headless run stops before the restart
    --dir DIR          demo: where to build the simulated host (default: a temp dir)
    --size SIZE        demo: size of the simulated source disk (default 256M)
    --no-run           demo: build the simulated host and stop
    --keep             demo: leave the simulated host's services running
    --stop             demo: stop the services of the simulated host in --dir

  Environment
    FARMCLONE_CONFIG_DIR   where farm settings live (default: conf's place)
    FARMCLONE_STATE_DIR    where run state lives (default /var/lib/farmclone as root)
    NO_COLOR               no colors

  Exit codes: 0 done, 1 a stage failed or the run stopped, 2 usage or bad input
`,
	{
		importMeta: import.meta,
		flags: {
			yes: {type: 'boolean', default: false},
			json: {type: 'boolean', default: false},
			confirm: {type: 'string'},
			restartFirewall: {type: 'boolean', default: false},
			dir: {type: 'string'},
			size: {type: 'string', default: '256M'},
			run: {type: 'boolean', default: true},
			keep: {type: 'boolean', default: false},
			stop: {type: 'boolean', default: false},
		},
		allowUnknownFlags: false,
	},
);

process.exitCode = await main(cli.input, cli.flags, () => cli.showHelp(0));
