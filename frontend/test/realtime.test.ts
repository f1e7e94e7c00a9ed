/**
 * The dashboard's realtime client, without a browser: which frames may replace what is shown, the
 * full-jitter backoff, the terminal close codes, and the client's reactions to a socket that closes.
 */
import { mock } from 'node:test'
import { setImmediate } from 'node:timers/promises'
import t from 'tap'
import { backoffDelay, isNewer, isTerminalCloseCode, isTokenExpiredCode, judgeFrame, terminalReason } from '../src/lib/frame-policy.ts'
import { RealtimeClient, type DashboardFetchResult } from '../src/lib/realtime-client.ts'
import { estimatePl, liquidationDistancePct, sortRows, toRows, DEFAULT_SORT } from '../src/features/dashboard/positions/position-math.ts'
import type { FuturesTrade } from '../../backend/schemas/ws-protocol.ts'
import { FakeWebSocket, dashboardBody } from './support/fakes.ts'

t.test('positions arithmetic (LN Markets inverse futures)', async (t) => {
  t.equal(Math.round(estimatePl('long', 1_000, 50_000, 100_000)), 1_000_000, 'long: quantity·(1/entry − 1/price)·1e8 sats')
  t.equal(Math.round(estimatePl('short', 1_000, 50_000, 100_000)), -1_000_000, 'short is the negative')
  t.equal(liquidationDistancePct('long', 90_000, 100_000), 10, 'a long 10 % above its liquidation')
  t.equal(liquidationDistancePct('short', 105_000, 100_000), 5, 'a short 5 % below its liquidation')
  const trade = (id: string, side: 'buy' | 'sell', liquidation: number, pl: number) =>
    ({
      id,
      side,
      quantity: 100,
      margin: 10_000,
      leverage: 10,
      price: 100_000,
      entryPrice: 100_000,
      liquidation,
      stoploss: 0,
      takeprofit: 0,
      pl,
    }) as FuturesTrade
  const trades = [trade('far', 'buy', 50_000, 7), trade('near', 'sell', 101_000, 8)]
  const exact = toRows(trades, 2_000, { price: 100_000, sourceTs: 1_000 })
  t.same(
    exact.map((r) => [r.pl, r.plEstimated]),
    [
      [7, false],
      [8, false],
    ],
    'with a price older than the positions, the exchange P&L is shown',
  )
  const est = toRows(trades, 1_000, { price: 110_000, sourceTs: 2_000 })
  t.ok(
    est.every((r) => r.plEstimated),
    'with a newer live price, P&L is estimated and flagged',
  )
  t.equal(Math.round(est[0]!.pl), Math.round(estimatePl('long', 100, 100_000, 110_000)), 'from the inverse formula')
  t.same(
    sortRows(est, DEFAULT_SORT).map((r) => r.id),
    ['near', 'far'],
    'riskiest (closest to liquidation) first by default',
  )
})

t.test('frame acceptance', async (t) => {
  const now = 1_000_000
  const shown = { epoch: 1, seq: 10, sourceTs: now - 2_000 }
  t.equal(
    judgeFrame(shown, { epoch: 1, seq: 11, sourceTs: now - 1_000 }, now, 30_000),
    'accept',
    'a fresh frame with a newer seq is accepted',
  )
  t.equal(judgeFrame(undefined, { epoch: 1, seq: 1, sourceTs: now }, now, 30_000), 'accept', 'the first frame of a channel is accepted')
  t.equal(
    judgeFrame(shown, { epoch: 1, seq: 11, sourceTs: now - 30_001 }, now, 30_000),
    'too_old',
    'a frame whose data is older than 30 s is rejected',
  )
  t.equal(judgeFrame(shown, { epoch: 1, seq: 11, sourceTs: now - 30_000 }, now, 30_000), 'accept', 'exactly 30 s old is still accepted')
  t.equal(judgeFrame(shown, { epoch: 1, seq: 10, sourceTs: shown.sourceTs }, now, 30_000), 'not_newer', 'the same seq is rejected')
  t.equal(
    judgeFrame(shown, { epoch: 1, seq: 10, sourceTs: now }, now, 30_000),
    'refresh',
    'the same seq known true later only renews the age of what is shown',
  )
  t.equal(judgeFrame(shown, { epoch: 1, seq: 9, sourceTs: now }, now, 30_000), 'not_newer', 'an older seq is rejected')
  t.equal(
    judgeFrame(shown, { epoch: 2, seq: 1, sourceTs: now - 1_000 }, now, 30_000),
    'accept',
    'a new epoch (gateway restart) with newer data is accepted despite a lower seq',
  )
  t.notOk(isNewer(shown, { epoch: 0, seq: 50, sourceTs: now - 5_000 }), 'an older epoch with older data is not newer')
  t.equal(
    judgeFrame(shown, { epoch: 1, seq: 11, sourceTs: now - 5_000 }, now, 3_000),
    'too_old',
    'the threshold is the one given (the server may lower it)',
  )
})

t.test('full-jitter exponential backoff capped at 30 s', async (t) => {
  t.equal(
    backoffDelay(0, () => 0),
    0,
    'full jitter reaches down to 0',
  )
  t.equal(
    backoffDelay(0, () => 0.999999),
    499,
    'attempt 0 stays under the 500 ms base',
  )
  t.equal(
    backoffDelay(3, () => 0.5),
    2_000,
    'attempt 3 draws from [0, 4 s)',
  )
  t.equal(
    backoffDelay(20, () => 0.999999),
    29_999,
    'a large attempt is capped at 30 s',
  )
  t.equal(
    backoffDelay(10_000, () => 0.999999),
    29_999,
    'a huge attempt does not overflow and stays capped',
  )
  let max = 0
  let min = Infinity
  for (let i = 0; i < 2_000; i++) {
    const d = backoffDelay(8, Math.random)
    max = Math.max(max, d)
    min = Math.min(min, d)
  }
  t.ok(max <= 30_000, 'random draws never exceed the cap')
  t.ok(min < 5_000 && max > 25_000, 'random draws spread over the whole [0, cap] range (full jitter, not equal jitter)')
})

t.test('close codes', async (t) => {
  for (const code of [4500, 4501, 4502, 4503, 4999]) t.ok(isTerminalCloseCode(code), `${code} is terminal: no reconnect`)
  for (const code of [1000, 1001, 1006, 1011, 1013, 4000, 4001, 4008, 4029, 4499, 5000])
    t.notOk(isTerminalCloseCode(code), `${code} is not terminal: reconnect`)
  t.ok(isTokenExpiredCode(4001), '4001 means refresh the token then reconnect')
  t.match(terminalReason(4501, 'invalid token'), /sign in again.*invalid token.*4501/i, 'the login page is told why, with the code')
})

// ---------- the client against a fake WebSocket ----------

function makeClient(t: { teardown: (fn: () => void) => void }, onTerminal: (code: number, reason: string) => void = () => {}) {
  FakeWebSocket.instances = []
  let polls = 0
  const client = new RealtimeClient({
    url: 'ws://gateway/ws',
    getToken: () => 'token-1',
    refreshToken: async () => 'token-2',
    fetchDashboard: async (): Promise<DashboardFetchResult> => ({ kind: 'ok', body: dashboardBody(Date.now(), ++polls) }),
    onTerminal,
    WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket,
    random: () => 0.5,
    isOnline: () => true,
    events: null,
  })
  t.teardown(() => client.stop())
  return { client, polls: () => polls }
}

/** lets pending promise callbacks (the async dashboard fetch) run; not mocked by mock.timers below */
const tick = () => setImmediate()

t.test('client: auth message first, LIVE on connection, frames filtered', async (t) => {
  const { client } = makeClient(t)
  client.start()
  const ws = FakeWebSocket.instances[0]!
  ws.open()
  t.same(ws.sent[0]?.type, 'auth', 'the first message is auth')
  t.equal(ws.sent[0]?.token, 'token-1', 'carrying the access token (never in the URL)')
  t.notMatch(ws.url, /token/, 'the URL holds no token')
  ws.accept()
  t.equal(client.getState().transport, 'live', 'LIVE once the server confirms the connection')
  const t0 = Date.now()
  const frame = (seq: number, ageMs: number) => ({
    type: 'data_update',
    channel: 'ticker',
    epoch: 1,
    seq,
    sourceTs: t0 - ageMs,
    ts: Date.now(),
    source: 'simulator',
    data: { index: 1, lastPrice: 1, bidPrice: 1, askPrice: 1, fundingRate: 0, fundingTime: '' },
  })
  ws.receive(frame(5, 100))
  t.equal(client.getState().channels.ticker?.seq, 5, 'a fresh frame is shown')
  ws.receive(frame(4, 100))
  ws.receive(frame(5, 100))
  t.equal(client.getState().channels.ticker?.seq, 5, 'frames with a seq not newer are rejected')
  ws.receive(frame(6, 31_000))
  t.equal(client.getState().channels.ticker?.seq, 5, 'a frame older than 30 s is rejected')
  t.same(client.getState().rejectedFrames, { too_old: 1, not_newer: 2 }, 'rejections are counted by reason')
  const before = client.getState().channels.ticker!
  const renewed = { ...frame(5, -50), data: { ...frame(5, 0).data, lastPrice: 999 } }
  ws.receive(renewed)
  const after = client.getState().channels.ticker!
  t.ok(after.sourceTs > before.sourceTs && after.seq === 5, 'a same-seq frame known true later renews the age')
  t.equal(after.data, before.data, 'but never replaces the data shown')
  client.setToken('token-2')
  t.same(
    ws.sent.at(-1),
    { type: 'auth', request_id: ws.sent.at(-1)?.request_id, token: 'token-2' },
    'a refreshed token is sent in-band on the same socket',
  )
  t.equal(FakeWebSocket.instances.length, 1, 'still one socket')
})

t.test('client: a dropped socket polls over HTTP and reconnects; a terminal code does not', async (t) => {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: Date.now() })
  t.teardown(() => mock.timers.reset())
  const terminal: Array<[number, string]> = []
  const { client, polls } = makeClient(t, (c, r) => terminal.push([c, r]))
  client.start()
  await tick()
  const first = polls()
  const ws = FakeWebSocket.instances[0]!
  ws.open()
  ws.accept()
  ws.serverClose(1006)
  await tick()
  t.ok(polls() > first, 'the HTTP fallback polls at once when the socket drops')
  const s = client.getState()
  t.equal(s.transport, 'polling', 'the chip says POLLING while the fallback works')
  t.ok(
    s.nextPollAt !== null && s.nextPollAt - Date.now() > 12_000 && s.nextPollAt - Date.now() <= 15_000,
    'the next poll is half the 30 s stale limit away (15 s), so no value turns STALE between polls',
  )
  t.ok(s.nextReconnectAt !== null && s.nextReconnectAt - Date.now() <= 30_000, 'a reconnect is scheduled within the cap')
  client.resync('online')
  t.equal(FakeWebSocket.instances.length, 2, 'resync (online/focus/wake) reconnects at once instead of waiting out the backoff')
  const ws2 = FakeWebSocket.instances[1]!
  ws2.open()
  ws2.receive({
    type: 'connection',
    connectionId: 'c2',
    userId: 'u',
    serverTime: Date.now(),
    heartbeatMs: 25_000,
    protocol: 1,
    source: 'simulator',
  })
  t.equal(client.getState().transport, 'live', 'LIVE again after reconnecting')
  t.equal(client.getState().nextPollAt, null, 'polling stops while the socket is live')
  t.ok(
    ws2.sent.some((m) => m.type === 'refresh_data'),
    'a reconnect asks for fresh snapshots (resync)',
  )
  ws2.serverClose(4501, 'invalid token')
  t.same(terminal, [[4501, 'invalid token']], 'a terminal close code sends the user back to login with the reason')
  t.equal(client.getState().transport, 'stopped', 'and the client stops')
  const pollsAtClose = polls()
  mock.timers.tick(60_000) // proves no reconnect and no poll within 60 s (twice the 30 s backoff cap) of a terminal close
  await tick()
  t.equal(FakeWebSocket.instances.length, 2, 'no reconnect after a terminal close code')
  t.equal(polls(), pollsAtClose, 'and no HTTP polling either')
})

t.test('client: a fresh frame renews the age of exactly the version shown', async (t) => {
  const { client } = makeClient(t)
  client.start()
  const ws = FakeWebSocket.instances[0]!
  ws.open()
  ws.accept()
  const t0 = Date.now()
  ws.receive({
    type: 'data_update',
    channel: 'account',
    epoch: 2,
    seq: 7,
    sourceTs: t0 - 20_000,
    ts: t0,
    source: 'simulator',
    data: { username: 'demo', balance: 5, syntheticUsdBalance: 0, feeTier: 0 },
  })
  const shown = client.getState().channels.account!
  ws.receive({ type: 'fresh', ts: t0, channels: [{ channel: 'account', epoch: 2, seq: 6, sourceTs: t0 - 10 }] })
  t.equal(client.getState().channels.account!.sourceTs, shown.sourceTs, 'an older seq does not renew the age')
  ws.receive({ type: 'fresh', ts: t0, channels: [{ channel: 'account', epoch: 1, seq: 7, sourceTs: t0 - 10 }] })
  t.equal(client.getState().channels.account!.sourceTs, shown.sourceTs, 'another epoch does not renew the age')
  ws.receive({
    type: 'fresh',
    ts: t0,
    channels: [
      { channel: 'account', epoch: 2, seq: 7, sourceTs: t0 - 10 },
      { channel: 'positions', epoch: 2, seq: 1, sourceTs: t0 - 10 },
    ],
  })
  const after = client.getState().channels.account!
  t.equal(after.sourceTs, t0 - 10, 'the same version, confirmed later: the age is renewed')
  t.equal(after.data, shown.data, 'the data is untouched')
  t.notOk(client.getState().channels.positions, 'a fresh frame never creates a channel that was not shown')
})
