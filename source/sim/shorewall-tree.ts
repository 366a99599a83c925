import fs from 'node:fs/promises';
import path from 'node:path';
import {simNetwork} from './netns.js';
import {simPaths} from './paths.js';

/** Where Debian's shorewall package ships the default shorewall.conf. */
export const debianShorewallConf = '/usr/share/shorewall/configfiles/shorewall.conf';

/** The existing farm VM whose SSH port the host already forwards, as the seed's rules do. */
export const gallifreyForward = {param: 'VM_GALLIFREY_XIVO', ip: '10.10.60.5', port: 22_005} as const;

const header = (file: string, columns: string[]) =>
	[
		'#',
		`# Shorewall -- /etc/shorewall/${file}`,
		'#',
		"# farmclone's simulated farm host; see shorewall-" + file + '(5).',
		'#',
		'###############################################################################',
		...columns,
	].join('\n');

function files(): Record<string, string> {
	return {
		zones: `${header('zones', ['#ZONE\tTYPE\tOPTIONS\t\tIN\t\t\tOUT', '#\t\t\t\tOPTIONS\t\t\tOPTIONS'])}
fw\tfirewall
net\tipv4
loc\tipv4
`,
		interfaces: `${header('interfaces', ['?FORMAT 2', '#ZONE\tINTERFACE\tOPTIONS'])}
net\t${simNetwork.external}\t\ttcpflags,nosmurfs,routefilter,logmartians,sourceroute=0
loc\t${simNetwork.bridge}\t\tbridge,dhcp,tcpflags,nosmurfs,logmartians
`,
		policy: `${header('policy', ['#SOURCE\tDEST\t\tPOLICY\t\tLOGLEVEL\tRATE\tCONNLIMIT'])}
$FW\t\tall\t\tACCEPT
loc\t\tnet\t\tACCEPT
net\t\tall\t\tDROP\t\t$LOG_LEVEL
# THE FOLLOWING POLICY MUST BE LAST
all\t\tall\t\tREJECT\t\t$LOG_LEVEL
`,
		rules: `${header('rules', [
			'#ACTION\t\tSOURCE\t\tDEST\t\tPROTO\tDEST\tSOURCE\t\tORIGINAL\tRATE\t\tUSER/\tMARK\tCONNLIMIT\tTIME\t\tHEADERS\t\tSWITCH\t\tHELPER',
			'#\t\t\t\t\t\t\tPORT\tPORT(S)\t\tDEST\t\tLIMIT\t\tGROUP',
		])}
?SECTION ALL
?SECTION ESTABLISHED
?SECTION RELATED
?SECTION INVALID
?SECTION UNTRACKED
?SECTION NEW

Invalid(DROP)\tnet\t\tall\t\ttcp
SSH(ACCEPT)\tnet\t\t$FW
SSH(ACCEPT)\tloc\t\t$FW
DNS(ACCEPT)\tloc\t\t$FW
Ping(ACCEPT)\tloc\t\t$FW
HTTP(ACCEPT)\tnet\t\t$FW

DNAT           net             loc:$${gallifreyForward.param}:22 tcp     ${gallifreyForward.port}           -       $IP_FAILOVER
`,
		params: `${header('params', ['# Shell variables usable in the other files.'])}
IP_FAILOVER=${simNetwork.externalAddress}
${gallifreyForward.param}=${gallifreyForward.ip}
`,
	};
}

/** Debian's default shorewall.conf, with startup enabled and logs kept in the sim tree. */
async function shorewallConf(root: string): Promise<string> {
	let conf: string;
	try {
		conf = await fs.readFile(debianShorewallConf, 'utf8');
	} catch {
		throw new Error(`${debianShorewallConf} is missing: install Debian's shorewall package`);
	}

	const set = (text: string, name: string, value: string) => {
		const line = new RegExp(`^${name}=.*$`, 'm');
		return line.test(text) ? text.replace(line, `${name}=${value}`) : `${text}\n${name}=${value}\n`;
	};

	conf = set(conf, 'STARTUP_ENABLED', 'Yes');
	conf = set(conf, 'LOGFILE', path.join(root, 'var', 'log', 'shorewall', 'messages'));
	conf = set(conf, 'STARTUP_LOG', path.join(root, 'var', 'log', 'shorewall-init.log'));
	return conf;
}

/**
 * root/etc/shorewall: a two-interface host (net0 outside, the farm's bridge
 * farm0 inside) that already forwards port 22005 to gallifrey, like the
 * seed's. Its `vardir` keeps the compiled firewall and its state in the tree.
 */
export async function writeShorewallTree(root: string): Promise<string> {
	const paths = simPaths(root);
	const dir = path.join(paths.etc, 'shorewall');
	const vardir = path.join(paths.root, 'var', 'lib', 'shorewall');
	await fs.mkdir(dir, {recursive: true});
	await fs.mkdir(vardir, {recursive: true});
	await fs.mkdir(path.join(paths.root, 'var', 'log', 'shorewall'), {recursive: true});
	// shorewall refuses a LOGFILE that does not exist.
	await fs.appendFile(path.join(paths.root, 'var', 'log', 'shorewall', 'messages'), '');
	for (const [name, content] of Object.entries(files())) {
		await fs.writeFile(path.join(dir, name), content);
	}

	await fs.writeFile(path.join(dir, 'shorewall.conf'), await shorewallConf(paths.root));
	await fs.writeFile(path.join(dir, 'vardir'), `VARDIR=${vardir}\n`);
	return dir;
}
