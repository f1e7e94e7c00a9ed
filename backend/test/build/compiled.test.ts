/**
 * Production runs the compiled gateway (scripts/build-backend.mjs → dist/backend/*.js) with plain node.
 * Built here into a directory of its own, then started twice on one DATA_DIR: the first start creates
 * the embedded database and migrates it (in the migration worker, which must be found beside the bundle),
 * the second finds it up to date.
 */
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildBackend } from '../../../scripts/build-backend.mjs'
import { freePort, ROOT, spawnGateway } from '../helpers/process.ts'

t.test('the compiled bundle starts, migrates a fresh database, serves, restarts on it', async (t) => {
  const outdir = join('dist', `backend-test-${process.pid}`)
  t.teardown(() => rmSync(join(ROOT, outdir), { recursive: true, force: true }))
  await buildBackend({ quiet: true, outdir })
  t.ok(existsSync(join(ROOT, outdir, 'server.js')), 'server.js is built')
  t.ok(existsSync(join(ROOT, outdir, 'migrate-worker.js')), 'the migration worker is built beside it')
  // Prisma's query compiler: read from a .wasm file beside the bundle, not from its 4.4 MB base64 module
  const bundle = readFileSync(join(ROOT, outdir, 'server.js'), 'utf8')
  t.notMatch(bundle, /wasm-base64/, 'the bundle does not import the base64 query compiler module')
  const wasmFile = readdirSync(join(ROOT, outdir)).find((f) => /^query_compiler_.*\.wasm$/.test(f))
  t.ok(wasmFile && bundle.includes(`./${wasmFile}`), `the bundle loads ${wasmFile} written beside it`)
  // Node's global WebAssembly: @types/node 20 does not declare it, and the backend's types have no DOM lib
  const wasm = (globalThis as unknown as { WebAssembly: { validate(bytes: Uint8Array): boolean } }).WebAssembly
  t.ok(wasmFile && wasm.validate(readFileSync(join(ROOT, outdir, wasmFile))), 'it is valid WebAssembly')
  // loaded on demand only: ioredis (REDIS_URL), pino-pretty (pretty logs), each database's driver (its kind)
  for (const pkg of ['ioredis', 'pino-pretty', '@electric-sql/pglite', 'pglite-prisma-adapter', '@prisma/adapter-pg']) {
    t.notMatch(bundle, new RegExp(`^import [^;]*from "${pkg}";`, 'm'), `${pkg} is not a static import of the bundle`)
  }

  const dataDir = mkdtempSync(join(tmpdir(), 'lnm-gw-compiled-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const entry = join(ROOT, outdir, 'server.js')
  for (const round of ['fresh database', 'up-to-date database']) {
    const port = await freePort()
    const g = spawnGateway({ DATA_DIR: dataDir, PORT: String(port), SIM_PORT: '0' }, entry)
    t.teardown(() => g.kill('SIGKILL'))
    await g.waitFor(/demo login: demo \/ demo/, 120_000)
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`)
    t.equal(ready.status, 200, `${round}: /health/ready answers 200`)
    const login = await fetch(`http://127.0.0.1:${port}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'demo', password: 'demo' }),
    })
    t.equal(login.status, 200, `${round}: the demo user logs in (the schema is there)`)
    g.kill('SIGTERM')
    t.equal((await g.exited).code, 0, `${round}: SIGTERM → clean exit`)
  }
})
