#!/usr/bin/env node
/**
 * `npm test [-- test files… | --grep <re> | --jobs <n> | --timeout <s>]`: every tap suite, compiled to JavaScript,
 * four files at a time (most of a file's time is waiting on timers and sockets: four keep 2 cores about 75 % busy).
 *
 * 1. scripts/build-tests.mjs compiles backend/, frontend/ and scripts/ into `.test-build/` (esbuild, ~0.4 s): no
 *    test process pays a TypeScript loader (see that script). Stack traces and failure locations still name the
 *    TypeScript sources (inline source maps, `--enable-source-maps`).
 * 2. Each compiled test file runs as `node --enable-source-maps <file>`, which is how a tap test file runs on its
 *    own: it prints TAP and exits non-zero when an assertion fails. This script is the runner: tap's own (`npx tap`)
 *    starts every test process with two module-loader hooks (@tapjs/processinfo, for coverage bookkeeping, and
 *    @tapjs/mock), which Node 20 runs on a separate thread with a round trip per module loaded, and processinfo
 *    puts itself in NODE_OPTIONS, so every gateway a test spawns pays it too. That measured 1.1 CPU-s per test
 *    process (2.2 → 3.3 for a file that starts the app), over 100 CPU-s for the suite on a 2-core machine. We use
 *    neither coverage nor tap's mocks (frontend tests mock timers with node:test).
 * 3. The slowest files start first (SLOW_FIRST): a 25 s file started last would run on its own at the end while
 *    the other core idles.
 *
 * Output: each file's TAP as a subtest of one TAP stream (`# Subtest: <file>`, its lines indented, `ok N - <file>`),
 * then the counts over every file: `# { total, pass, fail, skip, todo }` (tap-parser). A file that runs past the
 * timeout (180 s) is killed and fails. Exit code 1 when any file failed.
 *
 * `npx tap <file.ts>` still runs a source file through tap's runner and tsx (scripts/tap-tsx.mjs), for debugging.
 * The type check is `npm run typecheck` (tsc -b), its own step in CI: esbuild strips types without checking them.
 */
import { spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, relative } from 'node:path'
import { Parser } from 'tap-parser'
import { buildTests, compiledPath, ROOT } from './build-tests.mjs'

/**
 * The files that take longest (about 8 s or more of wall time on a 2-core machine, mostly waiting on timers and
 * sockets), longest first; the others follow in name order. A file missing here only costs packing, never
 * correctness.
 */
const SLOW_FIRST = [
  'backend/test/cluster/workers.test.ts',
  'backend/test/server.test.ts',
  'backend/test/cluster/gateway-cluster.test.ts',
  'backend/test/security/low-items.test.ts',
  'backend/test/streaming/private-push.test.ts',
  'backend/test/cluster/redis-stall.test.ts',
  'backend/test/db/pglite.test.ts',
  'backend/test/streaming/private-budget.test.ts',
  'backend/test/cluster/redis-bus.test.ts',
  'backend/test/streaming/outage-recovery.test.ts',
  'backend/test/scripts/bench-machinery.test.ts',
  'backend/test/streaming/outage.test.ts',
  'backend/test/streaming/slow-consumer.test.ts',
  'backend/test/streaming/fanout-load.test.ts',
  'backend/test/security/upgrade-refusals.test.ts',
  'backend/test/exchange/client-resilience.test.ts',
  'backend/test/build/compiled.test.ts',
  'backend/test/streaming/dashboard.test.ts',
  'backend/test/auth.test.ts',
  'backend/test/vault.test.ts',
]

/** the suites: `*.test.ts(x)` under backend/test and frontend/test */
function testFiles(dir) {
  const out = []
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = `${dir}/${e.name}`
    if (e.isDirectory()) out.push(...testFiles(p))
    else if (/\.test\.tsx?$/.test(e.name)) out.push(p)
  }
  return out
}

function parseArgs(argv) {
  const o = { files: [], grep: [], jobs: 4, timeoutS: 180 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const [flag, inline] =
      a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined]
    const value = () => inline ?? argv[++i] ?? ''
    if (flag === '--grep' || flag === '-g') o.grep.push(value())
    else if (flag === '--jobs' || flag === '-j') o.jobs = Math.max(1, Number(value()) || availableParallelism())
    else if (flag === '--timeout' || flag === '-t') o.timeoutS = Number(value()) || o.timeoutS
    else if (/\.tsx?$/.test(a) && existsSync(join(ROOT, a))) o.files.push(relative(ROOT, join(ROOT, a)))
    else {
      process.stderr.write(`npm test: unknown argument ${a} (test files, --grep <re>, --jobs <n>, --timeout <s>)\n`)
      process.exit(2)
    }
  }
  return o
}

const opts = parseArgs(process.argv.slice(2))
const all = [...testFiles('backend/test'), ...testFiles('frontend/test')].sort()
const files =
  opts.files.length > 0 ? opts.files : [...SLOW_FIRST.filter((f) => all.includes(f)), ...all.filter((f) => !SLOW_FIRST.includes(f))]

const built = await buildTests()
process.stdout.write(`TAP version 14\n# compiled ${built.files} files into .test-build/ in ${built.ms} ms\n`)

const env = {
  ...process.env,
  TAP: '1',
  TAP_TIMEOUT: String(opts.timeoutS),
  ...(opts.grep.length > 0 ? { TAP_GREP: opts.grep.join('\n') } : {}),
}
const totals = { total: 0, pass: 0, fail: 0, skip: 0, todo: 0 }
const failedFiles = []
let n = 0

/**
 * the assertions of a TAP stream, subtests excluded (as tap counts them): a subtest is a child parser whose
 * summary point the parent also counts, so each parser adds its points less those of its children
 */
function countLeaves(parser) {
  const c = { total: 0, pass: 0, fail: 0, skip: 0, todo: 0 }
  const attach = (p) => {
    const kids = { total: 0, pass: 0, fail: 0 }
    p.on('child', (child) => {
      attach(child)
      child.on('complete', (r) => {
        kids.total++
        if (r.ok) kids.pass++
        else kids.fail++
      })
    })
    p.on('complete', (r) => {
      c.total += r.count - kids.total
      c.pass += r.pass - kids.pass - r.skip - r.todo // tap-parser counts a skipped or todo point as passed
      c.fail += r.fail - kids.fail
      c.skip += r.skip
      c.todo += r.todo
    })
  }
  attach(parser)
  return c
}

/** runs one compiled test file; resolves with its TAP output, whether it passed and its counts */
function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(process.execPath, ['--enable-source-maps', compiledPath(file)], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const parser = new Parser()
    const counts = countLeaves(parser)
    let out = ''
    let timedOut = false
    const timer = setTimeout(
      () => {
        timedOut = true
        child.kill('SIGKILL')
      },
      (opts.timeoutS + 5) * 1000,
    )
    child.stdout.on('data', (d) => {
      out += d
      parser.write(d)
    })
    child.stderr.on('data', (d) => (out += d))
    child.on('error', (err) => (out += `\n# could not start: ${err.message}\n`))
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      parser.end()
      const r = parser.results
      const ms = Date.now() - started
      const ok = code === 0 && !timedOut && r.ok
      const why = timedOut ? `timed out after ${opts.timeoutS} s` : code !== 0 ? `exit ${code ?? signal}` : r.ok ? '' : 'failed assertions'
      resolve({ file, out, ok, why, ms, counts })
    })
  })
}

function report(res) {
  n++
  for (const k of Object.keys(totals)) totals[k] += res.counts[k]
  if (!res.ok) {
    failedFiles.push(res.file)
    if (res.counts.fail === 0) totals.fail++ // a crash or a timeout with no failed assertion still fails the run
  }
  const body = res.out
    .replace(/\n$/, '')
    .split('\n')
    .map((l) => (l ? `    ${l}` : l))
    .join('\n')
  process.stdout.write(
    `# Subtest: ${res.file}\n${body}\n${res.ok ? 'ok' : 'not ok'} ${n} - ${res.file}${res.why ? ` (${res.why})` : ''} # time=${res.ms}ms\n\n`,
  )
}

const t0 = Date.now()
const queue = [...files]
await Promise.all(
  Array.from({ length: Math.min(opts.jobs, queue.length) }, async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) report(await runFile(f))
  }),
)
process.stdout.write(`1..${n}\n`)
if (failedFiles.length > 0) process.stdout.write(`# failed files:\n${failedFiles.map((f) => `#   ${f}`).join('\n')}\n`)
process.stdout.write(
  `# { total: ${totals.total}, pass: ${totals.pass}, fail: ${totals.fail}, skip: ${totals.skip}, todo: ${totals.todo} }\n# time=${Date.now() - t0}ms\n`,
)
process.exit(failedFiles.length > 0 ? 1 : 0)
