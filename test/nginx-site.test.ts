import {test} from 'node:test';
import assert from 'node:assert/strict';
import {parseBraceConfig} from '../source/host/brace-config.js';
import {
	answersForFarm,
	answersWith,
	clashingServers,
	describeAnswer,
	globMatches,
	includePatterns,
	isOurSite,
	listenAddress,
	listensOverlap,
	nginxErrors,
	nginxSiteText,
	parseProbeOutput,
	parseServers,
	probePath,
	siteAnswer,
	siteProbe,
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

test('the site answers for itself at its own path, without the upstream, naming where it proxies', () => {
	const text = nginxSiteText(request);
	const [server] = parseBraceConfig(text);
	const own = server!.children!.find(
		(child) => child.words[0]?.text === 'location' && child.words[2]?.text === probePath('gallifrey-dev'),
	);
	assert.ok(own, text);
	assert.equal(own.words[1]?.text, '=');
	assert.ok(!probePath('gallifrey-dev').startsWith('/.well-known/'));
	const inside = own.children!.map((child) => child.words.map((word) => word.text));
	assert.ok(!inside.some(([directive]) => directive?.startsWith('proxy_')), 'nothing goes to the VM');
	// In the file, nginx's escape for the newline; farmclone's brace parser keeps just the escaped letter.
	assert.deepEqual(
		inside.find(([directive]) => directive === 'return'),
		['return', '200', `${siteAnswer(request)}n`],
	);
	assert.ok(text.includes(`return 200 "${siteAnswer(request)}\\n";`));
	assert.equal(
		siteAnswer(request),
		'farmclone gallifrey-dev proxies gallifrey-dev.dachary.org to http://gallifrey-dev.xivo.vm.farm',
	);
	assert.notEqual(siteAnswer({...request, upstream: 'other.xivo.vm.farm'}), siteAnswer(request));
});

test('the probe: curl on the listen address, with the site’s Host, ~/.curlrc and proxies ignored', () => {
	const url = (listen: string) => siteProbe({...request, listen}).argv.at(-1);
	assert.equal(url('80'), 'http://127.0.0.1/.farmclone-gallifrey-dev');
	assert.equal(url('0.0.0.0:8080'), 'http://127.0.0.1:8080/.farmclone-gallifrey-dev');
	assert.equal(url('192.0.2.10:80'), 'http://192.0.2.10/.farmclone-gallifrey-dev');
	assert.equal(url('[::]:80'), 'http://[::1]/.farmclone-gallifrey-dev');
	assert.equal(url('[2001:db8::1]:8080'), 'http://[2001:db8::1]:8080/.farmclone-gallifrey-dev');
	assert.equal(url('443 ssl'), 'https://127.0.0.1/.farmclone-gallifrey-dev');
	assert.equal(url('*:8443 ssl http2'), 'https://127.0.0.1:8443/.farmclone-gallifrey-dev');

	const plain = siteProbe(request).argv;
	assert.equal(plain[0], 'curl');
	assert.equal(plain[1], '-q', '-q must come first to skip ~/.curlrc');
	assert.deepEqual(plain.slice(plain.indexOf('--noproxy'), plain.indexOf('--noproxy') + 2), ['--noproxy', '*']);
	assert.deepEqual(plain.slice(plain.indexOf('--max-time'), plain.indexOf('--max-time') + 2), ['--max-time', '3']);
	assert.deepEqual(plain.slice(plain.indexOf('--header'), plain.indexOf('--header') + 2), [
		'--header',
		'Host: gallifrey-dev.dachary.org',
	]);
	assert.ok(!plain.includes('--insecure'));
	assert.ok(siteProbe({...request, listen: '443 ssl'}).argv.includes('--insecure'));

	const socket = siteProbe({...request, listen: 'unix:/run/nginx/dev.sock'});
	assert.deepEqual(socket.argv.slice(socket.argv.indexOf('--unix-socket'), socket.argv.indexOf('--unix-socket') + 2), [
		'--unix-socket',
		'/run/nginx/dev.sock',
	]);
	assert.equal(socket.argv.at(-1), 'http://localhost/.farmclone-gallifrey-dev');
	assert.match(socket.target, /through \/run\/nginx\/dev\.sock \(Host: gallifrey-dev\.dachary\.org\)$/);
});

test('the probe’s output: status, first line of the body, or curl’s error', () => {
	const wanted = siteAnswer(request);
	const loaded = parseProbeOutput({exitCode: 0, stdout: `${wanted}\n\n200`, stderr: ''});
	assert.deepEqual(loaded, {status: 200, firstLine: wanted});
	assert.ok(answersWith(loaded, request));
	assert.ok(answersForFarm(loaded, 'gallifrey-dev'));
	assert.ok(!answersForFarm(loaded, 'gallifrey'), 'another farm’s name is not a prefix match');

	const older = parseProbeOutput({
		exitCode: 0,
		stdout: 'farmclone gallifrey-dev proxies gallifrey-dev.dachary.org to http://old.xivo.vm.farm\n\n200',
		stderr: '',
	});
	assert.ok(!answersWith(older, request));
	assert.ok(answersForFarm(older, 'gallifrey-dev'));

	const notFound = parseProbeOutput({exitCode: 0, stdout: '<html>\r\n<head>404</head>\n404', stderr: ''});
	assert.deepEqual(notFound, {status: 404, firstLine: '<html>'});
	assert.ok(!answersWith(notFound, request) && !answersForFarm(notFound, 'gallifrey-dev'));
	assert.equal(describeAnswer(notFound), 'HTTP 404 "<html>"');
	const wrongStatus = parseProbeOutput({exitCode: 0, stdout: `${wanted}\n\n500`, stderr: ''});
	assert.ok(!answersWith(wrongStatus, request) && !answersForFarm(wrongStatus, 'gallifrey-dev'));

	const refused = parseProbeOutput({
		exitCode: 7,
		stdout: '\n000',
		stderr: "curl: (7) Failed to connect to 127.0.0.1 port 80 after 0 ms: Couldn't connect to server\n",
	});
	assert.deepEqual(refused, {
		error: "curl: (7) Failed to connect to 127.0.0.1 port 80 after 0 ms: Couldn't connect to server",
	});
	assert.match(describeAnswer(refused), /^nothing \(curl: \(7\) Failed to connect/);
	assert.match(describeAnswer(parseProbeOutput({exitCode: 127, stdout: '', stderr: ''})), /not found on PATH/);
});
