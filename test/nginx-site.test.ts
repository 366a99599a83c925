import {test} from 'node:test';
import assert from 'node:assert/strict';
import {parseBraceConfig} from '../source/host/brace-config.js';
import {
	clashingServers,
	globMatches,
	includePatterns,
	isOurSite,
	listenAddress,
	listensOverlap,
	nginxErrors,
	nginxSiteText,
	parseServers,
} from '../source/host/nginx-site.js';

const request = {
	serverName: 'gallifrey-dev.dachary.org',
	listen: '80',
	upstream: 'gallifrey-dev.xivo.vm.farm',
	logDir: '/var/log/nginx',
	farm: 'gallifrey-dev',
};

test('the site: the seed’s server block, the proxy headers, the marker on top', () => {
	const text = nginxSiteText(request);
	assert.ok(isOurSite(text, 'gallifrey-dev'));
	assert.ok(!isOurSite(text, 'gallifrey'));
	assert.ok(!isOurSite(text.split('\n').slice(1).join('\n'), 'gallifrey-dev'));
	const [server] = parseBraceConfig(text);
	assert.equal(server?.words[0]?.text, 'server');
	const directives = server!.children!.map((child) => child.words.map((word) => word.text).join(' '));
	assert.deepEqual(directives.slice(0, 3), [
		'listen 80',
		'server_name gallifrey-dev.dachary.org',
		'access_log /var/log/nginx/gallifrey-dev.dachary.org.access.log',
	]);
	const location = server!.children!.find((child) => child.words[0]?.text === 'location')!;
	const inside = location.children!.map((child) => child.words.map((word) => word.text).join(' '));
	assert.equal(inside[0], 'proxy_pass http://gallifrey-dev.xivo.vm.farm');
	for (const header of ['Host', 'X-Forwarded-For', 'X-Forwarded-Proto', 'X-Real-IP']) {
		assert.ok(
			inside.some((line) => line.startsWith(`proxy_set_header ${header} $`)),
			header,
		);
	}
});

const otherSites = `# managed by hand
upstream backends {
	server 10.10.60.5:80;
}
server {
	listen 80 default_server;
	listen [::]:80 default_server;
	server_name _;
	location / { return 404; }
}
server {
	listen 127.0.0.1:8080;
	server_name gallifrey-dev.dachary.org;
}
server {
	server_name Gallifrey-Dev.dachary.org "quoted.example";
	location ~ "^/(\\d{3})$" { return 200; }
}
`;

test('server blocks: names, listens (80 when absent), nested anywhere, upstream servers ignored', () => {
	assert.deepEqual(
		parseServers(otherSites).map((server) => [server.names, server.listens, server.line]),
		[
			[['_'], ['80', '[::]:80'], 4],
			[['gallifrey-dev.dachary.org'], ['127.0.0.1:8080'], 10],
			[['gallifrey-dev.dachary.org', 'quoted.example'], ['80'], 14],
		],
	);
	assert.deepEqual(
		clashingServers(otherSites, 'gallifrey-dev.dachary.org', '80').map((server) => server.line),
		[14],
	);
	assert.deepEqual(
		clashingServers(otherSites, 'gallifrey-dev.dachary.org', '8080').map((server) => server.line),
		[10],
	);
	assert.deepEqual(clashingServers(`http {\n${otherSites}}\n`, 'other.example', '80'), []);
});

test('listen addresses and which ones overlap', () => {
	assert.deepEqual(listenAddress('80'), {address: '*', port: '80'});
	assert.deepEqual(listenAddress('*:443 ssl http2'), {address: '*', port: '443'});
	assert.deepEqual(listenAddress('0.0.0.0:80'), {address: '*', port: '80'});
	assert.deepEqual(listenAddress('[::1]:8080'), {address: '[::1]', port: '8080'});
	assert.deepEqual(listenAddress('127.0.0.1'), {address: '127.0.0.1', port: '80'});
	assert.ok(listensOverlap('80', '*:80'));
	assert.ok(listensOverlap('80', '192.0.2.10:80'));
	assert.ok(!listensOverlap('80', '[::]:80'));
	assert.ok(!listensOverlap('192.0.2.10:80', '192.0.2.11:80'));
	assert.ok(!listensOverlap('80', '8080'));
});

test('include patterns, relative to the configuration’s directory, and glob matching', () => {
	const conf = `user www-data;
events { worker_connections 768; }
http {
	include mime.types;
	include /etc/nginx/conf.d/*.conf;
	include sites-enabled/*;
}
`;
	assert.deepEqual(includePatterns(conf, '/srv/nginx'), [
		'/srv/nginx/mime.types',
		'/etc/nginx/conf.d/*.conf',
		'/srv/nginx/sites-enabled/*',
	]);
	assert.ok(globMatches('/srv/nginx/sites-enabled/*', '/srv/nginx/sites-enabled/gallifrey-dev.dachary.org'));
	assert.ok(!globMatches('/srv/nginx/sites-enabled/*', '/srv/nginx/sites-enabled/sub/x'));
	assert.ok(!globMatches('/etc/nginx/conf.d/*.conf', '/etc/nginx/conf.d/x.conf.disabled'));
	assert.ok(globMatches('/etc/nginx/sites-[ae]*/?allifrey*', '/etc/nginx/sites-available/gallifrey-dev'));
});

test('nginx -t errors keep the emerg lines', () => {
	const output =
		'nginx: [emerg] host not found in upstream "gallifrey-dev.xivo.vm.farm" in /etc/nginx/sites-enabled/x:9\nnginx: configuration file /etc/nginx/nginx.conf test failed\n';
	assert.equal(
		nginxErrors(output),
		'nginx: [emerg] host not found in upstream "gallifrey-dev.xivo.vm.farm" in /etc/nginx/sites-enabled/x:9',
	);
	assert.equal(nginxErrors('something else\n'), 'something else');
});
