#!/usr/bin/env node
/**
 * `npm test [-- tap args and test files…]`: every tap suite, compiled to JavaScript first.
 *
 * 1. scripts/build-tests.mjs compiles backend/, frontend/ and scripts/ into `.test-build/` (esbuild, ~0.4 s), so
 *    no test process pays a TypeScript loader's per-module cost (see that script). Stack traces and tap's
 *    failure locations still name the TypeScript sources (inline source maps, `--enable-source-maps`).
 * 2. tap runs the compiled test files, the slowest first (SLOW_FIRST): with 3 files at a time on 2 cores, a
 *    30 s file started last would run on its own at the end while the other core idles.
 *
 * A test file given on the command line (`npm test -- backend/test/auth.test.ts`) runs alone, compiled the same
 * way; other arguments go to tap unchanged. `npx tap <file.ts>` still runs a source file directly through tsx.
 * The type check is `npm run typecheck` (tsc -b), its own step in CI: tsx and esbuild strip types without
 * checking them, so a suite can pass with a type error that the typecheck catches.
 */
import { spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { buildTests, compiledPath, ROOT } from './build-tests.mjs'

/**
 * The files that take longest (10 s or more of wall time on a 2-core machine), longest first; the others follow
 * in name order. A file missing here only costs packing, never correctness.
 */
const SLOW_FIRST = [
  'backend/test/cluster/workers.test.ts',
  'backend/test/streaming/private-budget.test.ts',
  'backend/test/db/pglite.test.ts',
  'backend/test/server.test.ts',
  'backend/test/cluster/redis-stall.test.ts',
  'backend/test/build/compiled.test.ts',
  'backend/test/auth.test.ts',
  'backend/test/streaming/outage.test.ts',
  'backend/test/cluster/gateway-cluster.test.ts',
  'backend/test/streaming/private-push.test.ts',
  'backend/test/scripts/bench-machinery.test.ts',
  'backend/test/cluster/redis-bus.test.ts',
  'backend/test/streaming/outage-recovery.test.ts',
  'backend/test/streaming/fanout-load.test.ts',
  'backend/test/streaming/slow-consumer.test.ts',
  'backend/test/db/migration-status.test.ts',
  'backend/test/exchange/client-resilience.test.ts',
]

/** the suites: `*.test.ts(x)` under backend/test and frontend/test (package.json tap.include) */
function testFiles(dir) {
  const out = []
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = `${dir}/${e.name}`
    if (e.isDirectory()) out.push(...testFiles(p))
    else if (/\.test\.tsx?$/.test(e.name)) out.push(p)
  }
  return out
}

const args = process.argv.slice(2)
const isSource = (a) => /\.tsx?$/.test(a) && existsSync(join(ROOT, a))
const chosen = args.filter(isSource).map((a) => relative(ROOT, join(ROOT, a)))
const tapArgs = args.filter((a) => !isSource(a))
const all = [...testFiles('backend/test'), ...testFiles('frontend/test')].sort()
const files = chosen.length > 0 ? chosen : [...SLOW_FIRST.filter((f) => all.includes(f)), ...all.filter((f) => !SLOW_FIRST.includes(f))]

const built = await buildTests()
process.stdout.write(`# compiled ${built.files} files into .test-build/ in ${built.ms} ms\n`)

const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --enable-source-maps`.trim() }
const tap = spawn(join(ROOT, 'node_modules', '.bin', 'tap'), [...tapArgs, ...files.map(compiledPath)], {
  cwd: ROOT,
  env,
  stdio: 'inherit',
})
tap.on('error', (err) => {
  process.stderr.write(`tap: ${err.message}\n`)
  process.exit(1)
})
tap.on('close', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
