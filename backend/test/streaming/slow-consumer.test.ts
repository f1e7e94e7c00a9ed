/**
 * A dashboard that stops reading (TCP-level pause) while others keep up: the gateway's buffer for it stays
 * bounded by the cap (collapse, then 4008), and the others' frames are not delayed.
 */
import t from 'tap'
import type { Socket } from 'node:net'
import { liveGateway } from './live.ts'
import { WsClient, metricValue, percentile, sleep, until } from './helpers.ts'

const CAP = 256 * 1024

t.test('a client that stops reading is bounded and dropped; others stay on time', async (t) => {
  const positions = Array.from({ length: 1600 }, (_, i) => ({
    side: i % 2 ? ('sell' as const) : ('buy' as const),
    quantity: 10 + (i % 7),
    leverage: 10,
  }))
  const L = await liveGateway(t, {
    accounts: [
      {
        username: 'whale',
        key: 'whale-key-0123456789',
        secret: 'whale-secret-abcdefghijkl',
        passphrase: 'whale-pass',
        balance: 50_000_000_000,
        positions,
      },
    ],
    sim: { tickMs: 100, volatility: 5 },
    env: { POLL_INTERVAL_MS: '700', WS_MAX_BUFFERED_BYTES: String(CAP), LOG_LEVEL: 'warn', WS_HEARTBEAT_MS: '60000' },
  })
  const user = await L.user(0)
  const healthy = await Promise.all(Array.from({ length: 4 }, () => WsClient.authed(L.g.wsUrl, user.token)))
  const first = await healthy[0]!.next((f) => f.type === 'data_update' && f.channel === 'positions', 10_000)
  const frameBytes = JSON.stringify(first).length
  t.comment(`positions frame: ${frameBytes} bytes`)

  const lateness = (from: number) =>
    healthy.flatMap((c) =>
      c.frames
        .map((f, i) => ({ f, at: c.at[i]! }))
        .filter((x) => x.f.type === 'data_update' && x.at >= from)
        .map((x) => x.at - x.f.ts),
    )
  const base0 = Date.now()
  await sleep(2000)
  const baseline = lateness(base0)

  const slow = await WsClient.authed(L.g.wsUrl, user.token)
  const sock = (slow.ws as unknown as { _socket: Socket })._socket
  sock.pause()
  const stuck0 = Date.now()
  let maxBuffered = 0
  let maxTotal = 0
  const rss0 = process.memoryUsage().rss
  let rssMax = rss0
  while (Date.now() - stuck0 < 40_000) {
    const s = L.g.app.streaming.hub.stats()
    maxBuffered = Math.max(maxBuffered, s.maxBufferedBytes)
    maxTotal = Math.max(maxTotal, s.bufferedBytes)
    rssMax = Math.max(rssMax, process.memoryUsage().rss)
    if ((await metricValue(L.g.app.metrics.registry, 'lnm_gateway_slow_consumer_drops_total')) >= 1) break
    await sleep(100)
  }
  const stuckFor = Date.now() - stuck0
  const during = lateness(stuck0)
  t.comment(
    `slow socket dropped after ${stuckFor} ms; max gateway buffer for one socket ${maxBuffered} B (cap ${CAP}), total ${maxTotal} B; RSS ${Math.round(rss0 / 1e6)} → max ${Math.round(rssMax / 1e6)} MB (test process = gateway + clients)`,
  )
  t.comment(
    `healthy lateness ms: baseline p50 ${percentile(baseline, 0.5)} p99 ${percentile(baseline, 0.99)} max ${Math.max(...baseline)} (n=${baseline.length}); while stuck p50 ${percentile(during, 0.5)} p99 ${percentile(during, 0.99)} max ${Math.max(...during)} (n=${during.length})`,
  )
  t.ok(
    (await metricValue(L.g.app.metrics.registry, 'lnm_gateway_slow_consumer_collapsed_total')) >= 1,
    'the slow socket was collapsed first',
  )
  t.equal(await metricValue(L.g.app.metrics.registry, 'lnm_gateway_slow_consumer_drops_total'), 1, 'then dropped as a slow consumer')
  t.ok(maxBuffered <= CAP + 3 * frameBytes, `the gateway never held more than the cap + a few frames for it (${maxBuffered} B)`)
  t.ok(
    during.length > 0 && percentile(during, 0.99) < Math.max(250, 3 * percentile(baseline, 0.99)),
    'the healthy dashboards were not delayed',
  )
  sock.resume()
  t.equal((await slow.waitClose(10_000)).code, 4008, 'the slow client sees 4008 once it reads again')
  await until(() => L.g.app.streaming.hub.stats().slow === 0, 2000)
  t.equal(L.g.app.streaming.hub.stats().slow, 0, 'nothing left in the slow set')
  t.ok(
    healthy.every((c) => c.closeInfo === null),
    'healthy sockets are still open',
  )
  for (const c of healthy) c.close()
})
