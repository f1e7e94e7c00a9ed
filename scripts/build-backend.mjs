#!/usr/bin/env node
/**
 * Compile the gateway for production: esbuild bundles backend/server.ts (and the migration worker,
 * backend/db/migrate-worker.ts) with the generated Prisma client into dist/backend/*.js, leaving the
 * npm packages as imports. `npm start` runs that JavaScript with plain node: no TypeScript loader, no
 * per-module transform at start. `tsx` stays for development and tests.
 *
 * Run by postinstall (after prisma generate), by `npm run build`, by the Dockerfile's build stage and,
 * when the output is missing or older than the sources, by scripts/ensure-built.mjs before `npm start`.
 * esbuild is installed with tsx (a dependency), so this also works without dev dependencies.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
export const BACKEND_OUT = join(root, 'dist', 'backend', 'server.js')
const ENTRIES = { server: 'backend/server.ts', 'migrate-worker': 'backend/db/migrate-worker.ts' }

function newest(path) {
  if (!existsSync(path)) return 0
  const st = statSync(path)
  if (!st.isDirectory()) return path.endsWith('.ts') ? st.mtimeMs : 0
  let max = 0
  for (const entry of readdirSync(path)) {
    if (entry === 'test' || entry === 'node_modules' || entry.startsWith('.')) continue
    max = Math.max(max, newest(join(path, entry)))
  }
  return max
}

/** why the bundle must be (re)built, or null when it is up to date */
export function backendNeedsBuild() {
  for (const name of Object.keys(ENTRIES)) {
    if (!existsSync(join(root, 'dist', 'backend', `${name}.js`))) return `dist/backend/${name}.js is missing`
  }
  return newest(join(root, 'backend')) > statSync(BACKEND_OUT).mtimeMs ? 'backend sources changed since the last build' : null
}

/** `outdir` (relative to the repository) is for tests; the default is what `npm start` runs */
export async function buildBackend({ quiet = false, outdir = 'dist/backend' } = {}) {
  let esbuild
  try {
    esbuild = await import('esbuild')
  } catch {
    throw new Error('esbuild is not installed (it comes with tsx): run `npm install`')
  }
  const started = Date.now()
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: ENTRIES,
    outdir,
    bundle: true,
    // npm packages stay imports (resolved from node_modules at run time, as with tsx)
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: true,
    legalComments: 'none',
    logLevel: quiet ? 'error' : 'warning',
  })
  if (!quiet) console.log(`build-backend: ${outdir}/{${Object.keys(ENTRIES).join(',')}}.js in ${Date.now() - started} ms`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  buildBackend().catch((err) => {
    console.error(`build-backend: FAILED: ${err.message}`)
    process.exit(1)
  })
}
