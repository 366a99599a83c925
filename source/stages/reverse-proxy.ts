import path from 'node:path';
import {unifiedDiff} from '../host/diff.js';
import {
	answersForFarm,
	answersWith,
	askSite,
	clashingServers,
	describeAnswer,
	globMatches,
	includePatterns,
	isOurSite,
	nginxErrors,
	nginxSiteText,
	siteAnswer,
	siteProbe,
	waitForSite,
	type NginxSiteRequest,
	type ProbeAnswer,
	type SiteProbe,
} from '../host/nginx-site.js';
import {fqdn, type FarmSettings} from '../settings/schema.js';
import {contentHash, fileEdits} from './checked-edit.js';
import {StageError, StalePlanError, type Plan, type PreflightContext, type Stage, type LookContext} from './types.js';
import {checkerRefusal, readSettingFile, refusedBy} from './preflight-kit.js';
import {missingProgram} from '../host/host.js';
import {stageState} from './state.js';

type ReverseProxyState = {file: string; link: string; backup: string};

const reverseProxyState = stageState<ReverseProxyState>('reverse-proxy');

function testArgv(settings: FarmSettings): string[] {
	return ['nginx', '-t', '-c', settings.nginxConf];
}

function sitePaths(settings: FarmSettings) {
	const file = path.join(settings.sitesAvailable, settings.serverName);
	const link = path.join(settings.sitesEnabled, settings.serverName);
	return {file, link, target: path.relative(settings.sitesEnabled, file)};
}

function siteRequest(settings: FarmSettings): NginxSiteRequest {
	return {
		serverName: settings.serverName,
		listen: settings.listen,
		upstream: fqdn(settings),
		logDir: settings.nginxLogDir,
		farm: settings.name,
	};
}

function wantedText(settings: FarmSettings): string {
	return nginxSiteText(siteRequest(settings));
}

function probeOf(settings: FarmSettings): SiteProbe {
	return siteProbe(siteRequest(settings));
}

function errorLogHint(settings: FarmSettings): string {
	return `nginx says why in its error log, ${path.join(settings.nginxLogDir, 'error.log')} (a listen address it cannot bind, a file it cannot open...)`;
}

/** Proves the reload took: nginx, asked over HTTP, answers with the site on disk. */
async function confirmLoaded(context: LookContext, after: string, then = ''): Promise<void> {
	const {settings, host} = context;
	const probe = probeOf(settings);
	const wanted = (answer: ProbeAnswer) => answersWith(answer, siteRequest(settings));
	const loaded = await waitForSite(host, probe, wanted, {signal: context.signal});
	if (loaded.ok) return;
	throw new StageError(
		`${after}, but nginx has not loaded the site: asked ${probe.target}, it answered ${describeAnswer(loaded.answer)}, not "${siteAnswer(siteRequest(settings))}"${then}`,
		errorLogHint(settings),
	);
}

/** Proves undo's reload took: nginx no longer answers with any version of the site. */
async function confirmUnloaded(context: LookContext): Promise<void> {
	const {settings, host} = context;
	const probe = probeOf(settings);
	const gone = (answer: ProbeAnswer) => !answersForFarm(answer, settings.name);
	const unloaded = await waitForSite(host, probe, gone, {signal: context.signal});
	if (unloaded.ok) return;
	throw new StageError(
		`after ${settings.nginxReload.join(' ')}: nginx still serves the removed site: asked ${probe.target}, it answered ${describeAnswer(unloaded.answer)}`,
		`${errorLogHint(settings)}; running the undo again reloads nginx again`,
	);
}

type Survey = {
	existing?: string;
	ours: boolean;
	/** undefined when there is no sites-enabled directory. */
	linkState?: 'absent' | 'ours' | 'other';
	conflicts: string[];
	notes: string[];
};

/** Files nginx.conf pulls in with `include` (globs in the last path part expanded), nginx.conf itself first. */
async function includedFiles(context: LookContext, confText: string): Promise<string[]> {
	const {nginxConf} = context.settings;
	const files = new Set([nginxConf]);
	for (const pattern of includePatterns(confText, path.dirname(nginxConf))) {
		if (!/[*?[]/.test(pattern)) {
			files.add(pattern);
			continue;
		}

		const dir = path.dirname(pattern);
		for (const name of (await context.host.listDir(dir)) ?? []) {
			const candidate = path.join(dir, name);
			if (globMatches(pattern, candidate)) files.add(candidate);
		}
	}

	return [...files];
}

async function linkState(context: LookContext, conflicts: string[]): Promise<Survey['linkState']> {
	const {settings, host} = context;
	const {file, link} = sitePaths(settings);
	if ((await host.listDir(settings.sitesEnabled)) === undefined) return undefined;
	const pointsTo = await host.readLink(link);
	if (pointsTo !== undefined && path.resolve(settings.sitesEnabled, pointsTo) === file) return 'ours';
	if (pointsTo !== undefined) conflicts.push(`${link} already points to ${pointsTo}`);
	else if (await host.exists(link)) conflicts.push(`${link} exists and is not a link to ${file}`);
	else return 'absent';
	return 'other';
}

/** Other server blocks nginx loads that answer the same name on the same address. */
async function clashes(context: LookContext, confText: string, conflicts: string[], notes: string[]): Promise<void> {
	const {settings, host} = context;
	const {file, link} = sitePaths(settings);
	for (const other of await includedFiles(context, confText)) {
		const pointsTo = await host.readLink(other);
		if (other === file || other === link || (pointsTo && path.resolve(path.dirname(other), pointsTo) === file))
			continue;
		try {
			const text = await host.readFileIfExists(other);
			for (const server of clashingServers(text ?? '', settings.serverName, settings.listen)) {
				conflicts.push(
					`${other} line ${server.line + 1}: a server already answers ${settings.serverName} on ${settings.listen}`,
				);
			}
		} catch {
			notes.push(`${other} could not be read as nginx configuration; its server names were not checked`);
		}
	}
}

async function survey(context: LookContext): Promise<Survey> {
	const {settings, host} = context;
	const {file, link} = sitePaths(settings);
	const existing = await host.readFileIfExists(file);
	const ours = existing !== undefined && isOurSite(existing, settings.name);
	const result: Survey = {existing, ours, conflicts: [], notes: []};
	if (existing !== undefined && !ours) result.conflicts.push(`${file} exists and was not written by farmclone`);
	result.linkState = await linkState(context, result.conflicts);

	const confText = await host.readFileIfExists(settings.nginxConf);
	let patterns: string[] = [];
	try {
		patterns = includePatterns(confText ?? '', path.dirname(settings.nginxConf));
	} catch (error) {
		result.conflicts.push(`cannot read ${settings.nginxConf}: ${(error as Error).message}`);
		return result;
	}

	if (confText === undefined) result.conflicts.push(`${settings.nginxConf} does not exist`);
	const active = result.linkState === undefined ? file : link;
	const including = patterns.find((pattern) => globMatches(pattern, active));
	if (result.linkState === undefined) {
		result.notes.push(`no ${settings.sitesEnabled} directory: the site is active only if nginx.conf includes it`);
	}

	result.notes.push(
		including
			? `${settings.nginxConf} includes ${active} through "include ${including}"`
			: `nothing in ${settings.nginxConf} includes ${active}: add "include ${path.dirname(active)}/*;" to its http block, or nginx will not serve the site`,
	);
	if (confText !== undefined) await clashes(context, confText, result.conflicts, result.notes);
	return result;
}

async function nginxTest(context: LookContext): Promise<string | undefined> {
	const result = await context.host.run(testArgv(context.settings), {reject: false});
	return result.exitCode === 0 ? undefined : nginxErrors(`${result.stderr}\n${result.stdout}`);
}

const dnsHint = 'nginx resolves the proxy_pass name when it loads: the DNS record must be served first';

/** nginx: nginx -t accepts its configuration, curl is there to ask the site, and the site's file is free or ours. */
export async function proxyPreflight(context: PreflightContext): Promise<void> {
	const {host, settings, add} = context;
	if ((await readSettingFile(context, 'nginxConf')) === undefined) return;
	const refusal = await checkerRefusal(host, ['nginx', '-t', '-c', settings.nginxConf], nginxErrors);
	if (refusal) add('nginxConf', refusedBy('nginx -t', refusal));
	// The stage proves nginx loaded the site by asking it with curl; a farm host need not have curl
	// (Debian's ganeti pulls only libcurl): found out at the last stage, after the firewall restart.
	if (!(await host.which('curl'))) {
		add('serverName', `${missingProgram('curl')}: the reverse proxy stage asks the site with it`);
	}
	const site = path.join(settings.sitesAvailable, settings.serverName);
	const text = await host.readFileIfExists(site).catch(() => undefined);
	if (text !== undefined && !isOurSite(text, settings.name)) {
		add('serverName', `${site} already exists and was not written by farmclone`);
	}
}

export const reverseProxyStage: Stage = {
	id: 'reverse-proxy',
	title: 'Reverse proxy',
	summary: 'an nginx site proxying the public name to the clone, enabled, nginx -t, reload, curl proving it loaded',
	danger: 'none',
	skippable: true,
	preflight: [proxyPreflight],
	async check(context) {
		const found = await survey(context);
		const notes = found.notes.map((note) => `\n${note}`).join('');
		if (found.conflicts.length > 0) return {status: 'conflict', detail: found.conflicts.join('\n') + notes};
		const {settings, host} = context;
		const {file} = sitePaths(settings);
		const current = found.existing === wantedText(settings) && found.linkState !== 'absent';
		if (!current) {
			return {
				status: 'pending',
				detail: `${file} is ${found.existing === undefined ? 'not written yet' : 'out of date'}${notes}`,
			};
		}

		// One request, no waiting: a site on disk that nginx never loaded is still to do.
		const answer = await askSite(host, probeOf(settings));
		return answersWith(answer, siteRequest(settings))
			? {status: 'done', detail: `${file} is written, enabled and loaded${notes}`}
			: {
					status: 'pending',
					detail: `${file} is written and enabled but nginx has not loaded it (it answered ${describeAnswer(answer)})${notes}`,
				};
	},
	async plan(context) {
		const {settings} = context;
		const found = await survey(context);
		const {file, link, target} = sitePaths(settings);
		const plan: Plan = {
			commands: [testArgv(settings), settings.nginxReload, probeOf(settings).argv],
			diffs: [],
			notes: [
				...found.conflicts,
				...found.notes,
				`${dnsHint} (${fqdn(settings)})`,
				`after the reload, curl asks nginx for the site's own answer "${siteAnswer(siteRequest(settings))}", to prove it loaded the site`,
			],
		};
		const wanted = wantedText(settings);
		if (found.existing !== wanted) plan.diffs.push({path: file, diff: unifiedDiff(found.existing, wanted, file)});
		if (found.linkState === 'absent') plan.notes.unshift(`link ${link} -> ${target}`);
		plan.edits = fileEdits([{path: file, before: found.existing, after: wanted}]);
		plan.values = {site: wanted, siteHash: contentHash(found.existing), link: String(found.linkState)};
		return plan;
	},
	async apply(context, approved) {
		const {settings, host} = context;
		const found = await survey(context);
		if (found.conflicts.length > 0) throw new StageError(found.conflicts.join('\n'));
		const {file, link, target} = sitePaths(settings);
		const planned = approved?.values;
		if (planned?.['siteHash'] !== undefined && planned['siteHash'] !== contentHash(found.existing)) {
			throw new StalePlanError(found.existing === undefined ? `${file} is gone` : `${file} changed`);
		}

		if (planned?.['link'] !== undefined && planned['link'] !== String(found.linkState)) {
			throw new StalePlanError(`${link} is ${String(found.linkState)} now, not ${planned['link']}`);
		}

		for (const note of found.notes) context.log(note);
		// The site as the approved plan showed it.
		const wanted = planned?.['site'] ?? wantedText(settings);
		const rewrite = found.existing !== wanted;
		const backup = rewrite ? (await host.writeFile(file, wanted)).backup : undefined;
		const makeLink = found.linkState === 'absent';
		if (makeLink) await host.symlink(target, link);
		const rollBack = async () => {
			if (makeLink) await host.remove(link);
			if (!rewrite) return;
			if (found.existing === undefined) await host.remove(file);
			else await host.writeFile(file, found.existing);
		};

		const problem = await nginxTest(context);
		if (problem) {
			await rollBack();
			const hint = problem.includes('host not found') ? dnsHint : undefined;
			throw new StageError(`nginx -t refused the new site; it is removed again:\n${problem}`, hint);
		}

		const reload = await host.run(settings.nginxReload, {reject: false});
		if (reload.exitCode !== 0) {
			await rollBack();
			throw new StageError(
				`${settings.nginxReload.join(' ')} failed; the site is removed again:\n${`${reload.stderr}${reload.stdout}`.trim()}`,
			);
		}

		await reverseProxyState.save(context, {
			file: file,
			link: found.linkState === undefined ? undefined : link,
			// A resumed apply finds the site already written: keep the backup of the first one.
			backup: backup ?? reverseProxyState.of(context).backup,
		});
		// When nginx kept its old configuration, the site stays: nginx -t accepted it, so any later reload or
		// restart loads it, and removing it would need a reload of its own, the very thing that did not take.
		// check() asks nginx too, so the stage stays pending: resuming the run reloads again; undo removes it.
		await confirmLoaded(
			context,
			`the site is in place and ${settings.nginxReload.join(' ')} exited 0`,
			'. The site stays (nginx -t accepts it); resuming the run reloads nginx again',
		);
		context.log(`nginx serves ${settings.serverName} from ${file}, proxying to http://${fqdn(settings)}`);
	},
	async verify(context) {
		const {settings} = context;
		const {file, link} = sitePaths(settings);
		const found = await survey(context);
		if (!found.ours) throw new StageError(`${file} is not farmclone's site`);
		if (found.linkState === 'absent' || found.linkState === 'other') {
			throw new StageError(`${link} does not enable ${file}`);
		}

		const problem = await nginxTest(context);
		if (problem) throw new StageError(`nginx -t refuses the configuration:\n${problem}`);
		await confirmLoaded(context, 'the site is in place');
	},
	async undo(context) {
		const {settings, host} = context;
		const {file, link, target} = sitePaths(settings);
		const existing = await host.readFileIfExists(file);
		const pointsTo = await host.readLink(link);
		const ourLink = pointsTo !== undefined && path.resolve(settings.sitesEnabled, pointsTo) === file;
		if (existing !== undefined && !isOurSite(existing, settings.name)) {
			context.log(`${file} is not farmclone's: left alone`);
			return;
		}

		if (existing === undefined) {
			// A link left dangling to where our site was is ours to clean up.
			if (ourLink) await host.remove(link);
			// An undo whose reload did not take left the site loaded though its file is gone: reload again.
			const answer = await askSite(host, probeOf(settings));
			if (!answersForFarm(answer, settings.name)) {
				context.log(`${file} is already gone, and nginx does not serve it`);
				return;
			}

			context.log(`${file} is already gone, but nginx still serves it: reloading`);
		} else {
			if (ourLink) await host.remove(link);
			await host.remove(file);
		}

		const problem = await nginxTest(context);
		if (problem) {
			if (existing !== undefined) {
				await host.writeFile(file, existing);
				if (ourLink) await host.symlink(target, link);
			}

			const putBack = existing === undefined ? '' : '; it is put back';
			throw new StageError(`nginx -t refuses the configuration without the site${putBack}:\n${problem}`);
		}

		const reload = await host.run(settings.nginxReload, {reject: false});
		if (reload.exitCode !== 0) {
			throw new StageError(`${settings.nginxReload.join(' ')} failed:\n${`${reload.stderr}${reload.stdout}`.trim()}`);
		}

		await confirmUnloaded(context);
		const removed = existing === undefined ? '' : `removed ${ourLink ? `${link} and ` : ''}${file}; `;
		context.log(`${removed}nginx reloaded and no longer serves the site`);
	},
	async undoPlan(context) {
		const {settings, host} = context;
		const {file, link} = sitePaths(settings);
		const existing = await host.readFileIfExists(file);
		const probe = probeOf(settings).argv;
		if (existing !== undefined && !isOurSite(existing, settings.name)) {
			return {commands: [], diffs: [], notes: [`${file} is not farmclone's: left alone`]};
		}

		if (existing === undefined) {
			return {
				commands: [probe],
				diffs: [],
				notes: [`${file} is already gone; nginx is reloaded only if it still serves the site`],
			};
		}

		return {
			commands: [testArgv(settings), settings.nginxReload, probe],
			diffs: [{path: file, diff: unifiedDiff(existing, undefined, file)}],
			notes: [`remove the link ${link}`, "after the reload, curl checks that nginx no longer gives the site's answer"],
		};
	},
};
