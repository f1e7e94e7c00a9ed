#!/usr/bin/env node
/**
 * Run by `npm start` before the gateway: compiles the gateway (scripts/build-backend.mjs → dist/backend)
 * when dist/backend is missing or older than backend/, and builds the dashboard (vite build → dist/frontend) when
 * dist/frontend/index.html is missing or older than the newest dashboard source (frontend/src, public,
 * index.html, vite.config.ts, the wire-protocol types),
 * so a fresh clone works even if postinstall skipped the build. Fast no-op otherwise.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { backendNeedsBuild, buildBackend } from './build-backend.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist', 'frontend', 'index.html')
const sources = [
  join(root, 'frontend', 'src'),
  join(root, 'frontend', 'public'),
  join(root, 'frontend', 'index.html'),
  join(root, 'vite.config.ts'),
  join(root, 'backend', 'schemas', 'ws-protocol.ts'),
]

function newest(path) {
  if (!existsSync(path)) return 0
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  let max = 0
  for (const entry of readdirSync(path)) {
    if (entry === 'node_modules' || entry.startsWith('.')) continue
    max = Math.max(max, newest(join(path, entry)))
  }
  return max
}

export function needsBuild() {
  if (!existsSync(out)) return 'dist/frontend/index.html is missing'
  const built = statSync(out).mtimeMs
  const src = Math.max(...sources.map(newest))
  return src > built ? 'frontend sources changed since the last build' : null
}

export function ensureBuilt({ quiet = false } = {}) {
  const reason = needsBuild()
  if (!reason) return true
  const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js')
  if (!existsSync(vite)) {
    process.stderr.write(
      `ensure-built: ${reason}, but vite is not installed (npm install without dev dependencies?); the dashboard will not be served\n`,
    )
    return false
  }
  if (!quiet) process.stdout.write(`ensure-built: ${reason}; building the dashboard…\n`)
  const r = spawnSync(process.execPath, [vite, 'build', '--logLevel', quiet ? 'error' : 'warn'], { cwd: root, stdio: 'inherit' })
  if (r.status !== 0) {
    process.stderr.write('ensure-built: the dashboard build failed\n')
    return false
  }
  return true
}

/** the compiled gateway `npm start` runs; throws when it is missing and cannot be built */
export async function ensureBackendBuilt({ quiet = false } = {}) {
  const reason = backendNeedsBuild()
  if (!reason) return
  if (!quiet) process.stdout.write(`ensure-built: ${reason}; compiling the gateway…\n`)
  await buildBackend({ quiet: true })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    await ensureBackendBuilt()
  } catch (err) {
    process.stderr.write(`ensure-built: cannot compile the gateway: ${err.message}\n`)
    process.exit(1)
  }
  // a failed UI build must not stop the API from starting
  ensureBuilt()
}
