#!/usr/bin/env node
/**
 * `prisma generate`, offline. The Prisma 7 CLI insists on locating its native schema engine before
 * any command, and downloads it when missing (fails without network). `generate` never runs it, so
 * any existing file will do: we point PRISMA_SCHEMA_ENGINE_BINARY at the node binary unless the
 * caller set it. Migrations do not need the native engine at all (see backend/db/schema-engine.ts).
 *
 * Output: backend/generated/prisma (gitignored), from prisma/schema.prisma via prisma.config.ts.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(join(root, 'package.json'))

let cli
try {
  cli = join(dirname(require.resolve('prisma/package.json')), 'build', 'index.js')
} catch {
  console.error('prisma-generate: the `prisma` package is not installed (run `npm install`)')
  process.exit(1)
}

const env = { ...process.env }
if (!env.PRISMA_SCHEMA_ENGINE_BINARY || !existsSync(env.PRISMA_SCHEMA_ENGINE_BINARY)) {
  env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath
}
// no update check / telemetry round-trips
env.CHECKPOINT_DISABLE ??= '1'
env.PRISMA_HIDE_UPDATE_MESSAGE ??= '1'

const started = Date.now()
const res = spawnSync(process.execPath, [cli, 'generate', ...process.argv.slice(2)], { cwd: root, env, stdio: 'inherit' })
if (res.error) {
  console.error(`prisma-generate: could not run the Prisma CLI: ${res.error.message}`)
  process.exit(1)
}
if (res.status !== 0) {
  console.error(`prisma-generate: \`prisma generate\` failed (exit ${res.status ?? res.signal})`)
  process.exit(res.status || 1)
}
if (!existsSync(join(root, 'backend', 'generated', 'prisma', 'client.ts'))) {
  console.error('prisma-generate: generate reported success but backend/generated/prisma/client.ts is missing')
  process.exit(1)
}
console.log(`prisma-generate: client ready in backend/generated/prisma (${Date.now() - started} ms)`)
