import path from 'node:path';
import {parseBraceConfig, walkStatements} from './brace-config.js';
import type {ReadOnlyHost, RunResult} from './host.js';
import {isMarkedLine, markerComment, splitLines} from './markers.js';

/** nginx sites: the reverse proxy farmclone writes, and what other sites already serve. */

export type NginxSiteRequest = {
	serverName: string;
	listen: string;
	/** Where requests go: the clone's FQDN. */
	upstream: string;
	logDir: string;
	farm: string;
};

/** Where the site answers for itself: a dot file name no application serves, and not IANA's /.well-known/. */
export function probePath(farm: string): string {
	return `/.farmclone-${farm}`;
}

/**
 * What the loaded site answers at probePath: the farm's name and where the
 * site proxies to, so that a site rewritten for another upstream whose reload
 * did not take answers with the old one. (No digest of the file: it holds the
 * log directory's path, and farm trees are compared modulo their root.)
 */
export function siteAnswer(request: NginxSiteRequest): string {
	return `farmclone ${request.farm} proxies ${request.serverName} to http://${request.upstream}`;
}

/**
 * The seed's server block plus the headers a proxied application needs to
 * see the real client and scheme, and the location farmclone asks to know
 * what nginx loaded, on one line so that the site's plan fits a gate at
 * 80x24. The marker line on top says the whole file is farmclone's.
 */
export function nginxSiteText(request: NginxSiteRequest): string {
	return [
		markerComment(request.farm),
		`# Reverse proxy to the development VM ${request.upstream}, written by farmclone; its undo removes this file.`,
		'server {',
		`\tlisten ${request.listen};`,
		`\tserver_name ${request.serverName};`,
		`\taccess_log ${path.join(request.logDir, `${request.serverName}.access.log`)};`,
		'',
		'\tlocation / {',
		`\t\tproxy_pass http://${request.upstream};`,
		'\t\tproxy_set_header Host $host;',
		'\t\tproxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
		'\t\tproxy_set_header X-Forwarded-Proto $scheme;',
		'\t\tproxy_set_header X-Real-IP $remote_addr;',
		'\t}',
		'',
		'\t# farmclone asks for this after each reload to prove nginx loaded this file. It answers by itself:',
		'\t# the VM behind the proxy may be down, and a proxied request would wait for it.',
		`\tlocation = ${probePath(request.farm)} { access_log off; default_type text/plain; return 200 "${siteAnswer(request)}\\n"; }`,
		'}',
		'',
	].join('\n');
}

export function isOurSite(text: string, farm: string): boolean {
	const [first] = splitLines(text);
	return first !== undefined && isMarkedLine(first, farm);
}

export type NginxServer = {names: string[]; listens: string[]; line: number};

/** Server blocks anywhere in the file (a site file, or nginx.conf's http block). */
export function parseServers(text: string): NginxServer[] {
	const servers: NginxServer[] = [];
	for (const {statement} of walkStatements(parseBraceConfig(text))) {
		if (statement.words[0]?.text !== 'server' || !statement.children) continue;
		const server: NginxServer = {names: [], listens: [], line: statement.words[0].line};
		for (const child of statement.children) {
			const [directive, ...args] = child.words.map((word) => word.text);
			if (directive === 'server_name') server.names.push(...args.map((name) => name.toLowerCase()));
			if (directive === 'listen' && args[0]) server.listens.push(args[0]);
		}

		// nginx listens on *:80 when a server block says nothing (as root).
		if (server.listens.length === 0) server.listens.push('80');
		servers.push(server);
	}

	return servers;
}

/** `80`, `*:80`, `127.0.0.1:8080`, `[::]:80`, `127.0.0.1` -> address and port. */
export function listenAddress(listen: string): {address: string; port: string} {
	const first = listen.trim().split(/\s+/)[0] ?? '';
	if (first.startsWith('unix:')) return {address: first, port: ''};
	const ipv6 = /^(\[[^\]]*\])(?::(\d+))?$/.exec(first);
	if (ipv6) return {address: ipv6[1]!, port: ipv6[2] ?? '80'};
	if (/^\d+$/.test(first)) return {address: '*', port: first};
	const colon = first.lastIndexOf(':');
	if (colon < 0) return {address: first, port: '80'};
	const address = first.slice(0, colon);
	return {address: address === '0.0.0.0' ? '*' : address, port: first.slice(colon + 1)};
}

export type SiteProbe = {
	argv: string[];
	/** The URL asked, with the Host header, for messages. */
	target: string;
};

/**
 * The curl command asking the site's own location, on the address the site
 * listens on: loopback for a wildcard, the Unix socket for `unix:`, https
 * without certificate checks for `ssl` (this asks which configuration is
 * loaded, not whether the certificate is good). `-q` first: no ~/.curlrc.
 */
export function siteProbe(request: Pick<NginxSiteRequest, 'serverName' | 'listen' | 'farm'>): SiteProbe {
	const {address, port} = listenAddress(request.listen);
	const secure = request.listen.trim().split(/\s+/).slice(1).includes('ssl');
	const scheme = secure ? 'https' : 'http';
	const socket = address.startsWith('unix:') ? address.slice('unix:'.length) : undefined;
	const host = socket ? 'localhost' : address === '*' ? '127.0.0.1' : address === '[::]' ? '[::1]' : address;
	const portPart = socket || port === (secure ? '443' : '80') ? '' : `:${port}`;
	const url = `${scheme}://${host}${portPart}${probePath(request.farm)}`;
	const argv = [
		'curl',
		'-q',
		'--noproxy',
		'*',
		'--silent',
		'--show-error',
		'--globoff',
		'--max-time',
		'3',
		...(socket ? ['--unix-socket', socket] : []),
		...(secure ? ['--insecure'] : []),
		'--header',
		`Host: ${request.serverName}`,
		// The status on a line of its own after the body.
		'--write-out',
		'\\n%{http_code}',
		url,
	];
	return {argv, target: `${url}${socket ? ` through ${socket}` : ''} (Host: ${request.serverName})`};
}

export type ProbeAnswer = {status: number; firstLine: string} | {error: string};

export function parseProbeOutput(result: RunResult): ProbeAnswer {
	if (result.exitCode !== 0) {
		const said = result.stderr.trim().split('\n')[0] ?? '';
		if (result.exitCode === 127) return {error: `curl could not be run (${said || 'not found on PATH'})`};
		return {error: said || `curl exited ${result.exitCode}`};
	}

	const split = result.stdout.lastIndexOf('\n');
	const body = result.stdout.slice(0, Math.max(split, 0));
	return {status: Number(result.stdout.slice(split + 1).trim()), firstLine: body.split('\n')[0]!.trimEnd()};
}

export function describeAnswer(answer: ProbeAnswer): string {
	if ('error' in answer) return `nothing (${answer.error})`;
	return `HTTP ${answer.status} ${answer.firstLine ? `"${answer.firstLine}"` : 'with an empty first line'}`;
}

/** Whether nginx answered with this very version of the site. */
export function answersWith(answer: ProbeAnswer, request: NginxSiteRequest): boolean {
	return 'status' in answer && answer.status === 200 && answer.firstLine === siteAnswer(request);
}

/** Whether nginx answered with some version of this farm's site. */
export function answersForFarm(answer: ProbeAnswer, farm: string): boolean {
	const line = 'status' in answer && answer.status === 200 ? answer.firstLine : '';
	return line === `farmclone ${farm}` || line.startsWith(`farmclone ${farm} `);
}

/** One request to the site's own location; curl's own time limit bounds it. */
export async function askSite(host: ReadOnlyHost, probe: SiteProbe): Promise<ProbeAnswer> {
	return parseProbeOutput(await host.run(probe.argv, {reject: false, timeoutMs: 10_000}));
}

/**
 * Asks until `wanted` has held for `settleMs`, or `timeoutMs` is over.
 * nginx reloads after the command returns: the master rereads its files on
 * the signal, starts new workers, and only 100 ms later tells the old ones
 * to stop accepting. Until then a request goes to either, so one answer from
 * the new configuration proves nothing yet: the answers must stay wanted.
 * Returns the last answer.
 */
export async function waitForSite(
	host: ReadOnlyHost,
	probe: SiteProbe,
	wanted: (answer: ProbeAnswer) => boolean,
	options: {timeoutMs?: number; settleMs?: number; intervalMs?: number; signal?: AbortSignal} = {},
): Promise<{ok: boolean; answer: ProbeAnswer}> {
	const deadline = Date.now() + (options.timeoutMs ?? 5000);
	let wantedSince: number | undefined;
	for (;;) {
		const answer = await askSite(host, probe);
		if (wanted(answer)) {
			wantedSince ??= Date.now();
			if (Date.now() - wantedSince >= (options.settleMs ?? 600)) return {ok: true, answer};
		} else {
			wantedSince = undefined;
			if (Date.now() >= deadline || options.signal?.aborted) return {ok: false, answer};
		}

		await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 150));
	}
}

/** Whether two listen directives can receive the same IPv4 (or the same IPv6) connection. */
export function listensOverlap(a: string, b: string): boolean {
	const [left, right] = [listenAddress(a), listenAddress(b)];
	if (left.port !== right.port) return false;
	if (left.address === right.address) return true;
	const wildcard = (one: string, other: string) => one === '*' && !other.startsWith('[') && !other.startsWith('unix:');
	return wildcard(left.address, right.address) || wildcard(right.address, left.address);
}

/** Servers of `text` that would answer the same requests as ours. */
export function clashingServers(text: string, serverName: string, listen: string): NginxServer[] {
	return parseServers(text).filter(
		(server) =>
			server.names.includes(serverName.toLowerCase()) && server.listens.some((other) => listensOverlap(other, listen)),
	);
}

/** `include` patterns of an nginx configuration, absolute (relative ones are from the configuration's directory). */
export function includePatterns(confText: string, confDir: string): string[] {
	const patterns: string[] = [];
	for (const {statement} of walkStatements(parseBraceConfig(confText))) {
		const [directive, pattern] = statement.words.map((word) => word.text);
		if (directive === 'include' && pattern) patterns.push(path.resolve(confDir, pattern));
	}

	return patterns;
}

/** nginx's glob(3) patterns: `*`, `?`, `[...]`, never across a `/`. */
export function globMatches(pattern: string, file: string): boolean {
	let source = '';
	for (let index = 0; index < pattern.length; index++) {
		const char = pattern[index]!;
		if (char === '*') source += '[^/]*';
		else if (char === '?') source += '[^/]';
		else if (char === '[') {
			const end = pattern.indexOf(']', index + 2);
			if (end < 0) source += '\\[';
			else {
				source += `[${pattern
					.slice(index + 1, end)
					.replace(/^!/, '^')
					.replaceAll('\\', '\\\\')}]`;
				index = end;
			}
		} else source += char.replace(/[.+^${}()|\\]/g, '\\$&');
	}

	return new RegExp(`^${source}$`).test(file);
}

/** nginx -t's own words: the `[emerg]`/`[warn]` lines, else all of it. */
export function nginxErrors(output: string): string {
	const lines = output.split('\n').filter((line) => line.trim() !== '');
	const problems = lines.filter((line) => /\[(emerg|alert|crit|error)\]/.test(line));
	return (problems.length > 0 ? problems : lines).join('\n');
}
