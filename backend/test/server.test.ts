import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { compiledServer } from './helpers/compiled.ts'
import { seedPGliteDataDir } from './helpers/db.ts'
import { freePort, spawnGateway } from './helpers/process.ts'
import { firstMessage } from './streaming/helpers.ts'

/** a first start creates and migrates the embedded database through tsx: on a shared 2-core machine that took 30 s */
const START_MS = 120_000

/*
 * The first start runs the TypeScript entry (`npm run dev`): on a fresh DATA_DIR it also proves the migration
 * worker boots under tsx. The other processes here test behaviour that does not depend on how the entry was
 * loaded (refusal, restart, signals, configuration errors): they run the compiled bundle, as `npm start` does,
 * without tsx transpiling the backend at every spawn. build/compiled.test.ts covers the bundle's own start-up.
 */

/*
 * The entry-point subtest (mostly waiting on its processes' start-ups) and the configuration-error one run side by
 * side; the second-signal subtest runs alone after them.
 */
t.jobs = 2

async function json(url: string, init?: RequestInit) {
  const r = await fetch(url, init)
  return { status: r.status, body: (await r.json().catch(() => null)) as any }
}

t.test('the entry point: starts, serves, survives a restart with its users, refuses a second instance, shuts down in time', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'lnm-gw-proc-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const port = await freePort()
  const env = { DATA_DIR: dataDir, PORT: String(port), SIM_PORT: '0' }
  const base = `http://127.0.0.1:${port}`

  const first = spawnGateway(env)
  t.teardown(() => first.kill('SIGKILL'))
  await first.waitFor(/demo login: demo \/ demo/, START_MS)
  t.match(first.stdout(), new RegExp(`listening on http://127\\.0\\.0\\.1:${port}`), 'prints the URL')
  t.match(first.stdout(), /mode: demo/, 'prints the mode')
  t.equal((await json(`${base}/health/ready`)).status, 200, '/health/ready answers 200')
  const reg = await json(`${base}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'newcomer', password: 'fresh clone pass 1' }),
  })
  t.equal(reg.status, 201, 'a new user can register')
  const demo = await json(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'demo', password: 'demo' }),
  })
  t.equal(demo.status, 200, 'the demo user can log in')

  const compiled = await compiledServer()
  const second = spawnGateway({ ...env, PORT: String(await freePort()) }, compiled)
  const r2 = await second.exited
  t.equal(r2.code, 1, 'a second gateway on the same DATA_DIR exits with 1')
  t.match(second.stderr(), /DATA_DIR .*in use/i, 'with a clear message')

  // a socket is open when the signal arrives: it is closed with 1001
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${demo.body.accessToken}` } })
  await firstMessage(ws)
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  first.kill('SIGTERM')
  const exit = await first.exited
  t.equal(exit.code, 0, 'SIGTERM → clean exit')
  t.ok(exit.ms < 10_000, `exited within 10 s (${exit.ms} ms)`)
  t.equal(await closed, 1001, 'open sockets are closed with 1001')

  const again = spawnGateway(env, compiled)
  t.teardown(() => again.kill('SIGKILL'))
  await again.waitFor(/listening on/, START_MS)
  const login = await json(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'newcomer', password: 'fresh clone pass 1' }),
  })
  t.equal(login.status, 200, 'after a restart the user is still there')
  again.kill('SIGTERM')
  t.equal((await again.exited).code, 0)
})

t.test('invalid configuration stops start-up with one clear line', async (t) => {
  const compiled = await compiledServer()
  // two independent processes, started together: each spends about a second loading the bundle before it refuses
  const g = spawnGateway({ PORT: 'not-a-port', DATA_DIR: mkdtempSync(join(tmpdir(), 'lnm-gw-proc-')) }, compiled)
  const p = spawnGateway({ NODE_ENV: 'production', DATA_DIR: mkdtempSync(join(tmpdir(), 'lnm-gw-proc-')) }, compiled)
  const r = await g.exited
  t.equal(r.code, 1, 'exit code 1')
  t.match(g.stderr(), /^lnm-gateway: invalid configuration: PORT /m, 'names the variable')
  t.equal(g.stderr().trim().split('\n').length, 1, 'one line')
  t.equal((await p.exited).code, 1, 'production without secrets refuses to start')
  t.match(p.stderr(), /JWT_SECRET is required/)
})

// alone (after the two above): it times an exit in milliseconds
t.test('a second signal exits at once', { buffered: false }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'lnm-gw-proc-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  // a migrated copy: a first start (the first test) creates and migrates the database, which costs seconds
  await seedPGliteDataDir(dataDir)
  const port = await freePort()
  // two open sockets and an 8 s drain window: a graceful shutdown takes at least 4 s
  // LOG_LEVEL info: the gateway logs when its graceful shutdown begins
  const g = spawnGateway(
    { DATA_DIR: dataDir, PORT: String(port), SIM_PORT: '0', SHUTDOWN_DRAIN_MS: '8000', LOG_LEVEL: 'info' },
    await compiledServer(),
  )
  t.teardown(() => g.kill('SIGKILL'))
  await g.waitFor(/listening on/, START_MS)
  const login = await json(`http://127.0.0.1:${port}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'demo', password: 'demo' }),
  })
  const sockets = [0, 1].map(
    () => new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${login.body.accessToken}` } }),
  )
  await Promise.all(sockets.map(firstMessage))
  t.teardown(() => sockets.forEach((ws) => ws.terminate()))
  g.kill('SIGTERM')
  await g.waitFor(/"msg":"shutting down"/, 10_000) // the graceful shutdown has begun
  g.child.kill('SIGTERM')
  const r = await g.exited
  t.ok(r.ms < 2500, `second signal: exit in ${r.ms} ms, before the 4 s graceful drain`)
  t.not(r.code, 0, `a non-zero exit (${r.code}): the shutdown was cut short`)
})
