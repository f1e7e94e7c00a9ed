/**
 * The compiled gateway (scripts/build-backend.mjs → server.js), for tests that spawn the real process but
 * are not about the TypeScript entry: started with plain node it skips tsx's transpiling of the whole
 * backend on every spawn (≈ 1 s of CPU each). `npm test` does not build dist/: dist/backend/server.js is used
 * when it is up to date with backend/; otherwise each test process builds its own copy from the current
 * sources (esbuild, well under a second), once, into dist/backend-spawn-<pid>, removed when the process
 * exits — so a stale or concurrently rebuilt dist/ is never what a test runs.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { backendNeedsBuild, buildBackend } from '../../../scripts/build-backend.mjs'
import { ROOT } from './process.ts'

let built: Promise<string> | undefined

/** absolute path of a server.js compiled from the current sources (built on the first call when needed) */
export function compiledServer(): Promise<string> {
  built ??= (async () => {
    if (backendNeedsBuild() === null) return join(ROOT, 'dist', 'backend', 'server.js')
    const outdir = join('dist', `backend-spawn-${process.pid}`)
    process.once('exit', () => rmSync(join(ROOT, outdir), { recursive: true, force: true }))
    await buildBackend({ quiet: true, outdir })
    return join(ROOT, outdir, 'server.js')
  })()
  built.catch(() => {
    built = undefined
  })
  return built
}
