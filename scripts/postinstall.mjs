#!/usr/bin/env node
/**
 * Root postinstall (npm runs it after `npm install` on a clone): generate the Prisma client, compile
 * the gateway to dist/backend (what `npm start` runs), then build the dashboard when its sources and vite are present. Any failure stops the install loudly.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

function run(label, cmd, args) {
  console.log(`postinstall: ${label}`)
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env })
  if (res.error || res.status !== 0) {
    const why = res.error ? res.error.message : `exit ${res.status ?? res.signal}`
    console.error(`\npostinstall: FAILED: ${label} (${why})`)
    process.exit(res.status || 1)
  }
}

run('prisma generate (offline)', process.execPath, [join(root, 'scripts', 'prisma-generate.mjs')])
run('compile the gateway (dist/backend)', process.execPath, [join(root, 'scripts', 'build-backend.mjs')])

const vite = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'vite.cmd' : 'vite')
if (existsSync(join(root, 'frontend', 'index.html')) && existsSync(vite)) {
  run('vite build (dashboard)', vite, ['build'])
} else {
  console.log('postinstall: no frontend/index.html or vite: skipping the dashboard build')
}
