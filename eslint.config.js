import eslint from '@eslint/js';
import prettier from 'eslint-config-prettier';
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

const noSim = {
	group: ['**/sim/*'],
	message: 'production code does not load the simulated farm (the demo loads it lazily)',
};
const noEngine = {group: ['**/engine/*'], message: 'stages and host do not import the engine'};
const noStages = {group: ['**/stages/*'], message: 'host/ is the machine: it does not import stages'};

// The machine: host files, processes, /proc and mounts are reached through source/host/ only.
const seam = 'go through source/host/, the one seam to the machine';
const files = ['fs', 'fs/promises', 'node:fs', 'node:fs/promises'].map((name) => ({name, message: `files: ${seam}`}));
const processes = ['child_process', 'node:child_process', 'execa'].map((name) => ({
	name,
	message: `processes: ${seam}`,
}));
const restrict = (patterns, paths = []) => ({'no-restricted-imports': ['error', {patterns, paths}]});
const noProc = {
	'no-restricted-syntax': [
		'error',
		{selector: 'Literal[value=/^\\/proc\\//]', message: `/proc: ${seam}`},
		{selector: 'TemplateElement[value.raw=/^\\/proc\\//]', message: `/proc: ${seam}`},
	],
};

export default tseslint.config(
	{ignores: ['dist/', 'node_modules/', 'media/']},
	eslint.configs.recommended,
	...tseslint.configs.recommended,
	{
		files: ['**/*.{ts,tsx}'],
		plugins: {'react-hooks': reactHooks},
		rules: {
			'react-hooks/rules-of-hooks': 'error',
			'react-hooks/exhaustive-deps': 'warn',
			'@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_'}],
			'no-empty': ['error', {allowEmptyCatch: true}],
		},
	},
	// Layering: host/ is the machine, stages/ use it, engine/ runs stages; source/sim/ is the demo's and the tests'.
	// Later blocks replace earlier ones' options for the same rule, so each block lists all of its restrictions.
	{
		files: ['source/**/*.{ts,tsx}'],
		ignores: ['source/sim/**', 'source/bench/**', 'source/commands/demo.ts'],
		rules: {...restrict([noSim], [...files, ...processes]), ...noProc},
	},
	{
		// The engine keeps farmclone's own state directory (journal, lock, command log) with fs; nothing else.
		files: ['source/engine/**/*.{ts,tsx}'],
		rules: restrict([noSim], processes),
	},
	{
		files: ['source/stages/**/*.{ts,tsx}'],
		rules: restrict([noSim, noEngine], [...files, ...processes]),
	},
	{
		files: ['source/host/**/*.{ts,tsx}'],
		rules: {...restrict([noSim, noEngine, noStages]), 'no-restricted-syntax': 'off'},
	},
	{
		files: ['**/*.js'],
		languageOptions: {globals: {process: 'readonly', console: 'readonly'}},
	},
	prettier,
);
