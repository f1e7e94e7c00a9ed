/**
 * Account pollers with a fake exchange and real timers: one poller per account, spread polls, status on
 * failure and recovery, rate-limit stretching, refresh coalescing, credentials changes.
 */
import t from 'tap'
import { AccountPollers } from '../../streaming/account-pollers.ts'
import { CONTROL_TOPIC, InProcessBus, accountTopic, type UpstreamEvent } from '../../streaming/bus.ts'
import type { AccountSource, Credentials } from '../../streaming/sources.ts'
import { sleep, trade, until } from './helpers.ts'
import type { FuturesTrade } from '../../schemas/ws-protocol.ts'

class FakeExchange implements AccountSource {
  calls: Array<{ what: string; key: string; at: number }> = []
  fail: null | { kind: string; retryAfterMs?: number } = null
  balance = 100
  running: FuturesTrade[] = []
  /** while set, positions answers wait for it (with the data as of the call) */
  gate: Promise<void> | null = null
  async account(creds: Credentials) {
    this.calls.push({ what: 'account', key: creds.key, at: Date.now() })
    await sleep(2)
    if (this.fail) throw Object.assign(new Error('fail'), this.fail)
    return { username: creds.key, balance: this.balance, syntheticUsdBalance: 0, feeTier: 0, equity: this.balance }
  }
  async positions(creds: Credentials) {
    this.calls.push({ what: 'positions', key: creds.key, at: Date.now() })
    const running = [...this.running] // the exchange's state when the request reached it
    await sleep(2)
    if (this.gate) await this.gate
    if (this.fail) throw Object.assign(new Error('fail'), this.fail)
    return { running, open: [], totals: { margin: 0, pl: 0, quantity: running.length, count: running.length } }
  }
}

function setup(t: { teardown(fn: () => unknown): void }, o: { intervalMs?: number; creds?: Record<string, Credentials | null> } = {}) {
  const bus = new InProcessBus()
  const ex = new FakeExchange()
  const creds: Record<string, Credentials | null> = o.creds ?? {}
  const pollers = new AccountPollers({
    bus,
    source: ex,
    credentials: async (userId) => (userId in creds ? creds[userId]! : { key: `k-${userId}`, secret: 's', passphrase: 'p' }),
    intervalMs: o.intervalMs ?? 100,
    refreshMinMs: 1000,
  })
  pollers.start()
  t.teardown(() => pollers.stop())
  const events: Array<{ topic: string; e: UpstreamEvent }> = []
  const watch = (userId: string) => {
    bus.subscribe(accountTopic(userId), (e, topic) => events.push({ topic, e: e as UpstreamEvent }))
    bus.publish(CONTROL_TOPIC, { kind: 'watch', key: userId })
  }
  return { bus, ex, pollers, events, watch, creds }
}

t.test('one poller per account; first poll at once, then once per interval', async (t) => {
  const s = setup(t, { intervalMs: 100 })
  s.watch('u1')
  s.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1' }) // a second watch (another node, a replay request)
  t.equal(s.pollers.size, 1, 'a second watch does not start a second poller')
  await until(() => s.events.some((x) => x.e.kind === 'snapshot' && x.e.channel === 'positions'), 1000)
  t.ok(
    s.events.some((x) => x.e.kind === 'snapshot' && x.e.channel === 'account'),
    'first poll published the account',
  )
  await sleep(1050)
  const n = s.ex.calls.filter((c) => c.what === 'account').length
  t.ok(n >= 9 && n <= 13, `about one account call per 100 ms interval over ~1.05 s (got ${n})`)
  const snaps = s.events.filter((x) => x.e.kind === 'snapshot')
  t.equal(snaps.length, 2, 'unchanged data is not published again')
  t.ok(
    s.events.some((x) => x.e.kind === 'fresh'),
    'unchanged data confirms freshness instead',
  )
  s.ex.balance = 200
  await until(() => s.events.filter((x) => x.e.kind === 'snapshot').length === 3, 1000)
  const last = s.events.filter((x) => x.e.kind === 'snapshot').at(-1)!.e
  t.match(last, { channel: 'account', seq: 2 }, 'a change is published with the next seq of its channel')
  t.equal(JSON.parse((last as { json: string }).json).balance, 200, 'with the new data, serialized once')
  s.bus.publish(CONTROL_TOPIC, { kind: 'unwatch', key: 'u1' })
  const before = s.ex.calls.length
  await sleep(300) // proves no poll within 300 ms (3 intervals) after unwatch
  t.equal(s.ex.calls.length, before, 'unwatch stops polling')
  t.equal(s.pollers.size, 0, 'and removes the poller')
})

t.test('polls of different accounts are spread over the interval', async (t) => {
  const s = setup(t, { intervalMs: 400 })
  for (let i = 0; i < 8; i++) s.watch(`acct-${i}`)
  await sleep(450)
  const t0 = Date.now()
  s.ex.calls = []
  await sleep(1200)
  const firsts = new Map<string, number>()
  for (const c of s.ex.calls) if (c.what === 'account' && !firsts.has(c.key)) firsts.set(c.key, (c.at - t0) % 400)
  const offsets = [...firsts.values()].sort((a, b) => a - b)
  const distinct = new Set(offsets.map((o) => Math.floor(o / 50))).size
  t.ok(distinct >= 4, `8 accounts fire in at least 4 different 50 ms slots of the 400 ms interval (offsets ${offsets.join(',')})`)
})

t.test('failures: down at once, backoff, recovery to ok', async (t) => {
  const s = setup(t, { intervalMs: 100 })
  s.watch('u1')
  await until(() => s.events.some((x) => x.e.kind === 'status' && x.e.upstream === 'ok'), 1000)
  s.ex.fail = { kind: 'unavailable' }
  const t0 = Date.now()
  await until(() => s.events.some((x) => x.e.kind === 'status' && x.e.upstream === 'down'), 1000)
  const down = s.events.find((x) => x.e.kind === 'status' && x.e.upstream === 'down')!.e
  t.ok(Date.now() - t0 <= 250, 'status down within about one interval')
  t.match(down, { reason: 'upstream_unavailable', lastSuccessTs: Number }, 'down says why and when data was last good')
  const calls0 = s.ex.calls.length
  await sleep(800)
  const during = s.ex.calls.length - calls0
  t.ok(during < 14, `polls back off while the exchange is down (${during} calls in 800 ms vs 16 at full rate)`)
  t.notOk(
    s.events.slice(s.events.indexOf(s.events.find((x) => x.e === down)!)).some((x) => x.e.kind === 'snapshot' || x.e.kind === 'fresh'),
    'no data and no freshness while down',
  )
  s.ex.fail = null
  const lastStatus = () => (s.events.filter((x) => x.e.kind === 'status').at(-1)?.e as { upstream?: string } | undefined)?.upstream
  await until(() => lastStatus() === 'ok', 2000)
  t.equal(lastStatus(), 'ok', 'recovers to ok')
})

t.test('rate limits stretch the interval and honour Retry-After', async (t) => {
  const s = setup(t, { intervalMs: 100 })
  s.watch('u1')
  await until(() => s.ex.calls.length >= 2, 1000)
  s.ex.fail = { kind: 'rate_limited', retryAfterMs: 500 }
  await until(() => s.events.some((x) => x.e.kind === 'status' && x.e.upstream === 'degraded'), 1000)
  const t0 = Date.now()
  const n0 = s.ex.calls.length
  await sleep(450) // proves no call within 450 ms, before Retry-After elapsed
  t.equal(s.ex.calls.length, n0, 'no call before Retry-After elapsed')
  t.match(
    s.events.find((x) => x.e.kind === 'status' && x.e.upstream === 'degraded')!.e,
    { reason: 'rate_limited' },
    'degraded: rate_limited',
  )
  t.ok(Date.now() - t0 < 1000, 'timing sanity')
})

t.test('refresh: at most one extra poll per window', async (t) => {
  const s = setup(t, { intervalMs: 5000 })
  s.watch('u1')
  await until(() => s.ex.calls.length === 2, 1000)
  await sleep(50)
  for (let i = 0; i < 20; i++) s.bus.publish(CONTROL_TOPIC, { kind: 'refresh', key: 'u1' })
  await sleep(100) // proves no extra poll within 100 ms of 20 refreshes inside refreshMinMs
  t.equal(s.ex.calls.length, 2, 'refresh within refreshMinMs of the last poll is ignored')
  await sleep(1000)
  for (let i = 0; i < 20; i++) s.bus.publish(CONTROL_TOPIC, { kind: 'refresh', key: 'u1' })
  await until(() => s.ex.calls.length >= 4, 2000, 'the poll the refreshes ask for')
  t.equal(s.ex.calls.length, 4, '20 refreshes after the window → exactly one poll (account + positions)')
})

t.test('no credentials: a status that says so, no exchange calls; storing them starts polling', async (t) => {
  const s = setup(t, { intervalMs: 100, creds: { u1: null } })
  s.watch('u1')
  await until(() => s.events.some((x) => x.e.kind === 'status'), 1000)
  t.match(s.events[0]!.e, { kind: 'status', reason: 'no_credentials', hasCredentials: false }, 'status no_credentials')
  await sleep(300) // proves no poll within 300 ms without credentials
  t.equal(s.ex.calls.length, 0, 'nothing polled without credentials')
  s.creds.u1 = { key: 'new-key', secret: 's', passphrase: 'p' }
  s.bus.publish(CONTROL_TOPIC, { kind: 'credentials', key: 'u1' })
  await until(() => s.events.some((x) => x.e.kind === 'snapshot'), 1000)
  const reset = s.events.findIndex((x) => x.e.kind === 'reset')
  t.ok(reset > 0, 'a reset precedes the new data')
  const snap = s.events.find((x) => x.e.kind === 'snapshot')!.e as { epoch: number; json: string }
  t.equal(JSON.parse(snap.json).username, 'new-key', 'polled with the new credentials')
})

t.test('credentials changed: new epoch, old in-flight results dropped', async (t) => {
  const s = setup(t, { intervalMs: 100 })
  s.watch('u1')
  await until(() => s.events.some((x) => x.e.kind === 'snapshot'), 1000)
  const e1 = (s.events.find((x) => x.e.kind === 'snapshot')!.e as { epoch: number }).epoch
  s.creds.u1 = { key: 'other', secret: 's', passphrase: 'p' }
  s.bus.publish(CONTROL_TOPIC, { kind: 'credentials', key: 'u1' })
  await until(() => s.events.some((x) => x.e.kind === 'snapshot' && (x.e as { epoch: number }).epoch !== e1), 1000)
  const after = s.events.filter((x) => x.e.kind === 'snapshot' && (x.e as { epoch: number }).epoch !== e1)
  t.ok(after[0]!.e.kind === 'snapshot' && after[0]!.e.epoch > e1, 'a newer epoch')
  t.equal((after[0]!.e as { seq: number }).seq, 1, 'seq restarts at 1 within the new epoch')
  t.notOk(
    after.some(
      (x) => (x.e as { channel: string }).channel === 'account' && JSON.parse((x.e as { json: string }).json).username !== 'other',
    ),
    'no data of the old credentials after the change',
  )
})

t.test('a higher lease generation: old data is never replayed under it, a fresh fetch is', async (t) => {
  const s = setup(t, { intervalMs: 5000 })
  s.watch('u1')
  await until(() => ['account', 'positions'].every((ch) => s.events.some((x) => x.e.kind === 'snapshot' && x.e.channel === ch)), 1000)
  const first = s.events.find((x) => x.e.kind === 'snapshot')!.e as { epoch: number }
  const calls = s.ex.calls.length
  await sleep(20)
  const movedAt = Date.now()
  const gen = first.epoch + 1000
  s.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1', epoch: gen })
  await until(
    () => ['account', 'positions'].every((ch) => s.events.some((x) => x.e.kind === 'snapshot' && x.e.channel === ch && x.e.epoch === gen)),
    2000,
  )
  const under = s.events
    .filter((x) => x.e.kind === 'snapshot' && x.e.epoch === gen)
    .map((x) => x.e as { channel: string; seq: number; sourceTs: number })
  t.ok(
    s.ex.calls.length > calls && s.ex.calls.slice(calls).every((c) => c.at >= movedAt),
    'the move fetched again (long before the next 5 s poll)',
  )
  for (const ch of ['account', 'positions']) {
    const e = under.find((x) => x.channel === ch)!
    t.ok(e.sourceTs >= movedAt, `${ch}: the first version under the new generation is data fetched after the move`)
    t.equal(e.seq, 2, `${ch}: and a new version (seq 2), not the old one replayed`)
  }
  t.notOk(
    s.events.some((x) => x.e.kind === 'fresh' && x.e.epoch === gen && x.e.sourceTs < movedAt),
    'no `fresh` claims under it for data from before the move',
  )
})

t.test('a REST answer that left the exchange before a pushed event never undoes the event', async (t) => {
  const s = setup(t, { intervalMs: 5000 })
  s.watch('u1')
  await until(() => s.events.some((x) => x.e.kind === 'snapshot' && x.e.channel === 'positions'), 1000)
  let release!: () => void
  s.ex.gate = new Promise<void>((r) => (release = r))
  const calls = () => s.ex.calls.filter((c) => c.what === 'positions').length
  const before = calls()
  s.pollers.fetchNow('u1', ['positions']) // a reconcile round: the exchange answers, the answer is on its way
  await until(() => calls() === before + 1, 1000)
  // the trade opens on the exchange and its private stream pushes it while that answer travels
  const pushed = trade('pushed', 0, Date.now(), { running: true, closed: false, closedAt: null, exitPrice: null })
  s.ex.running = [pushed]
  const applied = s.pollers.apply('u1', 'positions', (cur) => ({ ...cur, running: [pushed] }))
  t.ok(applied, 'the pushed trade is applied at once')
  const mark = s.events.length
  const shows = (x: (typeof s.events)[number]) =>
    x.e.kind === 'snapshot' && x.e.channel === 'positions'
      ? (JSON.parse(x.e.json) as { running: Array<{ id: string }> }).running.some((r) => r.id === 'pushed')
      : null
  t.equal(shows(s.events.at(-1)!), true, 'and published')
  s.ex.gate = null
  release() // the older answer (no trade) arrives
  const undone = () => s.events.slice(mark).some((x) => shows(x) === false)
  await until(() => calls() === before + 2 || undone(), 1000)
  await sleep(50)
  t.notOk(undone(), 'no positions published without the trade: the older answer did not overwrite the pushed state')
  t.equal(calls(), before + 2, 'a round of its own read the channel again, once (no loop)')
})

t.test('a hung exchange shows as down within an interval', async (t) => {
  const bus = new InProcessBus()
  const hang: AccountSource = {
    account: (_c, o) =>
      new Promise((_r, rej) => o?.signal?.addEventListener('abort', () => rej(Object.assign(new Error('aborted'), { kind: 'timeout' })))),
    positions: (_c, o) =>
      new Promise((_r, rej) => o?.signal?.addEventListener('abort', () => rej(Object.assign(new Error('aborted'), { kind: 'timeout' })))),
  }
  const pollers = new AccountPollers({
    bus,
    source: hang,
    credentials: async () => ({ key: 'k', secret: 's', passphrase: 'p' }),
    intervalMs: 150,
    minPollDeadlineMs: 100,
  })
  pollers.start()
  t.teardown(() => pollers.stop())
  const statuses: string[] = []
  bus.subscribe(accountTopic('u1'), (e) => {
    if (e.kind === 'status') statuses.push(`${e.upstream}:${e.reason}`)
  })
  const t0 = Date.now()
  bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'u1' })
  await until(() => statuses.length > 0, 1000)
  t.ok(Date.now() - t0 <= 500, `down reported at the first slot after the poll outlived its interval (${Date.now() - t0} ms)`)
  t.match(statuses[0], /^down:/, 'status is down')
})

t.test('the shared ticker finding the exchange unreachable marks every account down at once', async (t) => {
  const s = setup(t, { intervalMs: 5000 })
  s.watch('u1')
  s.watch('u2')
  await until(() => s.events.filter((x) => x.e.kind === 'status' && x.e.upstream === 'ok').length === 2, 1000)
  const calls = s.ex.calls.length
  s.bus.publish('ticker', { kind: 'status', scope: 'ticker', upstream: 'down', lastSuccessTs: 1, reason: 'upstream_unavailable' })
  const downs = s.events.filter((x) => x.e.kind === 'status' && x.e.upstream === 'down')
  t.same(downs.map((x) => x.topic).sort(), ['account:u1', 'account:u2'], 'both accounts report down immediately')
  t.match(downs[0]!.e, { reason: 'exchange_unreachable' }, 'with the reason')
  t.equal(s.ex.calls.length, calls, 'without any extra exchange call')
  s.bus.publish('ticker', { kind: 'status', scope: 'ticker', upstream: 'down', lastSuccessTs: 1, reason: 'rate_limited' })
  t.equal(s.events.filter((x) => x.e.kind === 'status' && x.e.upstream === 'down').length, 2, 'a ticker rate limit is not an outage')
})
