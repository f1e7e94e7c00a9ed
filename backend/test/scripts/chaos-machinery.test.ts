/**
 * The chaos suite's machinery (scripts/chaos/), small and against real parts: the observer judges real frames
 * from a real WebSocket server as the dashboard would (stale, regression, duplicate, replay after reconnect);
 * the load generators reconnect sockets the server drops; the chaos simulator counts every request per key,
 * refused ones too; the suite's own PostgreSQL (initdb/pg_ctl, run as `postgres`) and redis-server start,
 * stop and start again on their port. The cells themselves run in `npm run chaos -- --short` (.ci/run).
 */
import t from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WebSocketServer, type WebSocket } from 'ws'
import pg from 'pg'
import { Observer } from '../../../scripts/chaos/observer.ts'
import { Checks, PgInstance, RedisServer, postgresBinDir, startChaosSim, waitFor } from '../../../scripts/chaos/lib.ts'
import { LoadGen } from '../../../scripts/lib/loadgen.ts'
import { makeSimAccounts } from '../../../scripts/lib/servers.ts'

async function wsServer(onConn: (ws: WebSocket, n: number) => void): Promise<{ url: string; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((r) => wss.once('listening', () => r()))
  let n = 0
  wss.on('connection', (ws) => onConn(ws, n++))
  const port = (wss.address() as { port: number }).port
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate()
        wss.close(() => r())
      }),
  }
}

t.test('checks and bounded waits', async (t) => {
  const c = new Checks()
  t.equal(c.held, false, 'no check: not held')
  c.ok(true, 'a', 'x')
  t.equal(c.held, true, 'all checks passed: held')
  c.ok(false, 'b', 'y')
  t.equal(c.held, false, 'one failed check: not held')
  t.same(c.failed(), ['b (y)'], 'the failed check is named with its detail')
  t.equal(await waitFor(() => false, 150, 20), null, 'waitFor gives null when its deadline passes')
  t.ok((await waitFor(() => true, 150)) !== null, 'waitFor returns the elapsed time when the condition holds')
})

t.test('observer: judges frames as the dashboard would, across a reconnect', async (t) => {
  const now = Date.now()
  const du = (channel: string, epoch: number, seq: number, sourceTs: number) =>
    JSON.stringify({ type: 'data_update', channel, epoch, seq, sourceTs, ts: Date.now(), source: 'simulator', data: {} })
  const srv = await wsServer((ws, n) => {
    ws.once('message', () => {
      ws.send(JSON.stringify({ type: 'connection', connectionId: 'c', serverTime: Date.now() }))
      if (n === 0) {
        ws.send(du('ticker', 1, 1, now))
        ws.send(du('ticker', 1, 2, now + 1))
        ws.send(du('ticker', 1, 2, now + 1)) // duplicate on one connection
        ws.send(du('ticker', 1, 0, now - 1)) // regression: same epoch, lower seq, never seen
        ws.send(du('account', 1, 1, now - 60_000)) // stale: a minute old with STALE 30 s
        ws.send(JSON.stringify({ type: 'fresh', ts: Date.now(), channels: [{ channel: 'ticker', epoch: 1, seq: 2, sourceTs: now + 5 }] }))
        ws.send(JSON.stringify({ type: 'status', upstream: 'down', lastSuccessTs: null, reason: 'upstream_unavailable', scope: 'account' }))
        setTimeout(() => ws.close(1001, 'shutdown'), 100)
      } else {
        ws.send(du('ticker', 1, 2, now + 1)) // the replay of what is shown after a reconnect: allowed
        ws.send(du('ticker', 2, 1, now + 10)) // another epoch, newer: allowed
      }
    })
  })
  t.teardown(srv.close)
  const o = new Observer({ urls: [srv.url], token: 'x', label: 'obs', staleAfterMs: 30_000, backoff: { baseMs: 50, capMs: 100 } })
  o.phase = 'test'
  o.start()
  t.teardown(() => o.stop())
  const ok = await waitFor(() => o.stats.connects === 2 && o.shown.get('ticker')?.epoch === 2, 10_000, 20)
  t.ok(ok !== null, 'the observer reconnected after the 1001 and read the second connection')
  t.equal(o.stats.dataUpdates, 7, 'every data_update was read')
  t.equal(o.stats.duplicates, 1, 'the same frame twice on one connection is a duplicate')
  t.equal(o.stats.regressions, 1, 'a lower seq of the shown epoch is a regression; the replay after reconnect is not')
  t.equal(o.stats.staleShown, 1, 'a data_update older than STALE_AFTER_MS is counted as stale shown')
  t.ok(o.stats.maxAgeMs >= 60_000, 'the oldest age is kept')
  t.same(o.stats.closes, { 1001: 1 }, 'the close code of the dropped connection is counted')
  t.equal(o.stats.freshFrames, 1, 'fresh frames are read')
  t.equal(o.newestTs.get('ticker'), now + 10, 'the newest sourceTs per channel')
  t.same(o.stats.statusReasons, { 'account down upstream_unavailable': 1 }, 'status reasons are counted')
  t.same(o.stats.byPhase.test, { regressions: 1, duplicates: 1, staleShown: 1 }, 'findings are attributed to the phase')
})

t.test('load generators reconnect sockets the server drops, with backoff', async (t) => {
  let drops = 0
  const srv = await wsServer((ws, n) => {
    if (n < 5)
      setTimeout(() => {
        drops++
        ws.close(1001, 'bye')
      }, 300)
  })
  t.teardown(srv.close)
  const lg = await LoadGen.start(1, false)
  t.teardown(() => lg.stop())
  const c = await lg.connect({ kind: 'ws', url: srv.url, count: 5, reconnect: { attempts: 3, baseMs: 50, capMs: 200 } })
  t.equal(c.connected, 5, 'five connected')
  const back = await waitFor(async () => (await lg.report()).reconnects.done === 5, 10_000, 100)
  t.ok(back !== null, 'all five came back after being dropped')
  const r = await lg.report()
  t.equal(drops, 5, 'the server dropped each once')
  t.equal(r.closedByCode['1001'], 5, 'the drops are counted by close code')
  t.equal(r.open, 5, 'five open again')
  t.ok(r.reconnects.lastDoneAt > 0, 'the time of the last reconnect is kept')
  const closed = await lg.closeAll(5000)
  t.equal(closed.cleanCloses, 5, 'a close the client asked for is not reconnected')
})

t.test('chaos simulator: counts every request per key per sliding second, refused ones too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnm-chaos-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const sim = await startChaosSim(dir, makeSimAccounts(1, 'machinery'))
  t.teardown(() => sim.stop())
  const t0 = Date.now()
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await fetch(`${sim.url}/futures/ticker`)).status)
  t.same(statuses, [200, 429, 429], 'the documented public limit (1/s) is enforced')
  const r = await sim.rates(t0)
  t.equal(r.perKey['(public)']?.maxPerSec, 3, 'all three requests are counted in one second, refused ones included')
  t.same(r.byStatus, { 200: 1, 429: 2 }, 'by status')
  await sim.faults({ outage: true })
  t.equal((await fetch(`${sim.url}/futures/ticker`)).status, 503, 'faults are set over IPC (outage → 503)')
  await sim.reset()
  // (the public bucket refills within a second; a refused request does not take a token)
  t.ok(
    (await waitFor(async () => (await fetch(`${sim.url}/futures/ticker`)).status === 200, 3000, 100)) !== null,
    'and reset (200 again once the public bucket refills, not 503)',
  )
})

t.test(
  'redis-server of the suite: starts, dies, starts again on its port',
  { skip: existsSync('/usr/bin/redis-server') ? false : 'redis-server is not installed' },
  async (t) => {
    const r = await RedisServer.create()
    t.teardown(() => r.kill())
    const ping = () => r.ping()
    t.equal(ping(), 'PONG', 'answers')
    await r.kill()
    t.equal(ping(), 'down', 'gone after kill')
    await r.start()
    t.equal(ping(), 'PONG', 'answers again on the same port')
  },
)

const pgBin = postgresBinDir()
t.test(
  'PostgreSQL of the suite: initdb as postgres, stop and start on its port',
  { skip: pgBin ? false : 'no PostgreSQL binaries under /usr/lib/postgresql' },
  async (t) => {
    const inst = await PgInstance.create()
    t.teardown(() => inst.destroy())
    const url = inst.createDb('machinery')
    const q = async () => {
      const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
      try {
        await c.connect()
        return (await c.query('select 1 as one')).rows[0].one as number
      } catch (e) {
        return (e as Error).message
      } finally {
        await c.end().catch(() => {})
      }
    }
    t.equal(await q(), 1, 'a fresh database answers on the free port')
    inst.stop('fast')
    t.not(await q(), 1, 'refused while stopped')
    inst.start()
    t.equal(await q(), 1, 'answers again after start')
  },
)
