#!/usr/bin/env node
/**
 * `npm test [-- tap args and files…]`: the type check (`tsc -b`) and the tap suites at the same time. The type
 * check emits nothing (noEmit: the suites run the TypeScript sources through tsx), so neither waits for the
 * other: most suites spend their time waiting on timers and sockets, and the ~20 s of type checking fits in
 * the CPU they leave idle. tsc runs at a lower priority (nice 10) so the suites' timing is disturbed as little
 * as possible; its output is printed after tap's, and the exit code is non-zero if either failed.
 */
import { spawn } from 'node:child_process'
import { setPriority } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = (name) => join(root, 'node_modules', '.bin', name)

/** run a command; resolves with its exit code and, when `capture`, its output */
function run(cmd, args, { capture = false, nice = 0 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: process.env, stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit' })
    if (nice && child.pid !== undefined) {
      try {
        setPriority(child.pid, nice)
      } catch {
        /* not permitted: runs at normal priority */
      }
    }
    let out = ''
    child.stdout?.on('data', (d) => (out += d))
    child.stderr?.on('data', (d) => (out += d))
    child.on('error', (err) => resolve({ code: 1, out: `${cmd}: ${err.message}\n` }))
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), out }))
  })
}

const t0 = Date.now()
const typecheck = run(bin('tsc'), ['-b'], { capture: true, nice: 10 }).then((r) => ({ ...r, ms: Date.now() - t0 }))
const tap = await run(bin('tap'), process.argv.slice(2))
const tc = await typecheck
if (tc.code !== 0) process.stdout.write(`\n# typecheck (tsc -b) FAILED:\n${tc.out}`)
else process.stdout.write(`# typecheck (tsc -b): ok in ${(tc.ms / 1000).toFixed(1)} s, alongside the suites\n`)
process.exit(tc.code !== 0 ? tc.code : tap.code)
