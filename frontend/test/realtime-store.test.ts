/**
 * The realtime client's pure state (frontend/src/lib/realtime-store.ts) with plain values: no socket, no timer.
 * Which frames and HTTP snapshots replace what is shown, what only renews an age, what is dropped and counted,
 * how upstream health moves, when a freshness read is due, and what the connection chip says.
 */
import t from 'tap'
import {
  RealtimeStore,
  deriveTransport,
  freshnessReadDue,
  initialState,
  mergeState,
  onConnectionFrame,
  onDashboard,
  onDataFrame,
  onFreshFrame,
  onPongFrame,
  onStatusFrame,
  type LinkStatus,
  type Patch,
  type RealtimeState,
} from '../src/lib/realtime-store.ts'
import { staleLimitOf } from '../../backend/schemas/channels.ts'
import type { DashboardResponse, DataUpdateFrame, StatusFrame } from '../../backend/schemas/ws-protocol.ts'

const NOW = 1_700_000_000_000
const STALE = 30_000

const account = (balance: number) => ({ username: 'demo', balance, syntheticUsdBalance: 0, feeTier: 0, equity: balance })
const ticker = (lastPrice: number) => ({ index: 1, lastPrice, bidPrice: 1, askPrice: 1, fundingRate: 0, fundingTime: '' })

function accountFrame(epoch: number, seq: number, sourceTs: number, balance = seq): DataUpdateFrame {
  return { type: 'data_update', channel: 'account', epoch, seq, sourceTs, ts: NOW, source: 'simulator', data: account(balance) }
}

function tickerFrame(seq: number, sourceTs: number): DataUpdateFrame {
  return { type: 'data_update', channel: 'ticker', epoch: 1, seq, sourceTs, ts: NOW, source: 'lnmarkets', data: ticker(seq) }
}

/** apply a patch the way the store does */
const apply = (s: RealtimeState, p: Patch) => mergeState(s, p)

function body(opts: {
  serverTime?: number
  account?: { epoch: number; seq: number; sourceTs: number; balance: number }
  upstream?: 'ok' | 'degraded' | 'down'
  staleAfterMs?: number
}): DashboardResponse {
  const a = opts.account
  return {
    account: a ? account(a.balance) : null,
    positions: null,
    ticker: null,
    cross: null,
    history: null,
    meta: {
      serverTime: opts.serverTime ?? NOW,
      source: 'simulator',
      staleAfterMs: opts.staleAfterMs ?? STALE,
      upstream: opts.upstream ?? 'ok',
      lastSuccessTs: NOW - 5_000,
      reason: opts.upstream && opts.upstream !== 'ok' ? 'exchange unreachable' : null,
      hasCredentials: true,
      channels: a ? { account: { epoch: a.epoch, seq: a.seq, sourceTs: a.sourceTs, stale: false } } : {},
    },
  }
}

t.test('mergeState and the store: a new state only when a field changes, and only then are subscribers told', async (t) => {
  const s = initialState(STALE)
  t.equal(s.transport, 'stopped', 'a new client is stopped')
  t.equal(s.staleAfterMs, STALE, 'with the stale limit it was given')
  t.equal(mergeState(s, null), s, 'no patch: the same object')
  t.equal(mergeState(s, { transport: 'stopped', nextPollAt: null }), s, 'equal values: the same object (selectors stay stable)')
  const next = mergeState(s, { transport: 'live' })
  t.not(next, s, 'a change: a new object')
  t.equal(next.transport, 'live', 'carrying the change')
  t.equal(s.transport, 'stopped', 'the old state is not mutated')

  const store = new RealtimeStore(STALE)
  const seen: string[] = []
  const off = store.subscribe((st) => seen.push(st.transport))
  store.update({ transport: 'connecting' })
  store.update({ transport: 'connecting' })
  store.update(null)
  store.update({ transport: 'live' })
  t.same(seen, ['connecting', 'live'], 'subscribers hear each change once, never a no-op')
  off()
  store.update({ transport: 'polling' })
  t.same(seen, ['connecting', 'live'], 'an unsubscribed listener hears nothing more')
  t.equal(store.getState().transport, 'polling', 'but the state still changes')
})

t.test('data frames: seq ordering, duplicates and old data are dropped and counted', async (t) => {
  let s = initialState(STALE)
  s = apply(s, onDataFrame(s, accountFrame(1, 5, NOW - 1_000), NOW))
  const shown = s.channels.account!
  t.same(
    { seq: shown.seq, epoch: shown.epoch, via: shown.via, receivedAt: shown.receivedAt, balance: shown.data.balance },
    { seq: 5, epoch: 1, via: 'ws', receivedAt: NOW, balance: 5 },
    'the first frame of a channel is shown, marked as received now over the socket',
  )
  t.equal(s.source, 'simulator', 'the frame says where the data comes from')

  const dup = onDataFrame(s, accountFrame(1, 5, NOW - 1_000, 999), NOW)
  s = apply(s, dup)
  t.equal(s.channels.account, shown, 'a duplicate (same seq, same time) leaves what is shown')
  t.same(s.rejectedFrames, { too_old: 0, not_newer: 1 }, 'and is counted as not newer')

  s = apply(s, onDataFrame(s, accountFrame(1, 4, NOW, 444), NOW))
  t.equal(s.channels.account!.data.balance, 5, 'an older seq never replaces a newer one, even with a later sourceTs')
  t.same(s.rejectedFrames, { too_old: 0, not_newer: 2 }, 'and is counted as not newer')

  s = apply(s, onDataFrame(s, accountFrame(1, 6, NOW - STALE - 1), NOW))
  t.equal(s.channels.account!.seq, 5, 'a newer seq whose data is older than the stale limit is not shown')
  t.same(s.rejectedFrames, { too_old: 1, not_newer: 2 }, 'and is counted as too old')

  s = apply(s, onDataFrame(s, accountFrame(1, 6, NOW - STALE), NOW))
  t.equal(s.channels.account!.seq, 6, 'exactly at the stale limit is still shown')

  s = apply(s, onDataFrame(s, accountFrame(2, 1, NOW - 500), NOW))
  t.same([s.channels.account!.epoch, s.channels.account!.seq], [2, 1], 'a new epoch (gateway restart) with newer data wins despite seq 1')
})

t.test('data frames: the same version known true later only renews the age', async (t) => {
  let s = initialState(STALE)
  s = apply(s, onDataFrame(s, accountFrame(1, 7, NOW - 20_000, 70), NOW))
  const before = s.channels.account!
  s = apply(s, onDataFrame(s, accountFrame(1, 7, NOW - 100, 12345), NOW + 3_000))
  const after = s.channels.account!
  t.equal(after.sourceTs, NOW - 100, 'the age is renewed')
  t.equal(after.receivedAt, NOW + 3_000, 'as of when it was received')
  t.equal(after.data, before.data, 'the data shown is untouched (the very same object)')
  t.same(s.rejectedFrames, { too_old: 0, not_newer: 0 }, 'a renewal is not a rejection')
})

t.test('data frames: judged on the server clock, with the channel’s own stale limit', async (t) => {
  let s = apply(initialState(STALE), { serverOffsetMs: -20_000 })
  // 40 s old on the client clock, but the server clock is 20 s behind: 20 s old, fresh
  s = apply(s, onDataFrame(s, accountFrame(1, 1, NOW - 40_000), NOW))
  t.equal(s.channels.account?.seq, 1, 'a frame fresh on the server clock is shown although old on the client clock')

  let h = initialState(STALE)
  const historyLimit = staleLimitOf('history', STALE)
  t.ok(historyLimit > STALE, 'history (a slow channel) has a longer stale limit than the default')
  const history = (seq: number, age: number): DataUpdateFrame => ({
    type: 'data_update',
    channel: 'history',
    epoch: 1,
    seq,
    sourceTs: NOW - age,
    ts: NOW,
    source: 'simulator',
    data: null as unknown as DataUpdateFrame<'history'>['data'],
  })
  h = apply(h, onDataFrame(h, history(1, STALE + 60_000), NOW))
  t.equal(h.channels.history?.seq, 1, 'history older than the default limit but within its own is shown')
  h = apply(h, onDataFrame(h, history(2, historyLimit + 1), NOW))
  t.equal(h.channels.history?.seq, 1, 'history past its own limit is not')
  t.equal(h.rejectedFrames.too_old, 1, 'and counts as too old')
})

t.test('data frames: fresh data proves its part healthy; unknown channels are ignored', async (t) => {
  let s = initialState(STALE)
  s = apply(s, {
    upstream: {
      account: { state: 'down', reason: 'x', lastSuccessTs: 1 },
      ticker: { state: 'degraded', reason: 'y', lastSuccessTs: 2 },
      all: { state: 'down', reason: 'z', lastSuccessTs: 3 },
    },
  })
  s = apply(s, onDataFrame(s, accountFrame(1, 1, NOW), NOW))
  t.same(Object.keys(s.upstream), ['ticker'], 'account data clears the account part and the HTTP "all", not the ticker')
  t.equal(s.hasCredentials, true, 'account data proves credentials exist')

  let m = initialState(STALE)
  m = apply(m, { upstream: { ticker: { state: 'down', reason: 'feed', lastSuccessTs: 1 } } })
  m = apply(m, onDataFrame(m, tickerFrame(1, NOW), NOW))
  t.same(m.upstream, {}, 'ticker data clears the ticker part')
  t.equal(m.hasCredentials, null, 'market data says nothing about credentials')
  t.equal(m.source, 'lnmarkets', 'the source follows the frame')

  const unknown = { ...accountFrame(1, 1, NOW), channel: 'orders' } as unknown as DataUpdateFrame
  t.equal(onDataFrame(m, unknown, NOW), null, 'a channel the page does not know changes nothing')
})

t.test('fresh frames renew the age of exactly the version shown', async (t) => {
  let s = initialState(STALE)
  s = apply(s, onDataFrame(s, accountFrame(2, 7, NOW - 20_000), NOW))
  const shown = s.channels.account!
  const fresh = (epoch: number, seq: number, sourceTs: number, channel: 'account' | 'positions' = 'account') => ({
    type: 'fresh' as const,
    ts: NOW,
    channels: [{ channel, epoch, seq, sourceTs }],
  })
  t.equal(onFreshFrame(s, fresh(2, 6, NOW), NOW), null, 'an older seq: nothing changes')
  t.equal(onFreshFrame(s, fresh(2, 8, NOW), NOW), null, 'a newer seq (data not received yet): nothing changes')
  t.equal(onFreshFrame(s, fresh(1, 7, NOW), NOW), null, 'another epoch: nothing changes')
  t.equal(onFreshFrame(s, fresh(2, 7, NOW - 30_000), NOW), null, 'an earlier sourceTs never ages what is shown')
  t.equal(onFreshFrame(s, fresh(2, 7, NOW, 'positions'), NOW), null, 'a channel not shown is never created')
  s = apply(s, onFreshFrame(s, fresh(2, 7, NOW - 10), NOW + 1_000))
  t.same(
    [s.channels.account!.sourceTs, s.channels.account!.receivedAt],
    [NOW - 10, NOW + 1_000],
    'the same version confirmed later: age renewed',
  )
  t.equal(s.channels.account!.data, shown.data, 'the data is untouched')
})

t.test('status frames: health per part; ok for all clears every part', async (t) => {
  const status = (upstream: StatusFrame['upstream'], scope?: StatusFrame['scope'], reason = ''): StatusFrame =>
    scope
      ? { type: 'status', upstream, lastSuccessTs: NOW - 1, reason, scope }
      : { type: 'status', upstream, lastSuccessTs: NOW - 1, reason }
  let s = initialState(STALE)
  s = apply(s, onStatusFrame(s, status('down', 'account', 'rate limited')))
  s = apply(s, onStatusFrame(s, status('degraded', 'ticker')))
  t.same(s.upstream.account, { state: 'down', reason: 'rate limited', lastSuccessTs: NOW - 1 }, 'the account part is down, with its reason')
  t.equal(s.upstream.ticker?.reason, null, 'an empty reason is no reason')
  s = apply(s, onStatusFrame(s, status('ok', 'ticker')))
  t.same(Object.keys(s.upstream), ['account'], 'ok for one part clears only that part')
  s = apply(s, onStatusFrame(s, status('down')))
  t.same(Object.keys(s.upstream).sort(), ['account', 'all'], 'no scope means all')
  s = apply(s, onStatusFrame(s, status('ok')))
  t.same(s.upstream, {}, 'ok for all clears every part')
})

t.test('HTTP snapshots against frames: the newer version wins, whichever way it came', async (t) => {
  let s = initialState(STALE)
  // the socket is ahead: seq 9 shown, the HTTP cache still says seq 8
  s = apply(s, onDataFrame(s, accountFrame(1, 9, NOW - 1_000, 90), NOW))
  const wsView = s.channels.account!
  s = apply(s, onDashboard(s, body({ account: { epoch: 1, seq: 8, sourceTs: NOW - 500, balance: 80 } }), NOW, true))
  t.equal(s.channels.account, wsView, 'an older HTTP snapshot never replaces newer socket data')

  s = apply(s, onDashboard(s, body({ account: { epoch: 1, seq: 9, sourceTs: NOW - 200, balance: 1 } }), NOW + 2_000, true))
  t.same(
    [s.channels.account!.sourceTs, s.channels.account!.data.balance, s.channels.account!.via],
    [NOW - 200, 90, 'ws'],
    'the same version in a later snapshot renews the age only: data and origin stay',
  )

  s = apply(s, onDashboard(s, body({ account: { epoch: 1, seq: 10, sourceTs: NOW - 200_000, balance: 100 } }), NOW + 3_000, true))
  t.same(
    [s.channels.account!.seq, s.channels.account!.data.balance, s.channels.account!.via, s.channels.account!.receivedAt],
    [10, 100, 'http', NOW + 3_000],
    'a newer HTTP snapshot replaces what is shown even when its data is old (it is then shown as STALE)',
  )
  // a data frame of that same old age would have been refused: HTTP and socket differ on purpose
  const t2 = initialState(STALE)
  t.same(
    onDataFrame(t2, accountFrame(1, 10, NOW - 200_000), NOW),
    { rejectedFrames: { too_old: 1, not_newer: 0 } },
    'whereas a socket frame that old is refused',
  )
})

t.test('HTTP snapshots: clock, source, credentials, stale limit and upstream', async (t) => {
  let s = initialState(STALE)
  s = apply(s, { upstream: { account: { state: 'down', reason: 'ws says', lastSuccessTs: 1 } } })
  const down = body({ serverTime: NOW + 4_000, upstream: 'down', staleAfterMs: 0 })
  const whileLive = apply(s, onDashboard(s, down, NOW, true))
  t.same(whileLive.upstream, s.upstream, 'while the socket is authenticated its status frames, not HTTP, say how the upstream is')
  t.equal(whileLive.serverOffsetMs, 4_000, 'the server clock offset comes from meta.serverTime')
  t.equal(whileLive.staleAfterMs, STALE, 'a stale limit of 0 in the body is ignored')
  t.equal(whileLive.hasCredentials, true, 'the body says whether credentials exist')
  const whileDown = apply(s, onDashboard(s, down, NOW, false))
  t.same(Object.keys(whileDown.upstream), ['all'], 'with the socket down the body is the authority: one "all" entry')
  t.equal(whileDown.upstream.all?.reason, 'exchange unreachable', 'with its reason')
  const ok = apply(whileDown, onDashboard(whileDown, body({ staleAfterMs: 12_000 }), NOW, false))
  t.same(ok.upstream, {}, 'an ok body with the socket down clears upstream problems')
  t.equal(ok.staleAfterMs, 12_000, 'a positive stale limit from the server is taken')
  t.same(ok.channels, {}, 'channels without data or meta are not created')
})

t.test('connection and pong frames set the server clock offset; connection says LIVE', async (t) => {
  t.same(
    onConnectionFrame(
      {
        type: 'connection',
        connectionId: 'c',
        userId: 'u',
        serverTime: NOW + 1_500,
        heartbeatMs: 25_000,
        protocol: 1,
        source: 'lnmarkets',
      },
      NOW,
    ),
    { serverOffsetMs: 1_500, source: 'lnmarkets', nextReconnectAt: null, transport: 'live' },
    'connection: offset, source, no reconnect pending, LIVE',
  )
  t.same(onPongFrame({ type: 'pong', request_id: 'p', serverTime: NOW - 300 }, NOW), { serverOffsetMs: -300 }, 'pong: offset')
})

t.test('freshness read: due when a shown value is past half its limit, at most once per half window', async (t) => {
  let s = initialState(STALE)
  t.notOk(freshnessReadDue(s, NOW, 0), 'nothing shown: no read')
  s = apply(s, onDataFrame(s, accountFrame(1, 1, NOW - 10_000), NOW))
  t.notOk(freshnessReadDue(s, NOW, 0), '10 s old with a 30 s limit: not yet')
  t.ok(freshnessReadDue(s, NOW + 5_001, 0), 'past half the limit (15 s): a read is due')
  t.notOk(freshnessReadDue(s, NOW + 5_001, NOW - 9_000), 'but not within half a window (15 s) of the last read')
  t.ok(freshnessReadDue(s, NOW + 5_001, NOW - 15_001 + 5_001), 'and again once half a window has passed')
  const ahead = apply(s, { serverOffsetMs: 6_000 })
  t.ok(freshnessReadDue(ahead, NOW, 0), 'ages are measured on the server clock')
  const short = apply(initialState(4_000), onDataFrame(initialState(4_000), accountFrame(1, 1, NOW - 3_000), NOW))
  t.notOk(freshnessReadDue(short, NOW, NOW - 4_000), 'the window is never shorter than 5 s, however low the limit')
  t.ok(freshnessReadDue(short, NOW, NOW - 5_000), 'and is 5 s then')

  let h = initialState(STALE)
  h = apply(h, {
    channels: { history: { data: null as never, epoch: 1, seq: 1, sourceTs: NOW - 60_000, receivedAt: NOW, via: 'http' } },
  })
  t.notOk(freshnessReadDue(h, NOW, 0), 'a slow channel is judged against its own, longer limit')
})

t.test('the chip: transport from the state and the link', async (t) => {
  const link = (p: Partial<LinkStatus> = {}): LinkStatus => ({
    stopped: false,
    authed: false,
    online: true,
    polling: false,
    pollFailedNetwork: false,
    everConnected: false,
    attempt: 0,
    ...p,
  })
  const s = initialState(STALE)
  const polledOk = mergeState(s, { lastPollOk: true })
  const polledFail = mergeState(s, { lastPollOk: false })
  const silent = mergeState(s, { silentSince: NOW })
  t.equal(deriveTransport(s, link({ stopped: true, authed: true })), 'stopped', 'stopped wins')
  t.equal(deriveTransport(s, link({ authed: true, online: false })), 'live', 'an authenticated socket is LIVE')
  t.equal(deriveTransport(silent, link({ authed: true })), 'silent', 'SILENT when it stopped answering')
  t.equal(deriveTransport(polledOk, link({ online: false, polling: true })), 'offline', 'the browser offline: OFFLINE')
  t.equal(deriveTransport(polledOk, link({ polling: true })), 'polling', 'socket down, fallback working: POLLING')
  t.equal(deriveTransport(polledOk, link({ polling: false, everConnected: true })), 'reconnecting', 'a one-off read does not make POLLING')
  t.equal(
    deriveTransport(polledFail, link({ polling: true, pollFailedNetwork: true })),
    'offline',
    'the poll failed on the network: OFFLINE',
  )
  t.equal(deriveTransport(polledFail, link({ polling: true })), 'reconnecting', 'an HTTP error while polling: RECONNECTING')
  t.equal(deriveTransport(s, link({ attempt: 1 })), 'connecting', 'first attempts of a fresh start: CONNECTING')
  t.equal(deriveTransport(s, link({ attempt: 2 })), 'reconnecting', 'repeated failures: RECONNECTING')
  t.equal(deriveTransport(s, link({ everConnected: true })), 'reconnecting', 'once connected, a lost socket is RECONNECTING')
})
