/**
 * Thousands of random and malformed frames over several sockets (bad JSON, 1 MB text, binary, unknown
 * types, missing/wrong fields, floods, garbage before auth) while a healthy client keeps receiving on time.
 * The gateway must not crash, must answer or close as the contract says, and must not leak.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import v8 from 'node:v8'
import vm from 'node:vm'
import { startTestApp } from '../helpers/app.ts'
import { WsClient, percentile, sleep, until } from './helpers.ts'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void
const settle = async () => {
  for (let i = 0; i < 3; i++) {
    gc()
    await sleep(50)
  }
}

const rnd = (n: number) => Math.floor(Math.random() * n)
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!
const asciiNoise = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + rnd(95))).join('')

function malformed(): string | Buffer {
  switch (rnd(14)) {
    case 0:
      return asciiNoise(1 + rnd(200))
    case 1:
      return '{"type":"ping","request_id":'
    case 2:
      return JSON.stringify({ type: pick(['subscribe', 'unsubscribe', 'refresh_data', 'ping', 'auth']) })
    case 3:
      return JSON.stringify({ type: asciiNoise(rnd(40)), request_id: asciiNoise(rnd(10)) })
    case 4:
      return JSON.stringify({
        type: 'subscribe',
        request_id: 'x',
        channels: pick([[], ['x'], 'ticker', [1], ['ticker', 'ticker'], null, ['account', 'positions', 'ticker', 'account']]),
      })
    case 5:
      return JSON.stringify({ type: 'ping', request_id: 'r'.repeat(200 + rnd(500)) })
    case 6:
      return JSON.stringify(pick([null, 1, 'str', [], [1, 2], true]))
    case 7:
      return JSON.stringify({ type: 'auth', request_id: 'a', token: pick(['', 'x', asciiNoise(100), 'a.b.c', 't'.repeat(5000)]) })
    case 8:
      return '['.repeat(1000) + ']'.repeat(1000)
    case 9:
      return JSON.stringify({ type: 'ping', request_id: 'p', __proto__: { polluted: true }, constructor: { prototype: { x: 1 } } })
    case 10:
      return Buffer.from(randomBytes(1 + rnd(300)))
    case 11:
      return JSON.stringify({ type: 'refresh_data', request_id: `r${rnd(1e6)}`, userId: 'someone-else' })
    case 12:
      return JSON.stringify({ type: 'ping', request_id: `ok${rnd(1e6)}` })
    default:
      return JSON.stringify({ type: 'subscribe', request_id: `s${rnd(1e6)}`, channels: ['ticker'] })
  }
}

t.test('fuzz: malformed traffic on several sockets; a healthy client stays on time; no leak', async (t) => {
  const g = await startTestApp(t, {
    POLL_INTERVAL_MS: '500',
    TICKER_INTERVAL_MS: '300',
    WS_AUTH_TIMEOUT_MS: '1000',
    SHUTDOWN_DRAIN_MS: '100',
    LOG_LEVEL: 'warn',
    MAX_CONNECTIONS_PER_USER: '100',
  })
  const user = await g.userWithCredentials(0)

  // healthy client: pings every 100 ms (RTT) and data_update lateness
  const healthy = await WsClient.authed(g.wsUrl, user.token)
  await healthy.next((f) => f.type === 'data_update' && f.channel === 'positions', 8000)
  const rtts: number[] = []
  let pinging = true
  const pinger = (async () => {
    let i = 0
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- cleared by the test once the fuzzing is over
    while (pinging) {
      const id = `h${i++}`
      const t0 = Date.now()
      healthy.send({ type: 'ping', request_id: id })
      await healthy.next((f) => f.type === 'pong' && f.request_id === id, 5000)
      rtts.push(Date.now() - t0)
      await sleep(100)
    }
  })()

  // warm up once so lazily-built things exist before the baseline
  const warm = await WsClient.authed(g.wsUrl, user.token)
  warm.ws.send('{bad')
  warm.close()
  await warm.waitClose()
  await until(
    () => {
      const s = g.app.streaming.hub.stats()
      return s.connections === 1 && s.pendingAuth === 0 && s.closing === 0
    },
    5000,
    'the warm-up socket released by the hub',
  )
  await settle()
  const heap0 = process.memoryUsage().heapUsed
  const handles0 = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length
  const base = g.app.streaming.hub.stats()

  const codes = new Map<number, number>()
  let sent = 0
  const TARGET = 20_000
  const deadline = Date.now() + 15_000
  async function fuzzer(id: number) {
    while (sent < TARGET && Date.now() < deadline) {
      const mode = pick(['malformed', 'malformed', 'malformed', 'malformed', 'flood', 'big', 'preauth', 'binary', 'badutf8'] as const)
      let c: WsClient
      try {
        c = mode === 'preauth' ? await WsClient.open(g.wsUrl) : await WsClient.authed(g.wsUrl, user.token)
      } catch {
        await sleep(50)
        continue
      }
      if (mode === 'flood') {
        for (let i = 0; i < 300 && c.ws.readyState === 1; i++, sent++) c.send({ type: 'ping', request_id: `f${id}-${i}` })
      } else if (mode === 'big') {
        c.ws.send('x'.repeat(1024 * 1024))
        sent++
      } else if (mode === 'badutf8') {
        // a text frame that is not UTF-8: ws closes with 1007
        c.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false })
        sent++
      } else if (mode === 'preauth') {
        c.ws.send(malformed())
        sent++
      } else {
        // stay under the rate limit's burst, then move on
        for (let i = 0; i < 30 && c.ws.readyState === 1; i++, sent++) {
          const m = mode === 'binary' ? randomBytes(1 + rnd(64)) : malformed()
          c.ws.send(m, { binary: Buffer.isBuffer(m) })
          if (i % 10 === 9) await sleep(5)
        }
        await sleep(20)
        if (c.ws.readyState === 1) c.close(1000)
      }
      const info = await c.waitClose(5000).catch(() => ({ code: -1, reason: '' }))
      codes.set(info.code, (codes.get(info.code) ?? 0) + 1)
    }
  }
  const t0 = Date.now()
  await Promise.all(Array.from({ length: 6 }, (_, i) => fuzzer(i)))
  const fuzzMs = Date.now() - t0
  pinging = false
  await pinger

  t.comment(
    `fuzz: ${sent} frames over ${[...codes.values()].reduce((a, b) => a + b, 0)} connections in ${fuzzMs} ms; closes by code ${JSON.stringify(Object.fromEntries(codes))}`,
  )
  t.ok(sent >= 3000, `thousands of frames sent (${sent})`)
  t.ok(codes.has(1009) && codes.has(4029) && codes.has(4500), 'the fuzz produced 1009, 4029 and 4500 closes')
  t.notOk(codes.has(1011) || codes.has(-1), 'never an internal error or a socket left hanging')
  const lat = healthy.frames
    .map((f, i) => ({ f, at: healthy.at[i]! }))
    .filter((x) => x.f.type === 'data_update' && x.at >= t0)
    .map((x) => x.at - x.f.ts)
  t.comment(
    `healthy client: ping RTT p50 ${percentile(rtts, 0.5)} p99 ${percentile(rtts, 0.99)} max ${Math.max(...rtts)} ms (n=${rtts.length}); data_update lateness p50 ${percentile(lat, 0.5)} p99 ${percentile(lat, 0.99)} ms (n=${lat.length})`,
  )
  t.equal(healthy.closeInfo, null, 'the healthy client was never disconnected')
  t.ok(lat.length > 0, 'the healthy client kept receiving data updates during the fuzz')
  t.ok(percentile(rtts, 0.5) < 100 && percentile(lat, 0.5) < 100, 'and on time: median ping RTT and frame lateness < 100 ms')
  t.ok(percentile(rtts, 0.99) < 1000 && percentile(lat, 0.99) < 1000, 'p99 < 1 s even on a loaded 2-core machine shared with the fuzzers')
  t.equal(healthy.all((f) => f.type === 'error').length, 0, 'the healthy client saw no error frames')

  t.equal((await g.http('GET', '/health/live')).status, 200, 'the gateway is alive')
  await until(() => g.app.streaming.hub.stats().connections === base.connections, 5000)
  const after = g.app.streaming.hub.stats()
  t.same(
    { c: after.connections, p: after.pendingAuth, s: after.slow, cl: after.closing },
    { c: base.connections, p: 0, s: 0, cl: 0 },
    'no socket state left behind',
  )
  await sleep(300)
  await settle()
  const heap1 = process.memoryUsage().heapUsed
  const handles1 = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length
  t.comment(`heap ${Math.round(heap0 / 1e6)} → ${Math.round(heap1 / 1e6)} MB; handles ${handles0} → ${handles1}`)
  t.ok(heap1 - heap0 < 20e6, 'heap did not grow beyond noise')
  t.ok(handles1 <= handles0 + 3, 'no handle leak')
  healthy.close()
})
