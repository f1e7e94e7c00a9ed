/**
 * FallbackPoller (frontend/src/lib/fallback-poller.ts) on its own, with fakes only: a fetch the test settles by
 * hand, an injected host, and node:test's fake timers (setTimeout and Date), so periods and Retry-After waits
 * are stepped through exactly, with no wall-clock wait.
 */
import { mock } from 'node:test'
import t from 'tap'
import { FallbackPoller, type DashboardFetchResult, type PollOutcome } from '../src/lib/fallback-poller.ts'
import { dashboardBody } from './support/fakes.ts'

const T0 = 1_800_000_000_000
const PERIOD = 15_000

/** a body at the fake clock's time */
const body = (seq: number) => dashboardBody(Date.now(), seq)

interface Harness {
  poller: FallbackPoller
  /** fetches started, in order; settle one with `answer` */
  fetches: () => number
  /** settle the oldest unsettled fetch */
  answer: (result: DashboardFetchResult | Error) => Promise<void>
  bodies: number[]
  outcomes: PollOutcome[]
  state: { stopped: boolean; socketDown: boolean; period: number }
  advance: (ms: number) => void
}

/** let settled promises' callbacks run; no timer, no wall clock */
const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

function harness(t: { teardown: (fn: () => void) => void }): Harness {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 })
  const pending: Array<{ resolve: (r: DashboardFetchResult) => void; reject: (e: Error) => void }> = []
  let fetches = 0
  const bodies: number[] = []
  const outcomes: PollOutcome[] = []
  const state = { stopped: false, socketDown: true, period: PERIOD }
  const poller = new FallbackPoller({
    fetchDashboard: () => {
      fetches++
      return new Promise<DashboardFetchResult>((resolve, reject) => pending.push({ resolve, reject }))
    },
    now: () => Date.now(),
    isStopped: () => state.stopped,
    periodMs: () => state.period,
    socketDown: () => state.socketDown,
    onBody: (b) => bodies.push(b.meta.channels.account?.seq ?? -1),
    onPolled: (o) => outcomes.push(o),
  })
  t.teardown(() => {
    poller.stop()
    mock.timers.reset()
  })
  return {
    poller,
    fetches: () => fetches,
    answer: async (result) => {
      const p = pending.shift()
      if (!p) throw new Error('no fetch in flight')
      if (result instanceof Error) p.reject(result)
      else p.resolve(result)
      await flush()
    },
    bodies,
    outcomes,
    state,
    advance: (ms) => mock.timers.tick(ms),
  }
}

t.test('one request in flight at most', async (t) => {
  const h = harness(t)
  h.poller.start()
  t.equal(h.fetches(), 1, 'start() reads at once')
  t.ok(h.poller.busy, 'busy while the read is in flight')
  void h.poller.pollOnce()
  void h.poller.pollOnce()
  h.poller.start()
  t.equal(h.fetches(), 1, 'pollOnce() and start() during a read start no second request')
  h.advance(PERIOD * 10)
  t.equal(h.fetches(), 1, 'nor does time passing while the read hangs')
  await h.answer({ kind: 'ok', body: body(1) })
  t.notOk(h.poller.busy, 'not busy once it settled')
  t.same(h.bodies, [1], 'its body is delivered once')
  void h.poller.pollOnce()
  t.equal(h.fetches(), 2, 'a read once the previous settled is allowed')
  await h.answer({ kind: 'ok', body: body(2) })
  t.same(h.bodies, [1, 2], 'and delivered')
})

t.test('the period: the next read one period after the last result', async (t) => {
  const h = harness(t)
  h.poller.start()
  t.ok(h.poller.active, 'active')
  h.advance(4_000) // the read takes 4 s
  await h.answer({ kind: 'ok', body: body(1) })
  t.same(
    h.outcomes,
    [{ lastPollOk: true, nextPollAt: T0 + 4_000 + PERIOD, pollWaitMs: PERIOD }],
    'the next read is announced a period later',
  )
  h.advance(PERIOD - 1)
  t.equal(h.fetches(), 1, 'not 1 ms before the period')
  h.advance(1)
  t.equal(h.fetches(), 2, 'the second read at the period')
  h.state.period = 5_000
  await h.answer({ kind: 'ok', body: body(2) })
  t.equal(h.outcomes.at(-1)?.pollWaitMs, 5_000, 'the period is read again before each result is applied')
  h.advance(5_000)
  t.equal(h.fetches(), 3, 'and used')
  await h.answer({ kind: 'ok', body: body(3) })
  t.same(h.bodies, [1, 2, 3], 'every body delivered in order')
})

t.test('a manual read replaces the scheduled one', async (t) => {
  const h = harness(t)
  h.poller.start()
  await h.answer({ kind: 'ok', body: body(1) })
  h.advance(PERIOD / 2)
  void h.poller.pollOnce()
  t.equal(h.fetches(), 2, 'read now')
  await h.answer({ kind: 'ok', body: body(2) })
  h.advance(PERIOD / 2)
  t.equal(h.fetches(), 2, 'the timer of the earlier schedule was cancelled')
  h.advance(PERIOD / 2)
  t.equal(h.fetches(), 3, 'the next read is a period after the manual one')
})

t.test('Retry-After: longer than the period wins, shorter does not', async (t) => {
  const h = harness(t)
  h.poller.start()
  await h.answer({ kind: 'error', network: false, retryAfterMs: 45_000 })
  t.same(h.outcomes.at(-1), { lastPollOk: false, nextPollAt: T0 + 45_000, pollWaitMs: 45_000 }, 'a 45 s Retry-After beats the 15 s period')
  h.advance(45_000 - 1)
  t.equal(h.fetches(), 1, 'nothing before the Retry-After is over')
  h.advance(1)
  t.equal(h.fetches(), 2, 'read when it is over')
  await h.answer({ kind: 'error', network: false, retryAfterMs: 3_000 })
  t.equal(h.outcomes.at(-1)?.pollWaitMs, PERIOD, 'a 3 s Retry-After does not shorten the period')
  h.advance(3_000)
  t.equal(h.fetches(), 2, 'no read 3 s later')
  h.advance(PERIOD - 3_000)
  t.equal(h.fetches(), 3, 'but a period later')
})

t.test('stops when the socket carries the data again', async (t) => {
  const h = harness(t)
  h.poller.start()
  await h.answer({ kind: 'ok', body: body(1) })
  h.advance(PERIOD)
  t.equal(h.fetches(), 2, 'polling while the socket is down')
  h.state.socketDown = false
  await h.answer({ kind: 'ok', body: body(2) })
  t.same(h.bodies, [1, 2], 'the read in flight still delivers its body')
  t.same(h.outcomes.at(-1), { lastPollOk: true }, 'but announces no next read')
  h.advance(PERIOD * 10)
  t.equal(h.fetches(), 2, 'and none happens')
})

t.test('stop(): the scheduled read is cancelled; a one-off read schedules nothing', async (t) => {
  const h = harness(t)
  h.poller.start()
  await h.answer({ kind: 'ok', body: body(1) })
  h.poller.stop()
  t.notOk(h.poller.active, 'not active')
  h.advance(PERIOD * 10)
  t.equal(h.fetches(), 1, 'the scheduled read never happens')
  void h.poller.pollOnce()
  t.equal(h.fetches(), 2, 'a one-off read while not polling')
  await h.answer({ kind: 'ok', body: body(2) })
  t.same(h.outcomes.at(-1), { lastPollOk: true }, 'announces no next read')
  h.advance(PERIOD * 10)
  t.equal(h.fetches(), 2, 'and schedules none')
})

t.test('stop() during a read: its body is delivered, nothing more is scheduled', async (t) => {
  const h = harness(t)
  h.poller.start()
  h.poller.stop()
  await h.answer({ kind: 'ok', body: body(1) })
  t.same(h.bodies, [1], 'the body of the read in flight')
  t.same(h.outcomes, [{ lastPollOk: true }], 'no next read announced')
  h.advance(PERIOD * 10)
  t.equal(h.fetches(), 1, 'none made')
})

t.test('a result after the client stopped is dropped', async (t) => {
  for (const [name, result] of [
    ['a body', { kind: 'ok', body: body(1) }],
    ['an error', { kind: 'error', network: true }],
    ['a thrown fetch', new Error('offline')],
  ] as const) {
    await t.test(name, async (t) => {
      const h = harness(t)
      h.poller.start()
      h.state.stopped = true
      h.poller.stop()
      await h.answer(result)
      t.same(h.bodies, [], 'no body delivered')
      t.same(h.outcomes, [], 'no outcome reported')
      t.notOk(h.poller.lastFailedOnNetwork, 'the failure is not recorded')
      h.advance(PERIOD * 10)
      t.equal(h.fetches(), 1, 'nothing scheduled')
      void h.poller.pollOnce()
      t.equal(h.fetches(), 1, 'and a stopped client reads nothing more')
    })
  }
})

t.test('network failures and HTTP errors are told apart', async (t) => {
  const h = harness(t)
  h.poller.start()
  await h.answer(new TypeError('Failed to fetch'))
  t.ok(h.poller.lastFailedOnNetwork, 'a thrown fetch is a network failure')
  t.same(h.outcomes.at(-1), { lastPollOk: false, nextPollAt: T0 + PERIOD, pollWaitMs: PERIOD }, 'not ok, next read a period later')
  t.notOk(h.poller.busy, 'not busy after a throw')
  h.advance(PERIOD)
  await h.answer({ kind: 'error', network: false })
  t.notOk(h.poller.lastFailedOnNetwork, 'an HTTP error is not a network failure')
  t.equal(h.outcomes.at(-1)?.lastPollOk, false, 'and not ok')
  h.advance(PERIOD)
  await h.answer({ kind: 'error', network: true })
  t.ok(h.poller.lastFailedOnNetwork, 'a network error result is a network failure')
  h.advance(PERIOD)
  await h.answer({ kind: 'ok', body: body(1) })
  t.notOk(h.poller.lastFailedOnNetwork, 'a success clears it')
  t.equal(h.outcomes.at(-1)?.lastPollOk, true, 'and is ok')
  t.same(h.bodies, [1], 'only the success delivered a body')
  t.equal(h.fetches(), 4, 'polling went on through every kind of failure')
})
