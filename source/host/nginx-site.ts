import path from 'node:path';
import {parseBraceConfig, walkStatements} from './brace-config.js';
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

/**
 * The seed's server block plus the headers a proxied application needs to
 * see the real client and scheme. The marker line on top says the whole file
 * is farmclone's.
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
