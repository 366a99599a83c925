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
	{
		files: ['source/**/*.{ts,tsx}'],
		ignores: ['source/sim/**', 'source/bench/**', 'source/commands/demo.ts'],
		rules: {'no-restricted-imports': ['error', {patterns: [noSim]}]},
	},
	{
		files: ['source/stages/**/*.{ts,tsx}'],
		rules: {'no-restricted-imports': ['error', {patterns: [noSim, noEngine]}]},
	},
	{
		files: ['source/host/**/*.{ts,tsx}'],
		rules: {'no-restricted-imports': ['error', {patterns: [noSim, noEngine, noStages]}]},
	},
	{
		files: ['**/*.js'],
		languageOptions: {globals: {process: 'readonly', console: 'readonly'}},
	},
	prettier,
);
