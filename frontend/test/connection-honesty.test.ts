/**
 * Item 7 defects of the dashboard, without a browser: a silent open socket leaves LIVE within seconds,
 * the HTTP fallback never lets fresh-enough data turn STALE and its countdown never exceeds its period,
 * one age per channel, the liquidation alert names what is stale, and a threshold of 0 is refused.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { RealtimeClient, type DashboardFetchResult } from '../src/lib/realtime-client.ts'
import { fallbackPollMs, pollCountdownSeconds } from '../src/lib/frame-policy.ts'
import { channelAgeMs, joinNames } from '../src/lib/channel-age.ts'
import { staleNote, thresholdProblem } from '../src/features/dashboard/alerts/liquidation-alert.tsx'
import { FakeWebSocket, dashboardBody } from './support/fakes.ts'

/** a body whose account data is 1 s old at the source, with the server's stale limit `staleAfterMs` */
const body = (now: number, seq: number, staleAfterMs: number) => dashboardBody(now, seq, { staleAfterMs, sourceAgeMs: 1_000 })

t.test('fallback period: at most half the stale limit; countdown never above the period', async (t) => {
  t.equal(fallbackPollMs(30_000, 30_000), 15_000, 'poll 30 s with stale 30 s would turn data STALE before each poll: 15 s instead')
  t.equal(fallbackPollMs(30_000, 120_000), 30_000, 'a generous stale limit keeps the configured period')
  t.equal(fallbackPollMs(30_000, 10_000), 5_000, 'stale 10 s: every 5 s')
  t.equal(fallbackPollMs(30_000, 1_000), 2_000, 'never faster than the floor')
  t.equal(pollCountdownSeconds(1_000 + 15_000, 1_000, 15_000), 15, 'just scheduled: the full period')
  t.equal(pollCountdownSeconds(1_000 + 15_000, 900, 15_000), 15, 'a clock a little behind never shows period + 1')
  t.equal(pollCountdownSeconds(1_000, 5_000, 15_000), 0, 'overdue shows 0, never negative')
})

t.test('one age per channel; names of stale parts; threshold validation', async (t) => {
  t.equal(channelAgeMs(undefined, 10, 0), null, 'no data: no age')
  t.equal(channelAgeMs(1_000, 5_000, 500), 4_500, 'age is measured on the server clock')
  t.equal(channelAgeMs(9_000, 5_000, 0), 0, 'never negative')
  t.equal(joinNames(['positions', 'prices']), 'positions and prices', 'two names')
  t.equal(joinNames(['balance', 'positions', 'prices']), 'balance, positions and prices', 'three names')
  t.equal(staleNote(['positions']), ' (positions are STALE)', 'the alert names the positions when they are the stale part')
  t.equal(staleNote(['prices']), ' (prices are STALE)', 'and the prices when they are')
  t.equal(staleNote(['positions', 'prices']), ' (positions and prices are STALE)', 'or both')
  t.equal(staleNote([]), '', 'nothing when all is fresh')
  t.match(thresholdProblem('0'), /more than 0 %/, 'a threshold of 0 is refused with a reason')
  t.match(thresholdProblem('-3'), /more than 0 %/, 'a negative threshold is refused')
  t.match(thresholdProblem(''), /Enter a distance/, 'an empty threshold is refused')
  t.match(thresholdProblem('abc'), /number/, 'text is refused')
  t.match(thresholdProblem('95'), /90 % or less/, 'above 90 % is refused')
  t.equal(thresholdProblem('0.5'), null, '0.5 % is accepted')
  t.equal(thresholdProblem('10'), null, '10 % is accepted')
})

t.test('a socket that is open but silent leaves LIVE within seconds, polls over HTTP, and comes back', async (t) => {
  FakeWebSocket.instances = []
  let clock = 1_000_000
  let polls = 0
  const client = new RealtimeClient({
    url: 'ws://gateway/ws',
    getToken: () => 'tok',
    refreshToken: async () => 'tok',
    fetchDashboard: async (): Promise<DashboardFetchResult> => ({ kind: 'ok', body: body(clock, ++polls, 10_000) }),
    onTerminal: () => {},
    WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket,
    now: () => clock,
    isOnline: () => true,
    events: null,
    staleAfterMs: 10_000,
  })
  t.teardown(() => client.stop())
  client.start()
  await sleep(0)
  const ws = FakeWebSocket.instances[0]!
  ws.open()
  ws.receive({
    type: 'connection',
    connectionId: 'c',
    userId: 'u',
    serverTime: clock,
    heartbeatMs: 25_000,
    protocol: 1,
    source: 'simulator',
  })
  t.equal(client.getState().transport, 'live', 'LIVE after the connection frame')
  const tickFor = (ms: number) => {
    for (let i = 0; i < ms / 1000; i++) {
      clock += 1000
      ;(client as unknown as { onTick(): void }).onTick()
    }
  }
  // the socket stays open but nothing arrives: no ticker, no pong
  let silentAfter = -1
  for (let s = 1; s <= 30; s++) {
    tickFor(1000)
    if (client.getState().transport !== 'live') {
      silentAfter = s
      break
    }
  }
  t.ok(silentAfter > 0 && silentAfter <= 8, `the chip left LIVE ${silentAfter} s into the silence (limit 8 s)`)
  t.equal(client.getState().transport, 'silent', 'and says SILENT (the socket is still open)')
  t.ok(
    ws.sent.some((m) => m.type === 'ping'),
    'a ping was sent to test the quiet socket',
  )
  await sleep(0)
  t.ok(polls >= 2, 'the HTTP fallback started while the socket is silent')
  t.ok(client.getState().nextPollAt !== null, 'and the next poll is scheduled')
  t.equal(client.getState().pollWaitMs, 5_000, 'every half stale limit (5 s with a 10 s limit)')
  ws.receive({ type: 'pong', request_id: 'x', serverTime: clock })
  t.equal(client.getState().transport, 'live', 'a frame on the socket brings LIVE back')
  t.equal(client.getState().nextPollAt, null, 'and stops the fallback polling')
  // silent again, long enough: the socket is replaced
  tickFor(16_000)
  t.equal(ws.closedWith?.code, 4000, 'a socket silent past the pong timeout is dropped')
  t.ok(['polling', 'reconnecting'].includes(client.getState().transport), `then the page polls/reconnects (${client.getState().transport})`)
})
