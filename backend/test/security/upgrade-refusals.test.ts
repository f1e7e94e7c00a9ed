/**
 * Upgrades refused before the handshake (shutdown 503, overload 503) are answered and their TCP socket is
 * closed at once: a refused dashboard neither keeps a shutting-down process alive nor holds a socket open.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { startTestApp } from '../helpers/app.ts'
import { seedPGliteDataDir } from '../helpers/db.ts'
import { freePort, spawnGateway } from '../helpers/process.ts'
import { firstMessage, until } from '../streaming/helpers.ts'

/**
 * a raw upgrade request; resolves with the status line and whether the server closed the socket within `ms`.
 * An accepted upgrade (101) resolves at once (closed: false): only a refusal is watched for its close, so an
 * attempt that lands just before the drain begins does not spend the whole drain waiting out `ms`.
 */
function rawUpgrade(
  port: number,
  ms: number,
  headers: Record<string, string> = {},
): Promise<{ status: number; closed: boolean; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    let buf = ''
    let status = 0
    const timer = setTimeout(() => resolve({ status, closed: false, socket: s }), ms)
    s.on('data', (d) => {
      buf += d.toString('latin1')
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf)
      if (m) status = Number(m[1])
      if (status === 101) {
        clearTimeout(timer)
        resolve({ status, closed: false, socket: s })
      }
    })
    s.on('error', () => {})
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ status, closed: true, socket: s })
    })
    s.on('connect', () => {
      const extra = Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('')
      s.write(
        `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`,
      )
    })
    s.once('error', reject)
  })
}

t.test('during the SIGTERM drain a reconnecting client is answered and the process exits 0 well before the kill', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'lnm-gw-proc-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  // an already-migrated embedded database: migrating a fresh one takes minutes on a loaded 2-core machine
  await seedPGliteDataDir(dataDir)
  const port = await freePort()
  const g = spawnGateway({ DATA_DIR: dataDir, PORT: String(port), SIM_PORT: '0', SHUTDOWN_DRAIN_MS: '1500' })
  t.teardown(() => g.kill('SIGKILL'))
  await g.waitFor(/listening on/, 120_000)
  const login = await fetch(`http://127.0.0.1:${port}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'demo', password: 'demo' }),
  })
  const { accessToken } = (await login.json()) as { accessToken: string }
  // three open sockets: the drain spreads their closing over SHUTDOWN_DRAIN_MS (1.5 s), and the client reconnects meanwhile
  const sockets = [0, 1, 2].map(() => new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${accessToken}` } }))
  await Promise.all(sockets.map(firstMessage))
  t.teardown(() => sockets.forEach((ws) => ws.terminate()))
  g.kill('SIGTERM')
  // ask until the server refuses new upgrades (the drain has begun) or has exited (too late to observe it); a
  // connection error while the process lives (one attempt reset as the signal lands) is noted and asked again
  let refused = null as Awaited<ReturnType<typeof rawUpgrade>> | null
  const seen: string[] = []
  const alive = () => g.child.exitCode === null && g.child.signalCode === null
  await until(
    async () => {
      const r = await rawUpgrade(port, 1500).catch((err: NodeJS.ErrnoException) => {
        seen.push(err.code ?? 'error')
        return null
      })
      if (r === null) return !alive()
      seen.push(String(r.status))
      if (r.status === 503) refused = r
      else r.socket.destroy()
      return refused !== null
    },
    5000,
    { what: 'an upgrade answered 503 during the drain', stepMs: 50 },
  )
  t.ok(refused, `an upgrade during the drain is answered (503); answers seen: ${seen.join(' ')}`)
  t.equal(refused?.closed, true, 'and its socket is closed by the server within 1.5 s')
  const exit = await g.exited
  t.equal(exit.code, 0, `exit code 0 (got ${exit.code}, signal ${exit.signal}; stderr: ${g.stderr().slice(-300)})`)
  t.ok(exit.ms < 7000, `exited in ${exit.ms} ms, well before the 10 s kill`)
})

t.test('under pressure a refused upgrade is answered 503 and its socket closed', async (t) => {
  // a 200 ms warm-up instead of 5 s: this app is already listening, the start-up stall it covers is over
  const g = await startTestApp(t, { LOG_LEVEL: 'warn', MAX_EVENT_LOOP_DELAY_MS: '50' }, { pressureWarmupMs: 200 })
  const port = (g.app.server.address() as { port: number }).port
  // the gateway ignores pressure for 200 ms after start (warm-up): stall until an upgrade is refused, bounded
  const warm = Date.now() + 4000
  let r: Awaited<ReturnType<typeof rawUpgrade>> | null = null
  while (Date.now() < warm) {
    // stall this process's event loop (the app runs in it) past MAX_EVENT_LOOP_DELAY_MS, then ask for an upgrade
    const end = Date.now() + 400
    while (Date.now() < end) {
      /* busy */
    }
    await new Promise((res) => setTimeout(res, 10))
    r = await rawUpgrade(port, 1500)
    r.socket.destroy()
    if (r.status === 503) break
  }
  t.equal(r?.status, 503, 'an upgrade while the event loop lags is refused with 503')
  t.equal(r?.closed, true, 'and the server closed the refused socket within 1.5 s')
})
