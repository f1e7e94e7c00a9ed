// @ts-check
// `npm run lint`. Type-aware (typescript-eslint recommendedTypeChecked, through the tsconfig solution's
// projects) plus four rules the project holds everywhere, tests included: no floating promises, no promise
// where a callback's result is ignored, exhaustive switches over unions, and no condition the types say is
// constant. Rules turned off below say for which files and why.
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

const TESTS = ['backend/test/**', 'frontend/test/**', 'e2e/**']

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'backend/generated/**',
      'node_modules/**',
      'test-artifacts/**',
      'bench/results/**',
      'scripts/bench/tmp/**',
      '.tap/**',
      '.test-build/**',
      'data/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // the few plain-JS files belong to no tsconfig project; they get a default one
        projectService: {
          allowDefaultProject: ['*.js', 'scripts/*.mjs', 'scripts/stubs/*/*.js'],
          defaultProject: 'backend/tsconfig.json',
          // the plain-JS files above (9 today): more than the default limit of 8, each small
          maximumDefaultProjectFileMatchCount_THIS_WILL_SLOW_DOWN_LINTING: 16,
        },
        tsconfigRootDir: import.meta.dirname,
      },
      globals: { ...globals.node },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // tap's t.test()/t.skip() return a promise tap itself tracks: a failing subtest fails the run,
          // it never becomes an unhandled rejection. Awaiting them at top level would serialise nothing new.
          allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unnecessary-condition': 'error',
      // passing on a value caught from elsewhere (a callback's err, a rejection) is fine; making a non-Error is not
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingUnknown: true, allowThrowingAny: true }],
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true, allowThrowingAny: true }],
      // `_name` marks a deliberately unused binding; `{ secret: _s, ...rest }` drops a field
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['frontend/src/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['backend/**', ...TESTS],
    rules: {
      // Fastify's plugin and hook contract is "an async function or a done callback": plugins and hooks
      // with nothing to await are still async on purpose, as are interface methods returning Promise<void>.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['backend/**'],
    rules: {
      // callbacks handed to timers and emitters are methods bound once in their class's constructor
      // (`this.tick = this.tick.bind(this)`), which the rule cannot see
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    files: [...TESTS, 'scripts/**'],
    rules: {
      // Tests, benchmarks and the chaos suite read untyped JSON (HTTP bodies, WebSocket frames, result
      // files) and assert on or print its fields; the assertions are the type check there.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      // messages of assertions and reports: a value printed oddly shows in the message, it changes no result
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
    },
  },
)
