/**
 * The freshness watchdog: a topic this node's sockets watch whose data is older than the stale limit makes the
 * node `degraded` (with the reason), is logged once, asks its producer for a replay at each check, and has its
 * cache (and fence) forgotten after a few checks while the exchange answers. Then the real thing: a gateway
 * whose exchange stops answering says `degraded` in /health/ready and in the metric, and `ok` again after.
 */
import t from 'tap'
import { createMetrics } from '../../metrics.ts'
import { CONTROL_TOPIC, InProcessBus, accountTopic, type ControlEvent } from '../../streaming/bus.ts'
import { SnapshotCache } from '../../streaming/cache.ts'
import { FreshnessWatchdog, type WatchedTopic } from '../../streaming/freshness-watchdog.ts'
import { startTestApp } from '../helpers/app.ts'
import { WsClient, until } from './helpers.ts'

const STALE = 1000

function setup() {
  let now = 1_000_000
  const bus = new InProcessBus()
  const cache = new SnapshotCache()
  const control: ControlEvent[] = []
  bus.subscribe(CONTROL_TOPIC, (e) => control.push(e as ControlEvent))
  const warns: Array<{ o: object; m: string }> = []
  const log = { debug() {}, info() {}, error() {}, warn: (o: object, m?: string) => void warns.push({ o, m: m ?? '' }) }
  const metrics = createMetrics()
  let watched: WatchedTopic[] = []
  const dog = new FreshnessWatchdog({
    watched: () => watched,
    cache,
    bus,
    staleAfterMs: STALE,
    resetAfterChecks: 3,
    metrics,
    log,
    now: () => now,
  })
  const topic = accountTopic('u1')
  const snap = (channel: 'account' | 'positions', seq: number, sourceTs: number, epoch = 5) =>
    cache.apply(topic, { kind: 'snapshot', channel, epoch, seq, sourceTs, json: '{}' })
  return {
    bus,
    cache,
    control,
    warns,
    metrics,
    dog,
    topic,
    snap,
    watch: () => {
      watched = [{ key: 'u1', topic, channels: ['account', 'positions'] }]
    },
    unwatch: () => {
      watched = []
    },
    advance: (ms: number) => {
      now += ms
    },
    get now() {
      return now
    },
  }
}

t.test('watchdog: ok while fresh; degraded with the reason once stale; replays asked; reset after repeated checks', async (t) => {
  const s = setup()
  s.watch()
  t.same(
    s.dog.report(),
    { status: 'ok', starved: 0, reasons: { upstream_down: 0, no_data: 0, stale: 0 } },
    'a topic watched for less than the stale limit is not judged yet',
  )
  s.snap('account', 1, s.now)
  s.advance(STALE + 1)
  t.match(s.dog.report(), { status: 'degraded', starved: 1, reasons: { no_data: 1 } }, 'a channel that never arrived: no_data')
  s.snap('account', 2, s.now)
  s.snap('positions', 1, s.now)
  t.match(s.dog.report(), { status: 'ok', starved: 0 }, 'every channel fresh: ok')

  s.advance(STALE + 1)
  s.cache.apply(s.topic, { kind: 'status', scope: 'account', upstream: 'ok', lastSuccessTs: s.now, reason: 'ok' })
  t.match(s.dog.report(), { status: 'degraded', reasons: { stale: 1 } }, 'data older than the limit while the producer says ok: stale')
  const n0 = s.control.length
  const starved = s.dog.tick()
  t.same(
    starved.map((x) => x.stale),
    [['account', 'positions']],
    'the starved channels are named',
  )
  t.same(s.control.slice(n0), [{ kind: 'watch', key: 'u1' }], 'the producer is asked for a replay')
  t.equal(s.warns.length, 1, 'one warning when the topic starts starving')
  t.match(s.warns[0]!.m, /no fresh account\/positions data for longer than STALE_AFTER_MS \(stale\)/, 'the log line says what and why')
  const metric = await s.metrics.registry.getSingleMetricAsString('lnm_gateway_streaming_starved_topics')
  t.match(metric, /lnm_gateway_streaming_starved_topics\{reason="stale"\} 1/, 'the gauge counts it by reason')
  t.notMatch(metric, /u1/, 'no user id in the metric')
  s.dog.tick()
  t.equal(s.warns.length, 1, 'not logged again while it lasts')
  t.ok(s.cache.get(s.topic, 'account'), 'the cache is kept for the first checks')
  s.dog.tick()
  t.equal(s.cache.get(s.topic, 'account'), undefined, 'after 3 checks without fresh data the cached data is forgotten')
  t.equal(
    s.cache.apply(s.topic, { kind: 'snapshot', channel: 'account', epoch: 1, seq: 1, sourceTs: s.now, json: '{}' })?.kind,
    'snapshot',
    '…and its fence too: a producer with any epoch refills it',
  )
  const repairs = await s.metrics.registry.getSingleMetricAsString('lnm_gateway_streaming_self_repairs_total')
  t.match(repairs, /action="redemand"\} 3/, 'replays asked counted (one per check)')
  t.match(repairs, /action="reset"\} 1/, 'the reset counted')
})

t.test('watchdog: an exchange that fails is reported (upstream_down) but the cache is never reset for it', async (t) => {
  const s = setup()
  s.watch()
  s.dog.report() // the watchdog starts timing the topic
  s.snap('account', 1, s.now)
  s.snap('positions', 1, s.now)
  s.cache.apply(s.topic, { kind: 'status', scope: 'account', upstream: 'down', lastSuccessTs: s.now, reason: 'upstream_unavailable' })
  s.advance(STALE + 1)
  t.match(s.dog.report(), { status: 'degraded', reasons: { upstream_down: 1 } }, 'degraded, reason upstream_down')
  for (let i = 0; i < 6; i++) s.dog.tick()
  t.ok(s.cache.get(s.topic, 'account'), 'the last known values stay (shown greyed out by the dashboard)')
  s.unwatch()
  t.match(s.dog.report(), { status: 'ok', starved: 0 }, 'no socket watches it any more: ok')
})

t.test('a gateway whose exchange stops answering says degraded in /health/ready, then ok again', async (t) => {
  const g = await startTestApp(t, {
    POLL_INTERVAL_MS: '500',
    TICKER_INTERVAL_MS: '500',
    STALE_AFTER_MS: String(STALE),
    SHUTDOWN_DRAIN_MS: '100',
    LOG_LEVEL: 'warn',
    UPSTREAM_BREAKER_OPEN_MS: '1000',
  })
  const user = await g.userWithCredentials(0)
  const c = await WsClient.authed(g.wsUrl, user.token)
  t.teardown(() => c.close())
  await c.next((f) => f.type === 'data_update' && f.channel === 'positions', 8000)
  const ready = async () => (await g.http('GET', '/health/ready')).body
  // one answer for both checks: on a loaded machine a second request can land in a moment the data is stale
  let first: any
  t.ok(await until(async () => (first = await ready()).status === 'ok', 5000), 'ok while data flows')
  t.match(first, { streaming: { status: 'ok', starved: 0 } }, 'with the streaming report')
  await g.sim.pause()
  t.ok(
    await until(async () => (await ready()).status === 'degraded', 4 * STALE),
    `degraded once the data is older than STALE_AFTER_MS (${STALE} ms)`,
  )
  const body = await ready()
  t.ok(body.streaming.starved >= 1, `starved topics reported (${JSON.stringify(body.streaming)})`)
  t.ok(await until(() => /no fresh .* data for longer than STALE_AFTER_MS/.test(g.logs.text), 3000), 'and logged with why')
  const m = await g.http('GET', '/metrics')
  t.match(m.text, /lnm_gateway_streaming_starved_topics\{reason="[a-z_]+"\} [1-9]/, 'and in the metric')
  await g.sim.resume()
  t.ok(await until(async () => (await ready()).status === 'ok', 20_000), 'ok again once fresh data flows')
})
