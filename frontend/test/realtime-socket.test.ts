/**
 * RealtimeSocket (frontend/src/lib/realtime-socket.ts) on its own, with fakes only: a fake WebSocket class passed
 * as `WebSocketImpl`, an injected `random`, and node:test's fake timers (setTimeout and Date), so the auth
 * timeout, the heartbeat and every backoff are stepped through exactly, with no wall-clock wait.
 */
import { mock } from 'node:test'
import t from 'tap'
import { RealtimeSocket, type Heartbeat, type SocketOptions } from '../src/lib/realtime-socket.ts'
import { FakeWebSocket } from './support/fakes.ts'
import {
  BACKOFF_BASE_MS,
  BACKOFF_CAP_MS,
  WS_AUTH_TIMEOUT_MS,
  WS_PING_EVERY_MS,
  WS_PONG_TIMEOUT_MS,
  WS_SILENT_AFTER_MS,
} from '../src/config/constants.ts'

const URL = 'wss://gateway.example/ws'
const T0 = 1_800_000_000_000

interface Harness {
  socket: RealtimeSocket
  /** events in order: 'connecting', 'closed', 'down', 'terminal:<code>:<reason>', 'scheduled:<delay>', 'frame:<type>' */
  log: string[]
  /** the delays of onReconnectScheduled, in order */
  delays: number[]
  refreshes: () => number
  setToken: (token: string | null) => void
  /** the n-th socket made (0-based) */
  ws: (n: number) => FakeWebSocket
  sockets: () => number
  /** move the fake clock (timers due fire in order, Date.now() follows) */
  advance: (ms: number) => void
}

type Tap = { teardown: (fn: () => void) => void }

function harness(t: Tap, opts: { random?: () => number; refreshed?: string | null } = {}): Harness {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 })
  FakeWebSocket.instances = []
  let token: string | null = 'token-1'
  let refreshes = 0
  const log: string[] = []
  const delays: number[] = []
  const options: SocketOptions = {
    url: URL,
    getToken: () => token,
    refreshToken: async () => {
      refreshes++
      token = opts.refreshed === undefined ? 'token-2' : opts.refreshed
      return token
    },
    WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket,
    now: () => Date.now(),
    random: opts.random ?? (() => 0.5),
  }
  const socket = new RealtimeSocket(options, {
    onFrame: (frame) => log.push(`frame:${frame.type}`),
    onConnecting: () => log.push('connecting'),
    onReconnectScheduled: (at) => {
      delays.push(at - Date.now())
      log.push(`scheduled:${at - Date.now()}`)
    },
    onClosed: () => log.push('closed'),
    onDown: () => log.push('down'),
    onTerminal: (code, reason) => log.push(`terminal:${code}:${reason}`),
  })
  t.teardown(() => {
    socket.stop()
    mock.timers.reset()
  })
  return {
    socket,
    log,
    delays,
    refreshes: () => refreshes,
    setToken: (v) => (token = v),
    ws: (n) => {
      const ws = FakeWebSocket.instances[n]
      if (!ws) throw new Error(`no socket #${n} (${FakeWebSocket.instances.length} made)`)
      return ws
    },
    sockets: () => FakeWebSocket.instances.length,
    advance: (ms) => mock.timers.tick(ms),
  }
}

/** let a settled promise's callbacks run (the token refresh); no timer, no wall clock */
const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

/** open the n-th socket and have the server accept its auth */
function connect(h: Harness, n: number) {
  h.ws(n).open()
  h.ws(n).accept()
}

t.test('auth is the first message on the open socket; the token is never in the URL', async (t) => {
  const h = harness(t)
  h.socket.start()
  t.equal(h.sockets(), 1, 'start() opens one socket')
  t.equal(h.ws(0).url, URL, 'the socket URL is exactly the configured one')
  t.notMatch(h.ws(0).url, /token/, 'no token (nor a token parameter) in the URL')
  t.same(h.ws(0).sent, [], 'nothing is sent before the socket opens')
  h.ws(0).open()
  t.equal(h.ws(0).sent.length, 1, 'one message on open')
  t.match(h.ws(0).sent[0], { type: 'auth', token: 'token-1' }, 'and it is auth carrying the access token')
  t.type(h.ws(0).sent[0]?.request_id, 'string', 'with a request id')
  t.notOk(h.socket.live, 'not live before the server confirms the connection')
  h.ws(0).accept()
  t.ok(h.socket.live, 'live once the connection frame arrives')
  t.ok(h.socket.hasConnected, 'hasConnected after the first connection frame')

  h.socket.sendToken('token-3')
  t.match(h.ws(0).sent.at(-1), { type: 'auth', token: 'token-3' }, 'a new token goes in-band on the same socket')
  t.equal(h.sockets(), 1, 'no new socket for a new token')
})

t.test('no token: no socket is opened, a reconnect is scheduled instead', async (t) => {
  const h = harness(t)
  h.setToken(null)
  h.socket.start()
  t.equal(h.sockets(), 0, 'no socket without a token')
  t.same(h.delays, [Math.floor(0.5 * BACKOFF_BASE_MS)], 'a reconnect after the first backoff')
  h.setToken('token-1')
  h.advance(h.delays[0]!)
  t.equal(h.sockets(), 1, 'it connects once a token is there')
})

t.test('auth timeout: an open socket the server never accepts is dropped and replaced', async (t) => {
  const h = harness(t)
  h.socket.start()
  h.ws(0).open()
  h.advance(WS_AUTH_TIMEOUT_MS - 1)
  t.equal(h.ws(0).closedWith, null, 'still waiting 1 ms before the auth timeout')
  t.notOk(h.log.includes('closed'), 'no close reported yet')
  h.advance(1)
  t.same(h.ws(0).closedWith, { code: 4000, reason: 'auth timeout' }, 'closed by the client at the auth timeout')
  t.same(h.log.slice(-3), ['closed', 'down', `scheduled:${Math.floor(0.5 * BACKOFF_BASE_MS)}`], 'reported and a reconnect scheduled')
  t.notOk(h.socket.live, 'not live')

  // the next socket is accepted in time: its auth timer is cleared
  h.advance(h.delays[0]!)
  t.equal(h.sockets(), 2, 'the reconnect opens a second socket')
  connect(h, 1)
  h.advance(WS_AUTH_TIMEOUT_MS * 3)
  t.equal(h.ws(1).closedWith, null, 'an accepted socket is not closed by the auth timer')
  t.ok(h.socket.live, 'and stays live')
})

t.test('heartbeat: ping when quiet, pong clears it, silent then dropped when unanswered', async (t) => {
  const h = harness(t)
  h.socket.start()
  connect(h, 0)
  const ws = h.ws(0)
  const pings = () => ws.sent.filter((m) => m.type === 'ping').length
  const beat = (): Heartbeat => h.socket.heartbeat(Date.now())

  h.advance(WS_PING_EVERY_MS)
  t.same(beat(), { kind: 'talking' }, 'quiet for exactly the ping interval: talking')
  t.equal(pings(), 0, 'no ping yet')
  h.advance(1)
  t.same(beat(), { kind: 'talking' }, 'quiet past the ping interval: still talking')
  t.equal(pings(), 1, 'and a ping is sent')
  h.advance(500)
  t.same(beat(), { kind: 'talking' }, 'waiting for the pong, within the silent limit')
  t.equal(pings(), 1, 'no second ping while one is unanswered')
  ws.receive({ type: 'pong', request_id: 'p', serverTime: Date.now() })
  t.same(beat(), { kind: 'talking' }, 'a pong: talking')
  h.advance(WS_PING_EVERY_MS)
  t.same(beat(), { kind: 'talking' }, 'after a pong, quiet for the ping interval: talking')
  t.equal(pings(), 1, 'the pong reset the quiet time: no ping yet')
  h.advance(1)
  beat()
  t.equal(pings(), 2, 'quiet again past the interval: a second ping')

  // unanswered from here on
  const pingAt = Date.now()
  const lastFrameAt = pingAt - WS_PING_EVERY_MS - 1
  h.advance(WS_SILENT_AFTER_MS)
  t.same(beat(), { kind: 'talking' }, 'unanswered for exactly the silent limit: still talking')
  h.advance(1)
  t.same(beat(), { kind: 'silent', since: lastFrameAt }, 'unanswered past the silent limit: silent since the last frame')
  t.ok(h.socket.live, 'a silent socket is not closed yet')
  h.advance(WS_PONG_TIMEOUT_MS - WS_SILENT_AFTER_MS - 1)
  t.same(beat(), { kind: 'silent', since: lastFrameAt }, 'unanswered for exactly the pong timeout: still silent')
  h.advance(1)
  t.same(beat(), { kind: 'dropped' }, 'unanswered past the pong timeout: dropped')
  t.same(ws.closedWith, { code: 4000, reason: 'heartbeat timeout' }, 'the client closes the dead socket')
  t.notOk(h.socket.live, 'not live')
  t.same(h.log.slice(-3), ['closed', 'down', `scheduled:${Math.floor(0.5 * BACKOFF_BASE_MS)}`], 'and schedules a reconnect')
})

t.test('heartbeat: any frame answers a ping', async (t) => {
  const h = harness(t)
  h.socket.start()
  connect(h, 0)
  h.advance(WS_PING_EVERY_MS + 1)
  h.socket.heartbeat(Date.now())
  t.equal(h.ws(0).sent.filter((m) => m.type === 'ping').length, 1, 'a ping')
  h.advance(WS_SILENT_AFTER_MS)
  h.ws(0).receive({ type: 'fresh', ts: Date.now(), channels: [{ channel: 'ticker', epoch: 1, seq: 1, sourceTs: Date.now() }] })
  h.advance(WS_PONG_TIMEOUT_MS)
  const verdict = h.socket.heartbeat(Date.now())
  t.not(verdict.kind, 'dropped', 'a frame after the ping proves the socket alive, whatever its type')
  t.not(verdict.kind, 'silent', 'nor is it silent')
})

t.test('close 4001: refresh the token, then reconnect at once (no backoff)', async (t) => {
  const h = harness(t)
  h.socket.start()
  connect(h, 0)
  h.ws(0).serverClose(4001, 'token expired')
  t.equal(h.refreshes(), 1, 'the token is refreshed')
  t.same(h.log.slice(-2), ['closed', 'down'], 'reported as down')
  t.same(h.delays, [], 'no backoff timer for an expired token')
  await flush()
  t.equal(h.sockets(), 2, 'a new socket as soon as the refresh returns')
  h.ws(1).open()
  t.match(h.ws(1).sent[0], { type: 'auth', token: 'token-2' }, 'it authenticates with the refreshed token')
  t.notMatch(h.ws(1).url, /token/, 'still no token in the URL')
})

t.test('close 4001 and the refresh fails: back off instead', async (t) => {
  const h = harness(t, { refreshed: null })
  h.socket.start()
  connect(h, 0)
  h.ws(0).serverClose(4001)
  await flush()
  t.equal(h.sockets(), 1, 'no socket without a token')
  t.equal(h.delays.length, 1, 'a reconnect is scheduled')
  t.ok(h.delays[0]! >= 0 && h.delays[0]! <= BACKOFF_BASE_MS * 2, 'within the backoff for one failed attempt')
})

for (const code of [4500, 4501, 4502, 4503, 4999]) {
  t.test(`close ${code} is terminal: reported, never reconnected`, async (t) => {
    const h = harness(t)
    h.socket.start()
    connect(h, 0)
    h.ws(0).serverClose(code, 'no')
    t.same(h.log.slice(-2), ['closed', `terminal:${code}:no`], 'terminal, with the code and the reason')
    t.notOk(h.log.includes('down'), 'never reported as down (no reconnect coming)')
    h.advance(BACKOFF_CAP_MS * 10)
    await flush()
    t.equal(h.sockets(), 1, 'no new socket, however long we wait')
    t.same(h.delays, [], 'no reconnect scheduled')
    t.equal(h.refreshes(), 0, 'no token refresh')
  })
}

for (const code of [1000, 1001, 1006, 1011, 4000, 4002, 4499, 5000]) {
  t.test(`close ${code}: full-jitter backoff, then a reconnect`, async (t) => {
    const h = harness(t, { random: () => 0.999_999 })
    h.socket.start()
    connect(h, 0)
    h.ws(0).serverClose(code)
    t.same(h.log.slice(-2), ['down', `scheduled:${Math.floor(0.999_999 * BACKOFF_BASE_MS)}`], 'down, and a reconnect scheduled')
    t.notOk(
      h.log.some((e) => e.startsWith('terminal')),
      'not terminal',
    )
    t.equal(h.refreshes(), 0, 'no token refresh')
    h.advance(h.delays[0]! - 1)
    t.equal(h.sockets(), 1, 'not before the delay')
    h.advance(1)
    t.equal(h.sockets(), 2, 'reconnected at the delay')
  })
}

t.test('backoff: uniform in [0, min(cap, base·2^attempt)], attempt counting failures', async (t) => {
  for (const [r, name] of [
    [0, 'random 0'],
    [0.5, 'random 0.5'],
    [0.999_999, 'random just below 1'],
  ] as const) {
    await t.test(name, async (t) => {
      const h = harness(t, { random: () => r })
      h.socket.start()
      connect(h, 0)
      h.ws(0).serverClose(1006)
      for (let n = 1; n <= 9; n++) {
        const attempt = n - 1
        const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt)
        const delay = h.delays[attempt]!
        t.equal(delay, Math.floor(r * ceiling), `attempt ${attempt}: ${delay} ms = ⌊${r}·${ceiling}⌋`)
        t.ok(delay >= 0 && delay <= ceiling, `attempt ${attempt}: within [0, ${ceiling}]`)
        t.equal(h.socket.attempts, attempt + 1, `attempt ${attempt}: counted`)
        h.advance(delay)
        t.equal(h.sockets(), n + 1, `attempt ${attempt}: a socket at the delay`)
        h.ws(n).serverClose(1006) // fails before it is accepted
      }
      t.equal(h.delays.at(-1), Math.floor(r * BACKOFF_CAP_MS), 'the last waits are capped')
    })
  }
})

t.test('backoff starts over after a successful connection, not after a mere open', async (t) => {
  const h = harness(t, { random: () => 0.999_999 })
  const ceilingOf = (d: number) => [500, 1000, 2000, 4000, 8000, 16000, 30000].find((c) => d === Math.floor(0.999_999 * c))
  h.socket.start()
  connect(h, 0)
  for (let n = 0; n < 4; n++) {
    h.ws(n).serverClose(1006)
    h.advance(h.delays.at(-1)!)
  }
  t.same(h.delays.map(ceilingOf), [500, 1000, 2000, 4000], 'four failures: the ceiling doubles each time')
  h.ws(4).open() // opened, but the server never accepts it
  h.ws(4).serverClose(1006)
  t.equal(ceilingOf(h.delays.at(-1)!), 8000, 'an open socket that was never accepted still counts as a failure')
  h.advance(h.delays.at(-1)!)
  connect(h, 5)
  t.equal(h.socket.attempts, 0, 'a connection frame resets the failure count')
  h.ws(5).serverClose(1006)
  t.equal(ceilingOf(h.delays.at(-1)!), BACKOFF_BASE_MS, 'the next drop waits at most the base again')
  h.advance(h.delays.at(-1)!)
  connect(h, 6)
  t.match(h.ws(6).sent, [{ type: 'auth' }, { type: 'refresh_data' }], 'a reconnect asks for fresh snapshots after auth')
})

t.test('reconnectNow forgets the backoff and connects at once', async (t) => {
  const h = harness(t, { random: () => 0.999_999 })
  h.socket.start()
  connect(h, 0)
  h.ws(0).serverClose(1006)
  h.socket.reconnectNow()
  t.equal(h.sockets(), 2, 'connected without waiting')
  h.advance(BACKOFF_CAP_MS)
  t.equal(h.sockets(), 2, 'the cancelled backoff timer does not open another')
  h.socket.reconnectNow()
  t.equal(h.sockets(), 2, 'no second socket while one is opening')
})

t.test('stop() cancels every timer and every reconnect', async (t) => {
  await t.test('a pending reconnect', async (t) => {
    const h = harness(t)
    h.socket.start()
    connect(h, 0)
    h.ws(0).serverClose(1006)
    t.equal(h.delays.length, 1, 'a reconnect is pending')
    h.socket.stop()
    h.advance(BACKOFF_CAP_MS * 10)
    t.equal(h.sockets(), 1, 'it never fires')
  })
  await t.test('a pending auth timeout', async (t) => {
    const h = harness(t)
    h.socket.start()
    h.ws(0).open()
    h.socket.stop()
    t.same(h.ws(0).closedWith, { code: 1000, reason: 'client stopped' }, 'the socket is closed normally')
    const logged = h.log.length
    h.advance(WS_AUTH_TIMEOUT_MS * 2)
    t.equal(h.log.length, logged, 'the auth timer reports nothing')
    t.same(h.delays, [], 'and schedules nothing')
    t.equal(h.sockets(), 1, 'no new socket')
  })
  await t.test('a token refresh in flight', async (t) => {
    const h = harness(t)
    h.socket.start()
    connect(h, 0)
    h.ws(0).serverClose(4001)
    h.socket.stop()
    await flush()
    h.advance(BACKOFF_CAP_MS * 10)
    t.equal(h.sockets(), 1, 'the refreshed token opens no socket after stop()')
  })
  await t.test('a restart: the token refresh of the run before opens no socket in the new one', async (t) => {
    const h = harness(t)
    h.socket.start()
    connect(h, 0)
    h.ws(0).serverClose(4001) // refresh in flight
    h.socket.stop()
    h.socket.start()
    t.equal(h.sockets(), 2, 'start() connects at once')
    h.ws(1).serverClose(1006) // the new run backs off
    await flush() // the old run's refresh returns now
    t.equal(h.sockets(), 2, 'no socket before the new backoff is over')
    h.advance(h.delays.at(-1)!)
    t.equal(h.sockets(), 3, 'one at its end')
  })
  await t.test('a restart: the reconnect timer of the run before does not fire into the new one', async (t) => {
    const h = harness(t)
    h.socket.start()
    connect(h, 0)
    h.ws(0).serverClose(1006) // old timer due at +250 ms
    h.advance(100)
    h.socket.stop()
    h.socket.start()
    t.equal(h.sockets(), 2, 'start() connects at once')
    h.ws(1).serverClose(1006) // new timer due 250 ms from now
    h.advance(h.delays.at(-1)! - 1)
    t.equal(h.sockets(), 2, 'no socket before the new backoff is over')
    h.advance(1)
    t.equal(h.sockets(), 3, 'one at its end')
  })
  await t.test('a live socket', async (t) => {
    const h = harness(t)
    h.socket.start()
    connect(h, 0)
    h.socket.stop()
    t.same(h.ws(0).closedWith, { code: 1000, reason: 'client stopped' }, 'closed normally')
    t.notOk(h.socket.live, 'not live')
    h.ws(0).serverClose(1006) // a late close event from the old socket
    h.advance(BACKOFF_CAP_MS * 10)
    t.equal(h.sockets(), 1, 'its late close event schedules nothing')
  })
})
