/**
 * LnmPrivateStream against the simulator's Stream v1 on a real port: authenticate (HMAC of timestamp+nonce,
 * verified by the simulator) + subscribe → 'up'; every private topic arrives as 'event'; a dropped link
 * gives 'down' then 'up' again with a fresh authenticate; refused credentials never come up and back off
 * at the reconnect cap; secrets never reach a log line or an event.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { once } from 'node:events'
import { LnmPrivateStream, PRIVATE_TOPICS, type PrivateStreamEvent } from '../../exchange/private-stream.ts'
import { startSimulator, type Simulator } from '../../simulator/index.ts'
import { call, relaxed, testAccounts } from '../simulator/helpers.ts'
import { collectingLogger, tripwire } from './helpers.ts'
import { until } from '../streaming/helpers.ts'

const wire = tripwire()

/** resolves with the first event matching `pred`, or fails after `ms` */
function nextEvent(s: LnmPrivateStream, pred: (e: PrivateStreamEvent) => boolean, ms = 3000): Promise<PrivateStreamEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      s.off('event', on)
      reject(new Error('timed out waiting for a private event'))
    }, ms)
    const on = (e: PrivateStreamEvent) => {
      if (!pred(e)) return
      clearTimeout(timer)
      s.off('event', on)
      resolve(e)
    }
    s.on('event', on)
  })
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function setup(t: { teardown(fn: () => unknown): void }): Promise<Simulator> {
  const sim = await startSimulator({ accounts: testAccounts(), tickMs: 0, initialPrice: 100_000, rateLimit: relaxed })
  t.teardown(() => sim.close())
  return sim
}

t.test('authenticates, subscribes to every private topic, emits events', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]!
  const { lines, logger } = collectingLogger()
  const s = new LnmPrivateStream({ url: sim.streamUrl, creds: alice, logger, now: () => sim.now(), reconnect: { baseMs: 50, capMs: 200 } })
  t.teardown(() => s.stop())
  t.equal(s.up, false, 'down before start')
  s.start()
  await within(once(s, 'up'), 3000, 'up')
  t.equal(s.up, true, "'up' once authenticated and subscribed")
  t.same(
    [...PRIVATE_TOPICS],
    [
      'futures/inverse/btc_usd/isolated/trades',
      'futures/inverse/btc_usd/cross/orders',
      'futures/inverse/btc_usd/cross/position',
      'wallet/deposit',
      'wallet/withdrawal',
    ],
  )

  const tradeEv = nextEvent(s, (e) => e.topic === 'futures/inverse/btc_usd/isolated/trades')
  const trade = (await call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'market', side: 'buy', quantity: 10, leverage: 10 }))
    .json
  t.match((await tradeEv).data, { pair: 'btc_usd', event: 'filled', trade: { id: trade.id } }, 'isolated/trades')

  const posEv = nextEvent(s, (e) => e.topic === 'futures/inverse/btc_usd/cross/position')
  await call(sim, alice, 'POST', '/futures/cross/deposit', { amount: 100_000 })
  t.match((await posEv).data, { event: 'deposit', position: { margin: 100_000 } }, 'cross/position')

  const ordEv = nextEvent(s, (e) => e.topic === 'futures/inverse/btc_usd/cross/orders')
  const order = (await call(sim, alice, 'POST', '/futures/cross/order', { type: 'market', side: 'sell', quantity: 50 })).json
  t.match((await ordEv).data, { event: 'new', order: { id: order.id, filled: true } }, 'cross/orders')

  const depEv = nextEvent(s, (e) => e.topic === 'wallet/deposit')
  sim.wallet.deposit('alice', 5_000)
  t.match((await depEv).data, { amount: 5_000, currency: 'btc' }, 'wallet/deposit')
  const wdEv = nextEvent(s, (e) => e.topic === 'wallet/withdrawal')
  sim.wallet.withdraw('alice', 1_000)
  t.match((await wdEv).data, { amount: 1_000 }, 'wallet/withdrawal')

  const bobEvents: PrivateStreamEvent[] = []
  const bob = new LnmPrivateStream({ url: sim.streamUrl, creds: sim.accounts[1]!, now: () => sim.now() })
  t.teardown(() => bob.stop())
  bob.on('event', (e) => bobEvents.push(e))
  bob.start()
  await within(once(bob, 'up'), 3000, 'bob up')
  const aliceAgain = nextEvent(s, (e) => e.topic === 'wallet/deposit')
  sim.wallet.deposit('alice', 7)
  await aliceAgain
  t.equal(bobEvents.length, 0, "another trader's stream sees none of alice's events")

  for (const secret of [alice.secret, alice.passphrase])
    t.notOk(
      lines.some((l) => l.includes(secret)),
      'no secret or passphrase in any log line',
    )
})

t.test('a dropped link: down, then up again with a fresh authenticate, events flow again', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]!
  const s = new LnmPrivateStream({ url: sim.streamUrl, creds: alice, now: () => sim.now(), reconnect: { baseMs: 50, capMs: 200 } })
  t.teardown(() => s.stop())
  const ups: number[] = []
  const downs: string[] = []
  s.on('up', () => ups.push(Date.now()))
  s.on('down', (r: string) => downs.push(r))
  s.start()
  await within(once(s, 'up'), 3000, 'first up')
  await sim.pause()
  await within(once(s, 'down'), 3000, 'down')
  t.equal(s.up, false, 'not up while the exchange is away')
  t.type(downs[0], 'string', "'down' carries a reason")
  await sim.resume()
  await within(once(s, 'up'), 5000, 'up again')
  t.equal(ups.length, 2, "a second 'up' after the reconnect (the caller reconciles over REST then)")
  const ev = nextEvent(s, (e) => e.topic === 'wallet/deposit')
  sim.wallet.deposit('alice', 1)
  await ev
  t.pass('events flow after the reconnect (re-authenticated with a fresh nonce: the simulator refuses a reused one)')
  await s.stop()
  t.equal(s.up, false, 'stop() takes it down')
  const before = ups.length
  await sleep(300) // proves no reconnect within 300 ms of stop()
  t.equal(ups.length, before, 'and it stays down')
})

t.test('refused credentials: never up, a warning without secrets, reconnects at the cap', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]!
  const creds = { ...alice, secret: `${alice.secret}-wrong` }
  const { lines, logger } = collectingLogger()
  const s = new LnmPrivateStream({ url: sim.streamUrl, creds, logger, now: () => sim.now(), reconnect: { baseMs: 20, capMs: 600 } })
  t.teardown(() => s.stop())
  const warns: any[] = []
  s.on('warn', (w) => warns.push(w))
  let ups = 0
  s.on('up', () => ups++)
  const started = Date.now()
  s.start()
  await within(
    new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (warns.filter((w) => w.what === 'handshake').length >= 2) {
          clearInterval(check)
          resolve()
        }
      }, 10)
    }),
    4000,
    'two refused handshakes',
  )
  const elapsed = Date.now() - started
  t.equal(ups, 0, 'never up')
  t.match(
    warns.find((w) => w.what === 'handshake'),
    { code: 'UNAUTHORIZED' },
    'the warning names the RPC error code',
  )
  t.ok(elapsed >= 590, `the second try waited the reconnect cap (${elapsed} ms), not the 20 ms base`)
  const text = JSON.stringify(warns) + lines.join('\n')
  for (const secret of [creds.secret, creds.passphrase, alice.secret])
    t.notOk(text.includes(secret), 'no secret or passphrase in warnings or logs')
})

t.test('authenticate rate-limited per IP: waits the server retryAfterMs, not the reconnect base', async (t) => {
  const sim = await startSimulator({ accounts: testAccounts(), tickMs: 0, rateLimit: relaxed, streamLimits: { authPerMinute: 1 } })
  t.teardown(() => sim.close())
  const alice = sim.accounts[0]!
  const bob = sim.accounts[1]!
  const first = new LnmPrivateStream({ url: sim.streamUrl, creds: alice, now: () => sim.now(), reconnect: { baseMs: 20, capMs: 100 } })
  t.teardown(() => first.stop())
  first.start()
  await within(once(first, 'up'), 3000, 'first up')
  const second = new LnmPrivateStream({ url: sim.streamUrl, creds: bob, now: () => sim.now(), reconnect: { baseMs: 20, capMs: 100 } })
  t.teardown(() => second.stop())
  const warns: any[] = []
  second.on('warn', (w) => warns.push(w))
  second.start()
  await within(
    new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (warns.some((w) => w.what === 'handshake')) {
          clearInterval(check)
          resolve()
        }
      }, 10)
    }),
    3000,
    'the refused authenticate',
  )
  t.match(warns[0], { what: 'handshake', code: 'TOO_MANY_REQUESTS' }, 'the 2nd authenticate within the minute is refused')
  await sleep(800) // proves no handshake retry within 800 ms
  t.equal(
    warns.filter((w) => w.what === 'handshake').length,
    1,
    'no retry within 800 ms although the reconnect cap is 100 ms (retryAfterMs ≈ 60 s)',
  )
  t.equal(second.up, false)
  t.match(
    sim.streamStats(),
    { authenticate: 2, refusedAuthenticate: 1, authenticated: 1 },
    'the simulator saw two authenticate, refused one',
  )
})

t.teardown(() => {
  wire.stop()
  if (wire.seen.length) throw new Error(`uncaught: ${wire.seen.map(String).join('; ')}`)
})

t.test('every reconnect waits for the gate (a connection budget shared by the node), the first connect does not', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]!
  let calls = 0
  let open!: () => void
  const gate = () => {
    calls++
    return new Promise<void>((resolve) => (open = resolve))
  }
  const s = new LnmPrivateStream({ url: sim.streamUrl, creds: alice, now: () => sim.now(), reconnect: { baseMs: 50, capMs: 200 }, gate })
  t.teardown(() => s.stop())
  s.start()
  await within(once(s, 'up'), 3000, 'first up')
  t.equal(calls, 0, 'the first connection is not gated (the caller admitted it)')
  const before = sim.streamEvents().upgrades.length
  sim.restartStream(0)
  await within(once(s, 'down'), 3000, 'down')
  await sleep(600) // proves no second gate request and no attempt while the gate is closed, over several reconnect delays (50–200 ms)
  t.equal(calls, 1, 'the reconnect asked the gate once')
  t.equal(sim.streamEvents().upgrades.length, before, 'and made no connection attempt while the gate was closed')
  open()
  await within(once(s, 'up'), 3000, 'up again once the gate opened')
  t.equal(sim.streamEvents().upgrades.length, before + 1, 'one attempt, after the gate')
  // stopped while waiting for the gate: the gate opening later must not open a socket
  sim.restartStream(0)
  await within(once(s, 'down'), 3000, 'down again')
  await until(() => calls >= 2, 3000, 'the second reconnect asking the gate')
  t.equal(calls, 2, 'the second reconnect waits for the gate too')
  await s.stop()
  open()
  await sleep(300) // proves no connection within 300 ms of the gate opening after stop()
  t.equal(sim.streamEvents().upgrades.length, before + 1, 'stopped during the wait: no connection when the gate opens')
})

t.test('dropped every few hundred ms: reconnects back off (the node-wide budget is the gate, tested above)', async (t) => {
  // the per-IP stream limits out of the way: what is measured is the client's own policy
  const sim = await startSimulator({
    accounts: testAccounts(),
    tickMs: 0,
    initialPrice: 100_000,
    rateLimit: relaxed,
    streamLimits: { authPerMinute: 100_000, connectionsPerHour: 100_000 },
  })
  t.teardown(() => sim.close())
  const alice = sim.accounts[0]!
  const stream = (stableMs?: number, logger?: ReturnType<typeof collectingLogger>['logger']) =>
    new LnmPrivateStream({
      url: sim.streamUrl,
      creds: alice,
      ...(logger !== undefined && { logger }),
      now: () => sim.now(),
      reconnect: { baseMs: 100, capMs: 3200 },
      ...(stableMs !== undefined && { stableMs }),
    })
  const delays = (lines: string[]) =>
    lines
      .filter((l) => l.includes('reconnect scheduled'))
      .map((l) => JSON.parse(l.slice(l.indexOf('{'), l.lastIndexOf('}') + 1)).delayMs as number)

  // the backoff alone (it starts over only after a stable link)
  const flappyLog = collectingLogger()
  const flappy = stream(undefined, flappyLog.logger)
  const eagerLog = collectingLogger()
  const eager = stream(0, eagerLog.logger) // starts over after every link: the old behaviour
  sim.faults.set({ privateStreamDropMs: 300 })
  flappy.start()
  eager.start()
  await sleep(4000) // the observation window: both streams flap under the fault for 4 s, then the delays are compared
  await flappy.stop()
  await eager.stop()
  const f = delays(flappyLog.lines)
  const e = delays(eagerLog.lines)
  t.ok(f.length >= 4 && f.at(-1)! >= 800, `a flapping link backs off exponentially: ${f.join(', ')} ms`)
  // the control: each link that came up starts the backoff over; under load an attempt can fail before its link is
  // up (then the next delay may double once), but it never climbs to what the flapping link reaches
  const median = [...e].sort((a, b) => a - b)[Math.floor(e.length / 2)] ?? Infinity
  t.ok(
    e.length >= 4 && median <= 200 && Math.max(...e) < 800,
    `(a link that starts over every time stays near the base: ${e.join(', ')} ms, median ${median})`,
  )

  sim.faults.reset()
})
