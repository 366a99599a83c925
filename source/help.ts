/**
 * Usage texts, kept apart from the commands so that `--help` prints without
 * loading Ink, React or any stage: help must be instant over a slow link.
 */

const common = `  Environment
    FARMCLONE_CONFIG_DIR   where farm settings live (default: conf's place)
    FARMCLONE_STATE_DIR    run state (default /var/lib/farmclone as root)
    NO_COLOR               no colors

  Exit codes: 0 done, 1 a stage failed or the run stopped, 2 usage or bad input`;

export const commandUsage: Record<string, string> = {
	run: `  Usage
    $ farmclone run NAME [--yes [--json] [--confirm NAME] [--restart-firewall]]

  Clones the farm NAME step by step, showing each stage's plan and asking
  before it runs; an unfinished run is resumed where it stopped.

  Options
    --yes              run without prompts (one line per event)
    --json             with --yes: JSON lines
    --confirm NAME     headless: the typed confirmation of dangerous stages
    --restart-firewall headless: restart Shorewall (with its rollback watchdog);
                       without it a headless run stops before the restart`,
	plan: `  Usage
    $ farmclone plan NAME

  Prints every stage's check and plan for the farm NAME; changes nothing.`,
	status: `  Usage
    $ farmclone status NAME [--json]

  Tells how the farm's run stands and, once it is done, what it made.
  --json prints the journal and the lock instead.`,
	undo: `  Usage
    $ farmclone undo NAME [--yes [--json] [--confirm NAME]]

  Reverses the completed stages of the farm NAME, last first, asking before
  each; --yes runs without prompts.`,
	confirm: `  Usage
    $ farmclone confirm NAME

  Run from a NEW ssh connection to this host while a firewall restart of the
  farm NAME waits: it keeps the new firewall only when this connection started
  after the restart, the proof that new SSH connections still get in.`,
	demo: `  Usage
    $ farmclone demo [--dir DIR] [--size SIZE] [--no-run] [--keep]
                     [--yes [--json]]
    $ farmclone demo --stop --dir DIR

  Builds a simulated farm host (network namespaces, dhcpd, named, nginx) and
  runs farmclone against it.

  Options
    --dir DIR          where to build the simulated host (default: a temp dir)
    --size SIZE        size of the simulated source disk (default 1G, the
                       smallest disk Ganeti's default policy accepts)
    --no-run           build the simulated host and stop
    --keep             leave the simulated host's services running
    --stop             stop the services of the simulated host in --dir`,
	farm: `  Usage
    $ farmclone farm list
    $ farmclone farm new NAME --from INSTANCE [--like FARM] [--yes] [--json]
    $ farmclone farm show NAME
    $ farmclone farm edit NAME
    $ farmclone farm set NAME key=value...
    $ farmclone farm import FILE [NAME]
    $ farmclone farm export NAME
    $ farmclone farm rm NAME

  Manages the saved farm settings.

  farm new reads the cluster and the host, changing nothing: the disk (VG and
  LV) and node of the Ganeti instance INSTANCE, the first address after it
  that the zone, dhcpd.conf, the cluster and the other farms leave free
  (inside a DHCP subnet, outside its ranges), its SSH port 22000 + last octet
  where no Shorewall rule forwards it, the nginx server name. It prints each
  value with where it came from and saves them after a prompt.

  Options
    --from INSTANCE    the Ganeti instance to clone (full name or first labels)
    --like FARM        share FARM's host settings (file paths, commands, zone);
                       default: a saved farm of the same instance, else the
                       first saved farm, else the seed's defaults
    --yes              save without the prompt (needed without a terminal)
    --json             print the settings and where they came from as JSON;
                       saves only with --yes`,
	help: `  Usage
    $ farmclone help [COMMAND]

  Prints the usage of COMMAND, or of farmclone.`,
};

export const mainUsage = `  Usage
    $ farmclone                          pick a farm and run or resume it
    $ farmclone run NAME                 clone, asking before each stage
    $ farmclone plan NAME                each stage's check and plan (read-only)
    $ farmclone status NAME [--json]     how the run stands, what it made
    $ farmclone undo NAME                reverse the done stages, last first
    $ farmclone confirm NAME             keep the restarted firewall (from a
                                         NEW ssh connection)
    $ farmclone demo                     a simulated farm host, and a run on it
    $ farmclone farm new NAME --from INSTANCE
                                         a new farm read off the host
    $ farmclone farm list | show NAME | edit NAME | set NAME key=value...
    $ farmclone farm import FILE [NAME] | export NAME | rm NAME
    $ farmclone help COMMAND             one command's usage (or COMMAND -h)

  Options
    --yes              run without prompts (one line per event)
    --json             with --yes or status: JSON lines / JSON
    --confirm NAME     headless: the typed confirmation of dangerous stages
    --restart-firewall headless: restart Shorewall (with its rollback watchdog);
                       without it a headless run stops before the restart
    --dir DIR          demo: where to build the simulated host (default: temp)
    --size SIZE        demo: size of the simulated source disk (default 1G,
                       the smallest Ganeti's default policy accepts)
    --no-run           demo: build the simulated host and stop
    --keep             demo: leave the simulated host's services running
    --stop             demo: stop the services of the simulated host in --dir
    --from INSTANCE    farm new: the Ganeti instance to clone
    --like FARM        farm new: share FARM's file paths and commands`;

/** The usage of one command (or of farmclone when `command` is none), or undefined for an unknown one. */
export function usage(command?: string): string | undefined {
	if (command === undefined)
		return `\n  Clone a build-farm VM into a development VM and wire it into the host\n\n${mainUsage}\n\n${common}\n`;
	const text = commandUsage[command];
	return text === undefined ? undefined : `\n${text}\n\n${common}\n`;
}
