/**
 * The channel table and what derives from it (pure): bits, status mask, snapshot mappers for the cross and
 * history channels, equity, and the history page cursors.
 */
import t from 'tap'
import {
  ACCOUNT_CHANNELS,
  ALL_CHANNELS,
  CHANNELS,
  CHANNEL_BITS,
  CHANNEL_TABLE,
  MARKET_CHANNELS,
  isChannel,
  scopeOf,
} from '../../schemas/channels.ts'
import { SNAPSHOT_SCHEMAS, SubscribeMessageSchema } from '../../schemas/ws-protocol.ts'
import { STATUS_BITS } from '../../streaming/hub-fanout.ts'
import { channelBits, channelList, parseClientFrame } from '../../streaming/protocol.ts'
import { toCrossSnapshot, toHistorySnapshot, withEquity } from '../../exchange/snapshots.ts'
import { decodePair, encodePair } from '../../exchange/history-pages.ts'
import { Compile } from 'typebox/compile'
import type { CrossOrder, FundingFee, FuturesCrossPosition } from '../../exchange/schemas.ts'
import { trade } from './helpers.ts'

t.test('one table: names, bits, scopes', async (t) => {
  t.same(CHANNELS, ['account', 'positions', 'ticker', 'cross', 'history'], 'channels in table order (append only)')
  t.same(
    CHANNELS.map((c) => CHANNEL_BITS[c]),
    [1, 2, 4, 8, 16],
    'bit = 1 << row index',
  )
  t.equal(ALL_CHANNELS, 31, 'ALL_CHANNELS covers every row')
  t.same(ACCOUNT_CHANNELS, ['account', 'positions', 'cross', 'history'], 'account-scoped channels')
  t.same(MARKET_CHANNELS, ['ticker'], 'market-scoped channels')
  t.equal(scopeOf('cross'), 'account', 'scope of cross')
  t.ok(isChannel('history') && !isChannel('toString') && !isChannel('bogus'), 'isChannel knows only table rows')
  t.same(channelList(channelBits(['history', 'account'])), ['account', 'history'], 'bits round-trip in table order')
  t.same(Object.keys(SNAPSHOT_SCHEMAS).sort(), [...CHANNELS].sort(), 'one snapshot schema per channel')
  t.same(Object.keys(STATUS_BITS).sort(), ['account', 'ticker'], 'status flags have their own mask (not channel bits)')
  t.equal(
    CHANNEL_TABLE.filter((r) => r.cadence.kind === 'slow')
      .map((r) => r.name)
      .join(),
    'history',
    'history is never fetched on every poll',
  )
})

t.test('subscribe accepts every channel, and only those', async (t) => {
  const ok = parseClientFrame(Buffer.from(JSON.stringify({ type: 'subscribe', request_id: 's', channels: [...CHANNELS] })), false)
  t.ok(ok.ok, 'all five channels in one subscribe')
  const bad = parseClientFrame(Buffer.from(JSON.stringify({ type: 'subscribe', request_id: 's', channels: ['cross', 'orders'] })), false)
  t.match(bad, { ok: false, code: 'invalid_message', request_id: 's' }, 'an unknown channel is refused with the request id')
  t.equal((SubscribeMessageSchema.properties.channels as { maxItems?: number }).maxItems, CHANNELS.length, 'maxItems follows the table')
})

const crossPos: FuturesCrossPosition = {
  id: 'x',
  uid: 'u',
  quantity: 100,
  leverage: 5,
  margin: 50_000,
  entryPrice: 100_000,
  liquidation: 80_000,
  initialMargin: 20_000,
  maintenanceMargin: 1000,
  runningMargin: 49_000,
  totalPl: -1234,
  deltaPl: 10,
  fundingFees: 5,
  tradingFees: 7,
  updatedAt: '2026-01-01T00:00:00.000Z',
}
const order = (id: string, filledAt: string | null, fee = 3): CrossOrder => ({
  id,
  uid: 'u',
  type: 'limit',
  side: 'buy',
  price: 99_000,
  quantity: 10,
  tradingFee: fee,
  open: filledAt === null,
  filled: filledAt !== null,
  canceled: false,
  createdAt: '2026-01-01T00:00:00.000Z',
  filledAt,
  canceledAt: null,
})

t.test('cross snapshot: SDK field names, no ids', async (t) => {
  const s = toCrossSnapshot(crossPos, [order('o1', null)])
  t.ok(Compile(SNAPSHOT_SCHEMAS.cross).Check(s), 'valid against the cross schema')
  t.same(
    Object.keys(s.position!).sort(),
    [
      'deltaPl',
      'entryPrice',
      'fundingFees',
      'initialMargin',
      'leverage',
      'liquidation',
      'maintenanceMargin',
      'margin',
      'quantity',
      'runningMargin',
      'totalPl',
      'tradingFees',
      'updatedAt',
    ],
    'position keys',
  )
  t.notOk('uid' in s.openOrders[0]!, 'no account id in orders')
  t.same(toCrossSnapshot(null, []), { position: null, openOrders: [] }, 'no cross position → null')
})

t.test('equity = balance + running margin and P&L + cross margin and P&L', async (t) => {
  const acc = { username: 'a', balance: 1_000_000, syntheticUsdBalance: 0, feeTier: 0, equity: 1_000_000 }
  const positions = { running: [], open: [], totals: { margin: 20_000, pl: 300, quantity: 100, count: 1 } }
  t.equal(withEquity(acc, {}).equity, 1_000_000, 'nothing known yet: the balance')
  t.equal(withEquity(acc, { positions }).equity, 1_020_300, 'with running isolated positions')
  t.equal(
    withEquity(acc, { positions, cross: toCrossSnapshot(crossPos, []) }).equity,
    1_020_300 + 50_000 + 10,
    'with the cross position: margin + deltaPl',
  )
})

t.test('cross equity with numbers: margin + unrealised P&L, not totalPl or runningMargin', async (t) => {
  // a cross long of $1000 at 100 000, leverage 10, in a cross account holding 500 000 sats that already
  // realised +2 000 (inside margin); the price is now 110 000
  const sats = (usd: number, price: number) => (usd / price) * 1e8
  const deltaPl = Math.round(sats(1000, 100_000) - sats(1000, 110_000)) // 1000·(1/100000 − 1/110000)·1e8
  t.equal(deltaPl, 90_909, 'unrealised P&L of the long')
  const position = {
    ...crossPos,
    quantity: 1000,
    leverage: 10,
    entryPrice: 100_000,
    margin: 500_000,
    totalPl: 2_000,
    deltaPl,
    runningMargin: Math.floor(sats(1000, 100_000) / 10), // 100 000: what the exposure locks
  }
  const acc = { username: 'a', balance: 0, syntheticUsdBalance: 0, feeTier: 0, equity: 0 }
  const equity = withEquity(acc, { cross: { position, openOrders: [] } }).equity
  t.equal(equity, 590_909, 'closing now would leave 500 000 + 90 909 sats in the cross account')
  t.not(equity, position.margin + position.totalPl, 'margin + totalPl would count the realised +2 000 twice and miss the open P&L')
  t.not(equity, position.runningMargin, 'runningMargin is only the locked part of the collateral')
  // flat, margin kept (a flat position with margin is still returned by the client)
  const flat = { ...position, quantity: 0, entryPrice: null, liquidation: null, deltaPl: 0, runningMargin: 0 }
  t.equal(withEquity(acc, { cross: { position: flat, openOrders: [] } }).equity, 500_000, 'flat: the collateral alone')
})

const H = 3_600_000

t.test('history snapshot: merged, newest first, capped, realized windows', async (t) => {
  const now = Date.parse('2026-03-01T12:00:00.000Z')
  const closed = [
    trade('a', 1 * H, now),
    trade('b', 30 * H, now, { pl: -50 }),
    trade('c', 10 * 24 * H, now, { pl: 1000 }),
    trade('d', 40 * 24 * H, now),
  ]
  const canceled = [trade('e', 2 * H, now, { closed: false, canceled: true, pl: 0 }), trade('a', 1 * H, now)]
  const fee = (f: number, agoMs: number, tradeId: string | null): FundingFee => ({
    fee: f,
    settlementId: `s${agoMs}`,
    time: new Date(now - agoMs).toISOString(),
    tradeId,
  })
  const h = toHistorySnapshot(
    {
      closed,
      canceled,
      crossFilled: [order('x1', new Date(now - 3 * H).toISOString(), 4), order('x2', new Date(now - 8 * 24 * H).toISOString(), 6)],
      isolatedFunding: [fee(7, 5 * H, 'a'), fee(-2, 20 * 24 * H, 'c')],
      crossFunding: [fee(11, 4 * H, null)],
    },
    now,
  )
  t.ok(Compile(SNAPSHOT_SCHEMAS.history).Check(h), 'valid against the history schema')
  t.same(
    h.closed.map((x) => x.id),
    ['a', 'e', 'b', 'c', 'd'],
    'closed and canceled merged by id, newest first',
  )
  t.same(
    h.fundingFees.map((f) => [f.scope, f.fee]),
    [
      ['cross', 11],
      ['isolated', 7],
      ['isolated', -2],
    ],
    'funding fees of both scopes, marked, newest first',
  )
  // day: a (pl 100, fees 5) + x1 fee 4 + funding 7 + 11
  t.same(h.realized.day, { pl: 100, tradingFees: 9, fundingFees: 18, net: 100 - 9 - 18 }, 'last 24 h')
  // week: + b (pl -50, fees 5); the canceled trade counts for nothing
  t.same(h.realized.week, { pl: 50, tradingFees: 14, fundingFees: 18, net: 50 - 14 - 18 }, 'last 7 d')
  // month: + c (pl 1000, fees 5) + x2 fee 6 + funding -2; d is older than 30 d
  t.same(h.realized.month, { pl: 1050, tradingFees: 25, fundingFees: 16, net: 1050 - 25 - 16 }, 'last 30 d')
  const many = Array.from({ length: 120 }, (_, i) => trade(`t${i}`, i * 60_000, now))
  const capped = toHistorySnapshot({ closed: many, canceled: [], crossFilled: [], isolatedFunding: [], crossFunding: [] }, now)
  t.equal(capped.closed.length, 50, 'at most 50 closed trades')
  t.equal(capped.realized.day.pl, 100 * 120, 'realized counts every fetched trade, not just the 50 shown')
})

t.test('history cursors: ours for two-sided kinds, refused when unreadable', async (t) => {
  const c = encodePair(['2026-01-01T00:00:00.000Z', null])!
  t.match(c, /^m\./, 'two-sided cursor is ours')
  t.same(decodePair(c), ['2026-01-01T00:00:00.000Z', null], 'round-trips')
  t.equal(encodePair([null, null]), null, 'both sides exhausted → no next page')
  t.same(decodePair(undefined), 'first', 'no cursor → first page')
  for (const bad of [
    'abc',
    'm.!!!',
    `m.${Buffer.from('[1,2]').toString('base64url')}`,
    `m.${Buffer.from('[null,null]').toString('base64url')}`,
    'm.' + 'A'.repeat(600),
  ]) {
    t.throws(() => decodePair(bad), { code: 'bad_cursor', name: 'Error' }, `refused: ${bad.slice(0, 20)}`)
  }
})
