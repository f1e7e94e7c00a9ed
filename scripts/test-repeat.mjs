#!/usr/bin/env node
/**
 * `npm run test:repeat -- [--runs 20] [--out FILE] [npm test args and files…]`: the suite (or the files given)
 * run again and again, to show it gives the same result every time. Each run is a fresh `npm test` runner
 * (scripts/test.mjs: compile, then every file in its own process); its
 * summary (`# { total, pass, fail, skip }`), its wall time and the names of failing files are recorded.
 * Prints one line per run and a verdict; exits 1 when any run failed or a run's counts differ from the
 * first one's. `--out` writes the runs as JSON (after every run, so an interrupted loop keeps what it did).
 *
 *   npm run test:repeat -- --runs 20                      # the whole suite, 20 times
 *   npm run test:repeat -- --runs 20 backend/test/streaming/private-push.test.ts
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const argv = process.argv.slice(2)
let runs = 20
let out = null
const testArgs = []
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--runs') runs = Number(argv[++i])
  else if (argv[i] === '--out') out = argv[++i]
  else testArgs.push(argv[i])
}
if (!Number.isInteger(runs) || runs < 1) {
  process.stderr.write('--runs needs a whole number ≥ 1\n')
  process.exit(2)
}

const runner = join(root, 'scripts', 'test.mjs')

/** one run: its summary counts, wall time, the machine's load when it started and the files that failed */
function runOnce() {
  return new Promise((resolve) => {
    const t0 = Date.now()
    const load1 = Number(loadavg()[0].toFixed(2))
    const child = spawn(process.execPath, [runner, ...testArgs], { cwd: root, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let text = ''
    child.stdout.on('data', (d) => (text += d))
    child.stderr.on('data', (d) => (text += d))
    child.on('close', (code) => {
      const m = text.match(/^# (\{ total: .*\})$/m)
      const counts = {}
      if (m) for (const [, k, v] of m[1].matchAll(/(\w+): (\d+)/g)) counts[k] = Number(v)
      const failedFiles = [...text.matchAll(/^not ok \d+ - (\S+)/gm)].map((x) => x[1])
      // every failed assertion with the lines that explain it (its YAML block)
      const lines = text.split('\n')
      const failures = lines.flatMap((l, i) => (/^\s*not ok /.test(l) ? [lines.slice(i, i + 25).join('\n')] : [])).slice(0, 20)
      resolve({ code, wallS: (Date.now() - t0) / 1000, load1, counts, failedFiles, ...(code === 0 ? {} : { failures }) })
    })
  })
}

const results = []
const started = new Date().toISOString()
/** written after every run, so an interrupted loop keeps the runs it made */
const save = () =>
  out &&
  writeFileSync(out, JSON.stringify({ kind: 'lnm-gateway test:repeat', at: started, runsAsked: runs, testArgs, runs: results }, null, 2))
for (let i = 1; i <= runs; i++) {
  const r = await runOnce()
  results.push(r)
  save()
  const c = r.counts
  process.stdout.write(
    `run ${String(i).padStart(2)}/${runs}: exit ${r.code}, ${c.total ?? '?'} assertions, ${c.pass ?? '?'} pass, ${c.fail ?? 0} fail, ` +
      `${c.skip ?? 0} skip, ${r.wallS.toFixed(1)} s (load ${r.load1})${r.failedFiles.length ? `, failed: ${r.failedFiles.join(' ')}` : ''}\n`,
  )
}
const key = (r) => JSON.stringify({ total: r.counts.total, pass: r.counts.pass, fail: r.counts.fail ?? 0, skip: r.counts.skip ?? 0 })
const same = results.every((r) => r.code === 0 && key(r) === key(results[0]))
const walls = results.map((r) => r.wallS).sort((a, b) => a - b)
process.stdout.write(
  `\n${same ? 'same result' : 'DIFFERENT results'} in ${runs} runs: ${key(results[0])}; wall min ${walls[0].toFixed(1)} s, ` +
    `median ${walls[Math.floor(walls.length / 2)].toFixed(1)} s, max ${walls[walls.length - 1].toFixed(1)} s\n`,
)
if (out)
  writeFileSync(out, JSON.stringify({ kind: 'lnm-gateway test:repeat', at: new Date().toISOString(), testArgs, runs: results }, null, 2))
process.exit(same ? 0 : 1)
