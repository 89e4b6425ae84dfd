// netctl's lint rules. They live beside their own node_modules (tools/lint/package.json):
// typescript-eslint needs TypeScript's JavaScript API, which ends at TypeScript 6.0; the
// build compiles with TypeScript 7, whose native compiler does not ship that API.
import js from '@eslint/js'
import prettier from 'eslint-config-prettier'
import simpleImportSort from 'eslint-plugin-simple-import-sort'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {ignores: ['dist/**', '**/node_modules/**', 'oclif.manifest.json', '.bench/**']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: {'simple-import-sort': simpleImportSort},
    rules: {
      'simple-import-sort/imports': 'error',
      'simple-import-sort/exports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none'},
      ],
      // the sanitiser and its tests match terminal control characters on purpose
      'no-control-regex': 'off',
    },
  },
  {
    files: ['bin/**/*.js', 'scripts/**/*.{js,mjs}', 'tools/**/*.js', '**/*.mjs'],
    languageOptions: {globals: {process: 'readonly', console: 'readonly', URL: 'readonly'}},
  },
  {
    // tests read the CLI's JSON output and poke at untyped shapes: any is the honest type there
    files: ['test/**', 'bench/**'],
    rules: {'@typescript-eslint/no-explicit-any': 'off'},
  },
  prettier,
)
