// `npm run lint`. typescript-eslint's recommended rules, its type-aware promise
// rules (a promise nobody awaits or catches is a crash waiting for its first
// rejection), and tunsteer/layers: the direction of imports between the folders
// of src/ (scripts/lint/layers.mjs). Why these and not more: docs/DECISIONS.md
// (Tooling).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import layers from './scripts/lint/layers.mjs';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'coverage/**', '.tap/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      // `_name`: a parameter an interface requires and this implementation does not use
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // tap's subtests: the parent test queues and awaits them itself
          allowForKnownSafeCalls: [{ from: 'package', package: '@tapjs/test', name: ['test', 'skip', 'todo', 'only'] }],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  {
    // the dashboard's page script (on main: src/control/ui) runs in the browser
    files: ['src/control/ui/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { tunsteer: layers },
    rules: { 'tunsteer/layers': 'error' },
  },
);
