/**
 * RedisBus against a real Redis, two (or three) "nodes" in one process, each a RedisBus with its own node id:
 * upstream events cross nodes and a local publish is delivered once; the per-key lease gives exactly one
 * node's producers the 'watch'; a newcomer's demand makes the holder replay; unwatch reaches the producer only
 * when no node wants the key; a crashed holder is replaced within about two lease TTLs; close() hands over at
 * once; a connection blip is survived; an unreachable Redis falls back to local production.
 */
import t from 'tap'
import { CONTROL_TOPIC, TICKER_TOPIC, accountTopic, type BusEvent, type ControlEvent, type SnapshotEvent } from '../../streaming/bus.ts'
import { createBus, parseRedisUrl } from '../../streaming/bus-factory.ts'
import { InProcessBus } from '../../streaming/bus.ts'
import { RedisBus } from '../../streaming/redis-bus.ts'
import { silentLog } from '../../streaming/sources.ts'
import { sleep, until } from '../streaming/helpers.ts'
import { SnapshotCache } from '../../streaming/cache.ts'
import { killConnections, withOwnRedis, withRedis, type TestRedis } from './redis.ts'

const TTL = 600

type Tap = { teardown(fn: () => unknown): void }

/** a node: its bus plus a recorder standing in for its producers (control) */
function node(t: Tap, r: TestRedis, name: string, ttl = TTL) {
  const bus = new RedisBus({ url: r.url, prefix: r.prefix, nodeId: `${name}-${r.prefix}`, leaseTtlMs: ttl })
  t.teardown(() => bus.close())
  const control: Array<ControlEvent & { at: number }> = []
  bus.subscribe(CONTROL_TOPIC, (e) => control.push({ ...(e as ControlEvent), at: Date.now() }))
  const seen = (kind: ControlEvent['kind'], key: string) => control.filter((c) => c.kind === kind && c.key === key).length
  return { bus, control, seen, name }
}

const snap = (seq: number, json = `{"n":${seq}}`): SnapshotEvent => ({
  kind: 'snapshot',
  channel: 'account',
  epoch: 1,
  seq,
  sourceTs: Date.now(),
  json,
})

t.test('upstream events cross nodes; a local publish is delivered exactly once locally', async (t) => {
  const r = await withRedis(t)
  if (!r) return
  const a = node(t, r, 'a')
  const b = node(t, r, 'b')
  const topic = accountTopic('u1')
  const gotA: BusEvent[] = []
  const gotB: BusEvent[] = []
  a.bus.subscribe(topic, (e) => gotA.push(e))
  b.bus.subscribe(topic, (e) => gotB.push(e))
  await Promise.all([a.bus.subscribed(topic), b.bus.subscribed(topic), a.bus.whenReady(), b.bus.whenReady()])

  a.bus.publish(topic, snap(1))
  t.equal(gotA.length, 1, 'the publishing node receives its own event synchronously')
  t.ok(await until(() => gotB.length === 1, 2000), 'the other node receives it through Redis')
  t.same(gotB[0], gotA[0], 'the event arrives intact (snapshot json forwarded verbatim)')
  b.bus.publish(topic, {
    kind: 'status',
    scope: 'account',
    upstream: 'degraded',
    lastSuccessTs: 5,
    reason: 'rate_limited',
    hasCredentials: true,
  })
  t.ok(await until(() => gotA.length === 2, 2000), 'events published on the other node arrive too')
  await sleep(200) // proves no echo within 200 ms
  t.equal(gotA.length, 2, 'no echo: node a saw each event once')
  t.equal(gotB.length, 2, 'no echo: node b saw each event once')

  // a topic nobody subscribes to on b is not delivered there; unsubscribing stops delivery
  const other = accountTopic('u2')
  const gotOther: BusEvent[] = []
  const off = b.bus.subscribe(other, (e) => gotOther.push(e))
  await b.bus.subscribed(other)
  a.bus.publish(other, snap(1))
  t.ok(await until(() => gotOther.length === 1, 2000), 'a newly subscribed topic is delivered')
  off()
  await until(() => b.bus.stats().topics === 2, 2000, "node b's unsubscribe")
  a.bus.publish(other, snap(2))
  await sleep(200) // proves nothing arrives within 200 ms after unsubscribe
  t.equal(gotOther.length, 1, 'after unsubscribe nothing more arrives')
  t.equal(b.bus.stats().topics, 2, 'only the still-subscribed topic is held (and the control topic of the producer recorder)')
})

t.test('lease: exactly one producer gets watch; a newcomer makes it replay; unwatch only when nobody wants the key', async (t) => {
  const r = await withRedis(t)
  if (!r) return
  const a = node(t, r, 'a')
  const b = node(t, r, 'b')
  await Promise.all([a.bus.whenReady(), b.bus.whenReady()])
  const K = 'user-k'

  a.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
  t.ok(await until(() => a.seen('watch', K) === 1, 2000), 'the first node to watch gets the lease: its producer is told to watch')
  t.equal(await r.admin.get(`${r.prefix}:lease:${K}`), a.bus.nodeId, 'the lease in Redis names node a')

  b.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
  t.ok(await until(() => a.seen('watch', K) === 2, 2000), "node b's demand makes the holder's producer replay (a second watch on a)")
  await sleep(TTL * 2) // proves no watch on b within 2 TTLs of renewals
  t.equal(b.seen('watch', K), 0, "node b's producer never gets watch while a holds the lease (over 2 TTLs of renewals)")
  t.equal(a.seen('watch', K), 2, 'renewals do not re-send watch')
  t.equal(await r.admin.zcard(`${r.prefix}:demand:${K}`), 2, 'both nodes have a demand entry')

  // the holder's hub loses interest first: its producer keeps running for node b
  a.bus.publish(CONTROL_TOPIC, { kind: 'unwatch', key: K })
  await sleep(TTL) // proves no unwatch within a TTL while b still watches
  t.equal(a.seen('unwatch', K), 0, 'unwatch does not reach the producer while node b still watches')
  t.ok(a.bus.isHolder(K), 'node a still holds the lease for node b')
  t.equal(b.seen('watch', K), 0, 'no second producer was started')

  const t0 = Date.now()
  b.bus.publish(CONTROL_TOPIC, { kind: 'unwatch', key: K })
  t.ok(await until(() => a.seen('unwatch', K) === 1, 2000), 'once no node watches, the holder producer gets unwatch')
  t.ok(Date.now() - t0 < TTL, `promptly (${Date.now() - t0} ms, the non-holder asks the holder to re-check)`)
  t.equal(await r.admin.exists(`${r.prefix}:lease:${K}`), 0, 'the lease is released')
  t.equal(b.seen('unwatch', K), 0, "node b's producer never hears of the key")
  await a.bus.settle()
  t.same(a.bus.stats().holding, [], 'node a holds nothing any more')
  t.same(b.bus.stats().watching, [], 'node b watches nothing any more')
})

t.test('both nodes watch at once: exactly one producer; the ticker is leased like an account', async (t) => {
  const r = await withRedis(t)
  if (!r) return
  const nodes = [node(t, r, 'a'), node(t, r, 'b'), node(t, r, 'c')]
  await Promise.all(nodes.map((n) => n.bus.whenReady()))
  for (const n of nodes) n.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'ticker' })
  t.ok(await until(() => nodes.some((n) => n.bus.isHolder('ticker')), 2000), 'some node holds the ticker lease')
  await sleep(TTL * 2) // proves no second holder within 2 TTLs
  const holders = nodes.filter((n) => n.seen('watch', 'ticker') > 0)
  t.equal(holders.length, 1, `exactly one of three nodes' producers got watch for the ticker (${holders.map((h) => h.name)})`)
  t.equal(nodes.filter((n) => n.bus.isHolder('ticker')).length, 1, 'exactly one node believes it holds the lease')
})

t.test('a crashed holder is replaced within about two lease TTLs; close() hands over at once', async (t) => {
  const r = await withRedis(t)
  if (!r) return
  const a = node(t, r, 'a')
  const b = node(t, r, 'b')
  const c = node(t, r, 'c')
  await Promise.all([a.bus.whenReady(), b.bus.whenReady(), c.bus.whenReady()])
  const K = 'user-crash'
  a.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
  t.ok(await until(() => a.seen('watch', K) === 1, 2000), 'a holds the key')
  b.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
  c.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
  await Promise.all([b.bus.settle(), c.bus.settle()]) // their demand is in Redis before the holder dies

  const killedAt = Date.now()
  a.bus.kill() // no release: the lease expires on its own
  // (the new holder may get further watches: replays asked for by the other survivor; one producer either way)
  const started = () => [b, c].filter((n) => n.seen('watch', K) > 0).length
  t.ok(await until(() => started() === 1, TTL * 4), 'another node takes over after the crash')
  const took = Date.now() - killedAt
  t.ok(took <= TTL * 2, `takeover within 2 lease TTLs (${took} ms, TTL ${TTL} ms)`)
  await sleep(TTL) // proves no second takeover within a TTL
  t.equal(started(), 1, 'exactly one of the survivors took over')
  t.equal([b, c].filter((n) => n.bus.isHolder(K)).length, 1, 'and only it believes it holds the lease')
  const next = b.seen('watch', K) ? b : c
  const other = next === b ? c : b
  t.comment(`crash takeover: ${took} ms (lease TTL ${TTL} ms)`)

  const closedAt = Date.now()
  await next.bus.close() // releases: the last node takes over without waiting for expiry
  t.ok(await until(() => other.seen('watch', K) >= 1, TTL * 3), 'the last node takes over after a clean close')
  const handover = Date.now() - closedAt
  t.ok(handover < TTL, `a clean close hands over faster than a lease TTL (${handover} ms)`)
  t.comment(`clean handover: ${handover} ms`)
})

t.test(
  'a holder that finds its lease taken (it stalled past the TTL) stops its producer; the new one runs under a newer generation',
  async (t) => {
    const r = await withRedis(t)
    if (!r) return
    const a = node(t, r, 'a')
    const b = node(t, r, 'b')
    await Promise.all([a.bus.whenReady(), b.bus.whenReady()])
    const K = 'user-stall'
    const topic = accountTopic(K)
    const gotA: BusEvent[] = []
    a.bus.subscribe(topic, (e) => gotA.push(e))
    a.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
    t.ok(await until(() => a.seen('watch', K) >= 1, 2000), 'node a holds the key')
    b.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
    await b.bus.settle()
    t.equal(b.seen('watch', K), 0, 'node b waits')
    // what Redis looks like after node a stalled past the TTL and node b took the lease
    await r.admin.set(`${r.prefix}:lease:${K}`, b.bus.nodeId, 'PX', TTL)
    await r.admin.incr(`${r.prefix}:gen:${K}`) // an acquisition always bumps the generation
    t.ok(
      await until(() => a.seen('unwatch', K) === 1 && b.seen('watch', K) >= 1, TTL * 3),
      "node a's producer is stopped, node b's is started",
    )
    const epochOf = (n: typeof a) => n.control.filter((c) => c.kind === 'watch' && c.key === K).map((c) => c.epoch ?? 0)
    t.ok(
      Math.min(...epochOf(b)) > Math.max(...epochOf(a)),
      `node b's producer runs under a newer generation than node a's (${epochOf(b)} > ${epochOf(a)}): its data outranks a's in every cache`,
    )
    t.notOk(
      gotA.some((e) => e.kind === 'reset'),
      "node a's cache is not reset (fencing replaces its data; a reset would leave channels empty)",
    )
    await sleep(TTL) // proves a is not re-promoted within a TTL
    t.equal(a.seen('unwatch', K), 1, 'node a stays demoted')
    t.ok(b.bus.isHolder(K) && !a.bus.isHolder(K), 'node b is the only holder')
  },
)

t.test('fencing: each acquisition takes a newer generation; a node that saw a newer epoch makes the holder move above it', async (t) => {
  const r = await withRedis(t)
  if (!r) return
  const a = node(t, r, 'a')
  const b = node(t, r, 'b')
  await Promise.all([a.bus.whenReady(), b.bus.whenReady()])
  const K = 'user-fence'
  const topic = accountTopic(K)
  const watches = (n: typeof a) => n.control.filter((c) => c.kind === 'watch' && c.key === K)
  a.bus.subscribe(topic, () => {})
  b.bus.subscribe(topic, () => {})
  a.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
  t.ok(await until(() => watches(a).length >= 1, 2000), 'node a holds the key')
  const g1 = Number(await r.admin.get(`${r.prefix}:gen:${K}`))
  t.equal(watches(a)[0]!.epoch, g1, "the producer's watch carries the lease generation stored in Redis as its epoch")
  t.ok(g1 >= Date.now() - 60_000, `the generation is at least Redis' clock in ms (${g1}), so it grows even if Redis lost it`)

  b.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
  await b.bus.settle()
  await a.bus.close() // releases: b acquires
  t.ok(await until(() => watches(b).length >= 1, TTL * 3), 'node b takes over')
  const g2 = watches(b)[0]!.epoch!
  t.ok(g2 > g1, `the new holder's generation is newer (${g2} > ${g1})`)

  // node b's hub saw an epoch above the generation (what a node that produced in fallback has seen): the next
  // renewal bumps the generation above it and the holder's producer moves to it
  const c = node(t, r, 'c')
  await c.bus.whenReady()
  c.bus.subscribe(topic, () => {})
  c.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
  await c.bus.settle()
  const high = g2 + 100_000
  const before = watches(b).length
  c.bus.publish(topic, { kind: 'snapshot', channel: 'account', epoch: high, seq: 1, sourceTs: Date.now(), json: '{}' })
  t.ok(
    await until(
      () =>
        watches(b)
          .slice(before)
          .some((w) => (w.epoch ?? 0) > high),
      TTL * 3,
    ),
    'the holder is told to move to a generation above the highest epoch seen',
  )
  t.ok(Number(await r.admin.get(`${r.prefix}:gen:${K}`)) > high, 'the generation in Redis is above it')
  t.equal(watches(c).length, 0, 'node c never produced')
})

t.test(
  'bounded buffering: PUBLISHes beyond the in-flight cap stay off Redis, and the holder replays once the backlog drains',
  async (t) => {
    const r = await withRedis(t)
    if (!r) return
    const a = new RedisBus({ url: r.url, prefix: r.prefix, nodeId: `a-${r.prefix}`, leaseTtlMs: TTL, maxInflightPublishes: 2 })
    t.teardown(() => a.close())
    const b = node(t, r, 'b')
    const controlA: ControlEvent[] = []
    a.subscribe(CONTROL_TOPIC, (e) => controlA.push(e as ControlEvent))
    const K = 'user-cap'
    const topic = accountTopic(K)
    const gotA: BusEvent[] = []
    const gotB: BusEvent[] = []
    a.subscribe(topic, (e) => gotA.push(e))
    b.bus.subscribe(topic, (e) => gotB.push(e))
    await Promise.all([a.whenReady(), b.bus.whenReady(), a.subscribed(topic), b.bus.subscribed(topic)])
    a.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
    t.ok(await until(() => controlA.some((c) => c.kind === 'watch'), 2000), 'node a holds the key')
    const watches0 = controlA.filter((c) => c.kind === 'watch').length
    for (let i = 1; i <= 10; i++) a.publish(topic, snap(i))
    t.equal(gotA.length, 10, 'local delivery is never capped')
    t.equal(a.droppedPublishes, 8, 'beyond 2 in flight, events are not written to Redis')
    t.ok(
      await until(() => controlA.filter((c) => c.kind === 'watch').length > watches0, 2000),
      'once the backlog drained, the producer is asked to replay its latest state',
    )
    await sleep(200) // proves no dropped event reaches b within 200 ms
    t.equal(gotB.length, 2, 'the other node received only what was sent')
  },
)

t.test(
  'a Redis stall: the fallback producer stays local and never outranks the holder; afterwards one generation above both',
  async (t) => {
    const r = await withOwnRedis(t)
    if (!r) return
    const a = node(t, r, 'a')
    const b = node(t, r, 'b')
    await Promise.all([a.bus.whenReady(), b.bus.whenReady()])
    const K = 'user-stalled'
    const topic = accountTopic(K)
    // each node: a cache fed by its bus, as the hub has
    const caches = { a: new SnapshotCache(), b: new SnapshotCache() }
    const fromB: BusEvent[] = []
    a.bus.subscribe(topic, (e) => {
      caches.a.apply(topic, e as SnapshotEvent)
      if ((e as SnapshotEvent).json === '{"by":"b-fallback"}') fromB.push(e)
    })
    const acceptedByB: string[] = []
    const receivedByB: string[] = []
    b.bus.subscribe(topic, (e) => {
      receivedByB.push((e as SnapshotEvent).json)
      const res = caches.b.apply(topic, e as SnapshotEvent)
      if (res?.kind === 'snapshot') acceptedByB.push(res.entry.json)
    })
    await Promise.all([a.bus.subscribed(topic), b.bus.subscribed(topic)])
    const watches = (n: typeof a) => n.control.filter((c) => c.kind === 'watch' && c.key === K)
    a.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
    t.ok(await until(() => watches(a).length >= 1, 2000), 'node a holds the key')
    const g1 = watches(a)[0]!.epoch!
    a.bus.publish(topic, { kind: 'snapshot', channel: 'account', epoch: g1, seq: 1, sourceTs: Date.now(), json: '{"by":"a"}' })
    b.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
    t.ok(await until(() => caches.b.get(topic, 'account')?.epoch === g1, 2000), "node b's cache has node a's data")

    r.stall()
    let resumed = false
    try {
      t.ok(await until(() => watches(b).length >= 1, TTL * 5), 'Redis hung for over a lease TTL: node b starts its own producer')
      const fallbackEpoch = watches(b)[0]!.epoch!
      t.ok(fallbackEpoch > g1, `under an epoch above what it has seen (${fallbackEpoch} > ${g1})`)
      b.bus.publish(topic, {
        kind: 'snapshot',
        channel: 'account',
        epoch: fallbackEpoch,
        seq: 1,
        sourceTs: Date.now(),
        json: '{"by":"b-fallback"}',
      })
      t.equal(caches.b.get(topic, 'account')?.json, '{"by":"b-fallback"}', "node b's own cache takes its fallback data")
      // node a, still believing it holds the lease, goes on producing: its publish waits in the hung socket
      a.bus.publish(topic, {
        kind: 'snapshot',
        channel: 'account',
        epoch: g1,
        seq: 2,
        sourceTs: Date.now(),
        json: '{"by":"a-during-stall"}',
      })
      r.resume()
      resumed = true
      const resumedAt = Date.now()
      const current = () => Math.max(...[a, b].map((n) => (n.bus.isHolder(K) ? (watches(n).at(-1)?.epoch ?? 0) : 0)))
      t.ok(
        await until(() => [a, b].filter((n) => n.bus.isHolder(K)).length === 1 && current() > fallbackEpoch, TTL * 6),
        `after Redis resumed, one holder, under a generation above the fallback epoch (${Date.now() - resumedAt} ms)`,
      )
      const holder = a.bus.isHolder(K) ? a : b
      const gen = current()
      holder.bus.publish(topic, { kind: 'snapshot', channel: 'account', epoch: gen, seq: 3, sourceTs: Date.now(), json: '{"by":"holder"}' })
      t.ok(
        await until(
          () => caches.a.get(topic, 'account')?.json === '{"by":"holder"}' && caches.b.get(topic, 'account')?.json === '{"by":"holder"}',
          2000,
        ),
        `both caches take the holder's data (node ${holder.name}, generation ${gen})`,
      )
      await sleep(300) // proves b's fallback event does not reach a within 300 ms
      t.equal(fromB.length, 0, "node b's fallback event never reached node a")
      t.ok(
        await until(() => receivedByB.includes('{"by":"a-during-stall"}'), 2000),
        "node a's publish made during the stall did reach node b after the resume (a burst)",
      )
      t.notOk(
        acceptedByB.includes('{"by":"a-during-stall"}'),
        `node a's stall-time burst (older generation) never entered node b's cache (accepted: ${acceptedByB.join(' ')})`,
      )
    } finally {
      if (!resumed) r.resume()
    }
  },
)

t.test('refresh and credentials reach the producers of every node, once each', async (t) => {
  const r = await withRedis(t)
  if (!r) return
  const a = node(t, r, 'a')
  const b = node(t, r, 'b')
  await Promise.all([a.bus.whenReady(), b.bus.whenReady()])
  b.bus.publish(CONTROL_TOPIC, { kind: 'refresh', key: 'u9' })
  b.bus.publish(CONTROL_TOPIC, { kind: 'credentials', key: 'u9' })
  t.equal(b.seen('refresh', 'u9'), 1, 'the local producers get refresh at once')
  t.ok(
    await until(() => a.seen('refresh', 'u9') === 1 && a.seen('credentials', 'u9') === 1, 2000),
    'the other node producers get refresh and credentials',
  )
  await sleep(200) // proves no echo within 200 ms
  t.equal(b.seen('refresh', 'u9') + b.seen('credentials', 'u9'), 2, 'no echo on the publishing node')
  t.equal(a.seen('refresh', 'u9'), 1, 'delivered once on the other node')
})

t.test('a newcomer gets the latest state through the holder replay, and survives a connection blip', async (t) => {
  const r = await withRedis(t)
  if (!r) return
  const a = node(t, r, 'a')
  const b = node(t, r, 'b')
  await Promise.all([a.bus.whenReady(), b.bus.whenReady()])
  const K = 'user-replay'
  const topic = accountTopic(K)
  // a stand-in producer on each node: replays its latest snapshot on watch (as AccountPollers does)
  let seq = 0
  for (const n of [a, b]) {
    n.bus.subscribe(CONTROL_TOPIC, (e) => {
      if (e.kind === 'watch' && e.key === K) n.bus.publish(topic, snap(Math.max(seq, 1), `{"from":"${n.name}"}`))
    })
  }
  const gotA: BusEvent[] = []
  a.bus.subscribe(topic, (e) => gotA.push(e))
  a.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
  t.ok(await until(() => gotA.length >= 1, 2000), 'the holder replays into its own node')
  seq = 7
  a.bus.publish(topic, snap(7, '{"latest":true}'))
  await sleep(100) // that publish is done before node b subscribes: b can only get the state from a replay

  const gotB: BusEvent[] = []
  b.bus.subscribe(topic, (e) => gotB.push(e))
  const t0 = Date.now()
  b.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: K })
  t.ok(await until(() => gotB.length >= 1, 2000), 'the newcomer receives the replayed state')
  t.comment(`newcomer got the replay in ${Date.now() - t0} ms`)
  t.same(
    gotB.map((e) => (e as SnapshotEvent).json),
    ['{"from":"a"}'],
    'exactly one event: the replay from the holder on node a',
  )

  // network blip: Redis drops both of node b's connections; ioredis reconnects and resubscribes
  const killed = await killConnections(r.admin, b.bus.nodeId)
  t.equal(killed, 2, "both of node b's connections were killed server-side")
  const before = gotB.length
  t.ok(await until(() => gotB.length > before, 5000), 'after reconnecting, node b asks for and receives a replay')
  t.ok(await until(() => b.bus.stats().connected, 5000), 'node b is connected again')
  const n0 = gotB.length
  a.bus.publish(topic, snap(8))
  t.ok(await until(() => gotB.length > n0, 2000), 'events flow to node b again after the blip')
  t.equal(b.seen('watch', K), 0, 'node b never started a second producer')
  t.ok(a.bus.isHolder(K), 'node a kept the lease through the blip')
})

t.test('Redis unreachable: the node falls back to its own producer and never throws', async (t) => {
  const logs: string[] = []
  const log = {
    ...silentLog,
    warn: (_o: object, m?: string) => void logs.push(m ?? ''),
    info: (_o: object, m?: string) => void logs.push(m ?? ''),
  }
  const bus = new RedisBus({ url: 'redis://127.0.0.1:1', prefix: 'unreachable', leaseTtlMs: 300, log })
  t.teardown(() => bus.close())
  const control: ControlEvent[] = []
  bus.subscribe(CONTROL_TOPIC, (e) => control.push(e as ControlEvent))
  const got: BusEvent[] = []
  bus.subscribe(TICKER_TOPIC, (e) => got.push(e))
  bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'ticker' })
  bus.publish(TICKER_TOPIC, snap(1))
  t.equal(got.length, 1, 'local delivery works without Redis')
  t.ok(await until(() => control.some((c) => c.kind === 'watch'), 3000), 'after a lease TTL without Redis, the local producer is started')
  t.ok(
    logs.some((m) => m.includes('producing locally')),
    'the fallback is logged',
  )
  bus.publish(CONTROL_TOPIC, { kind: 'unwatch', key: 'ticker' })
  t.ok(await until(() => control.some((c) => c.kind === 'unwatch'), 3000), 'unwatch stops the fallback producer')
})

t.test('createBus: InProcessBus without REDIS_URL, RedisBus with it (prefix from the URL)', async (t) => {
  t.ok(createBus({}, silentLog) instanceof InProcessBus, 'no REDIS_URL → in-process bus')
  t.same(parseRedisUrl('redis://h:6379/2?prefix=abc'), { url: 'redis://h:6379/2', prefix: 'abc' }, 'prefix is split off the URL')
  t.same(parseRedisUrl('redis://h:6379'), { url: 'redis://h:6379', prefix: 'lnm-gw' }, 'default prefix')
  const r = await withRedis(t)
  if (!r) return
  const bus = createBus({ REDIS_URL: `${r.url}?prefix=${r.prefix}` }, silentLog)
  t.teardown(() => bus.close())
  t.ok(bus instanceof RedisBus, 'REDIS_URL → Redis bus')
  t.equal((bus as RedisBus).prefix, r.prefix, 'with the prefix from the URL')
})
