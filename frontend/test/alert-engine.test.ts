/**
 * The alert engine's rules, fed constructed realtime states: connection loss after the grace (not on a blip),
 * exchange down and back, price levels once per crossing with hysteresis, fills, closes with their reason and
 * P&L (liquidation, stop-loss, take-profit), the baseline never alerting, and the notify switches.
 */
import t from 'tap'
import { AlertEngine, closeReason, type EngineInput, type EngineSettings } from '../src/features/alerts/alert-engine.ts'
import type { FuturesTrade } from '../../backend/schemas/ws-protocol.ts'
import { priceLevelProblem } from '../src/features/alerts/alert-settings.ts'
import { wantsBrowserNotification } from '../src/features/alerts/use-alert-feed.ts'

const ALL_ON: EngineSettings['notify'] = { connectionLoss: true, exchangeDown: true, fills: true, closes: true, liquidations: true }

const trade = (over: Partial<FuturesTrade>): FuturesTrade => ({
  id: 't1',
  type: 'market',
  side: 'buy',
  quantity: 1_000,
  margin: 100_000,
  leverage: 10,
  price: 100_000,
  entryPrice: 100_000,
  entryMargin: 100_000,
  exitPrice: null,
  liquidation: 91_000,
  stoploss: 0,
  takeprofit: 0,
  pl: 500,
  openingFee: 100,
  closingFee: 0,
  maintenanceMargin: 1_000,
  sumFundingFees: 0,
  open: false,
  running: true,
  closed: false,
  canceled: false,
  createdAt: '2026-11-30T10:00:00.000Z',
  filledAt: '2026-11-30T10:00:01.000Z',
  closedAt: null,
  ...over,
})

const base = (over: Partial<EngineInput> = {}): EngineInput => ({ transport: 'live', upstream: {}, ...over })

function engine(settings: Partial<EngineSettings> = {}, opts = {}) {
  const e = new AlertEngine(opts)
  e.setSettings({ notify: ALL_ON, priceLevels: [], ...settings })
  return e
}

t.test('connection: a blip shorter than the grace raises nothing; a longer loss raises once, then restored', async (t) => {
  const e = engine({}, { lossGraceMs: 2_000 })
  t.same(e.update(base({ transport: 'connecting' }), 0), [], 'opening the page is not a loss')
  t.same(e.update(base({ transport: 'reconnecting' }), 100), [], 'nor a failed first connect (never LIVE yet)')
  t.same(e.update(base(), 1_000), [], 'LIVE')
  t.same(e.update(base({ transport: 'reconnecting' }), 2_000), [], 'the socket closed: within the grace')
  t.same(e.update(base({ transport: 'polling' }), 3_500), [], 'still within the grace')
  t.same(e.update(base(), 3_900), [], 'back LIVE within 1.9 s: a blip, nothing raised (not even "restored")')
  t.same(e.update(base({ transport: 'reconnecting' }), 5_000), [])
  const lost = e.update(base({ transport: 'polling' }), 7_000)
  t.equal(lost.length, 1, 'down for the whole grace: raised')
  t.equal(lost[0]!.kind, 'connection_lost')
  t.equal(lost[0]!.urgency, 'assertive', 'connection loss is assertive')
  t.match(lost[0]!.body, /HTTP/)
  t.same(e.update(base({ transport: 'offline' }), 9_000), [], 'raised once per loss, whatever the state becomes')
  const back = e.update(base(), 12_000)
  t.same(
    back.map((a) => a.kind),
    ['connection_restored'],
    'restored once LIVE again',
  )
  t.same(
    e.update(base({ transport: 'silent' }), 13_000).map((a) => a.kind),
    ['connection_lost'],
    'SILENT counts at once: the client already waited for an unanswered ping',
  )
  t.same(e.update(base({ transport: 'stopped' }), 20_000), [], 'stopping (sign-out) is not a new loss')
})

t.test('connection: the switch off raises nothing but the state is still followed', async (t) => {
  const e = engine({ notify: { ...ALL_ON, connectionLoss: false } })
  e.update(base(), 0)
  t.same(e.update(base({ transport: 'reconnecting' }), 5_000), [])
  t.same(e.update(base({ transport: 'reconnecting' }), 8_000), [], 'switched off')
  e.setSettings({ notify: ALL_ON, priceLevels: [] })
  t.same(e.update(base({ transport: 'reconnecting' }), 9_000), [], 'switched back on during the same loss: it was already counted')
  t.same(e.update(base(), 10_000), [], 'no "restored" for a loss that was never shown')
  e.update(base({ transport: 'polling' }), 11_000)
  t.same(
    e.update(base({ transport: 'polling' }), 14_000).map((a) => a.kind),
    ['connection_lost'],
    'the next loss, switched on, is raised',
  )
  t.same(
    e.update(base(), 15_000).map((a) => a.kind),
    ['connection_restored'],
  )
})

t.test('exchange down (any part), once, then recovered; degraded is not down', async (t) => {
  const e = engine()
  t.same(e.update(base({ upstream: { account: { state: 'degraded', reason: 'rate_limited' } } }), 0), [], 'slow is not down')
  const down = e.update(base({ upstream: { account: { state: 'down', reason: 'upstream_unavailable' } } }), 1_000)
  t.same(
    down.map((a) => a.kind),
    ['exchange_down'],
  )
  t.match(down[0]!.body, /account and positions/)
  t.same(
    e.update(
      base({ upstream: { all: { state: 'down', reason: 'upstream_unavailable' }, ticker: { state: 'down', reason: null } } }),
      2_000,
    ),
    [],
    'more parts going down: still the same outage',
  )
  t.same(
    e.update(base({ upstream: { ticker: { state: 'degraded', reason: null } } }), 3_000).map((a) => a.kind),
    ['exchange_recovered'],
    'nothing down any more',
  )
  t.same(e.update(base(), 4_000), [])
})

t.test('price levels: once per crossing, hysteresis, first sight beyond does not fire, edits re-arm', async (t) => {
  const up = { id: 'up', price: 100_000, direction: 'above' as const, note: 'breakout' }
  const down = { id: 'dn', price: 90_000, direction: 'below' as const }
  const e = engine({ priceLevels: [up, down] }, { hysteresisPct: 0.1 })
  t.same(e.update(base({ price: 99_000 }), 0), [], 'first price: armed, nothing fired')
  const fired = e.update(base({ price: 100_000 }), 1_000)
  t.equal(fired.length, 1, 'reaching the level fires')
  t.equal(fired[0]!.kind, 'price_level')
  t.equal(fired[0]!.levelId, 'up')
  t.equal(fired[0]!.title, 'Price above 100,000.0')
  t.match(fired[0]!.body, /crossed above your level 100,000\.0 \(breakout\)/)
  t.same(e.update(base({ price: 100_500 }), 2_000), [], 'staying above: not again')
  t.same(e.update(base({ price: 99_950 }), 3_000), [], 'a dip smaller than the hysteresis (0.1 % = 100) does not re-arm')
  t.same(e.update(base({ price: 100_010 }), 4_000), [], '…so wobbling around the level does not fire again')
  t.same(e.update(base({ price: 99_900 }), 5_000), [], 'back by the hysteresis: re-armed')
  t.same(
    e.update(base({ price: 100_001 }), 6_000).map((a) => a.levelId),
    ['up'],
    'the next crossing fires again',
  )
  t.same(
    e.update(base({ price: 89_000 }), 7_000).map((a) => a.levelId),
    ['dn'],
    'a below-level fires when the price falls through it',
  )

  const late = engine({ priceLevels: [up] })
  t.same(late.update(base({ price: 101_000 }), 0), [], 'a level already crossed when first seen does not fire')
  t.same(late.update(base({ price: 102_000 }), 1_000), [])
  t.same(late.update(base({ price: 99_000 }), 2_000), [], 'the price comes back below…')
  t.same(
    late.update(base({ price: 100_000 }), 3_000).map((a) => a.levelId),
    ['up'],
    '…and crosses: fires',
  )

  late.setSettings({ notify: ALL_ON, priceLevels: [{ ...up, price: 105_000 }] })
  t.same(late.update(base({ price: 104_000 }), 4_000), [], 'a moved level starts over (armed below it)')
  t.same(
    late.update(base({ price: 105_000 }), 5_000).map((a) => a.levelId),
    ['up'],
  )
  t.same(engine({ priceLevels: [up] }).update(base({ price: 0 }), 0), [], 'no price yet: nothing')

  // a level added while the price is below it, when the very next price is already above: still a crossing
  const quick = engine()
  quick.update(base({ price: 99_000 }), 0)
  quick.setSettings({ notify: ALL_ON, priceLevels: [up] })
  t.same(
    quick.update(base({ price: 100_200 }), 1_000).map((a) => a.levelId),
    ['up'],
    'a level is armed against the price seen when it was set',
  )
})

t.test('fills: an isolated order becoming a running trade; a new filled cross order', async (t) => {
  const e = engine()
  const order = trade({ id: 'o1', type: 'limit', open: true, running: false, price: 98_000, entryPrice: null, leverage: 15, quantity: 200 })
  const history = { closed: [], crossFilled: [{ id: 'c0', side: 'buy', quantity: 100, price: 97_000 }] }
  t.same(e.update(base({ positions: { running: [trade({})], open: [order] }, history }), 0), [], 'the first snapshots are the baseline')
  const filled = e.update(
    base({ positions: { running: [trade({}), trade({ id: 'o1', leverage: 15, quantity: 200, entryPrice: 98_000 })], open: [] }, history }),
    1_000,
  )
  t.same(
    filled.map((a) => a.kind),
    ['fill'],
  )
  t.equal(filled[0]!.body, 'Long $200 at 15× filled at 98,000.0.')
  const cross = e.update(
    base({ history: { closed: [], crossFilled: [{ id: 'c1', side: 'sell', quantity: 500, price: 99_000.5 }, ...history.crossFilled] } }),
    2_000,
  )
  t.same(
    cross.map((a) => a.title),
    ['Cross order filled'],
  )
  t.match(cross[0]!.body, /sell \$500 filled at 99,000\.5/)

  const off = engine({ notify: { ...ALL_ON, fills: false } })
  off.update(base({ positions: { running: [], open: [order] } }), 0)
  t.same(off.update(base({ positions: { running: [trade({ id: 'o1' })], open: [] } }), 1_000), [], 'fills switched off')
})

t.test('closes: reason and realised P&L from the history; liquidation assertive; estimate when history is late', async (t) => {
  const running = [
    trade({ id: 'a' }),
    trade({ id: 'b', side: 'sell', liquidation: 110_000, stoploss: 104_000 }),
    trade({ id: 'c', takeprofit: 105_000 }),
    trade({ id: 'd', pl: -1_200 }),
  ]
  const e = engine({}, { closeWaitMs: 10_000 })
  e.update(
    base({
      price: 100_000,
      positions: { running, open: [] },
      history: { closed: [trade({ id: 'old', closed: true, running: false, exitPrice: 95_000 })], crossFilled: [] },
    }),
    0,
  )
  // all four leave the running list; the history shows three of them
  t.same(e.update(base({ price: 100_000, positions: { running: [], open: [] } }), 1_000), [], 'no history yet: waiting for the reason')
  const closed = e.update(
    base({
      price: 100_000,
      positions: { running: [], open: [] },
      history: {
        closed: [
          trade({ id: 'a', closed: true, running: false, exitPrice: 91_000, pl: -100_000 }),
          trade({
            id: 'b',
            side: 'sell',
            closed: true,
            running: false,
            liquidation: 110_000,
            stoploss: 104_000,
            exitPrice: 104_010,
            pl: -4_000,
          }),
          trade({ id: 'c', closed: true, running: false, takeprofit: 105_000, exitPrice: 105_002, pl: 4_800 }),
          trade({ id: 'old', closed: true, running: false, exitPrice: 95_000 }),
        ],
        crossFilled: [],
      },
    }),
    2_000,
  )
  t.same(
    closed.map((a) => a.kind),
    ['liquidation', 'stoploss', 'takeprofit'],
    'each classified from the exchange record; the old one is not raised',
  )
  t.equal(closed[0]!.urgency, 'assertive', 'a liquidation is assertive')
  t.equal(closed[0]!.body, 'Long $1,000 at 10× was liquidated at 91,000.0. P&L −100,000 sats.')
  t.equal(closed[1]!.body, 'Short $1,000 at 10× closed by its stop-loss at 104,010.0. P&L −4,000 sats.')
  t.equal(closed[2]!.body, 'Long $1,000 at 10× closed by its take-profit at 105,002.0. P&L +4,800 sats.')
  t.same(e.update(base({ price: 100_000 }), 5_000), [], 'd still waits')
  const late = e.update(base({ price: 100_000 }), 11_000)
  t.same(
    late.map((a) => a.kind),
    ['close'],
    'history never said: raised after the wait, as a close',
  )
  t.equal(late[0]!.body, 'Long $1,000 at 10× closed. P&L at the last update −1,200 sats.')
  const again = e.update(
    base({
      price: 100_000,
      history: { closed: [trade({ id: 'd', closed: true, running: false, exitPrice: 99_000, pl: -1_000 })], crossFilled: [] },
    }),
    12_000,
  )
  t.same(again, [], 'the history showing it later does not raise it twice')
  const unseen = e.update(
    base({
      history: {
        closed: [
          trade({ id: 'e', closed: true, running: false, exitPrice: 99_500, pl: -500 }),
          trade({ id: 'd', closed: true, running: false }),
        ],
        crossFilled: [],
      },
    }),
    13_000,
  )
  t.same(
    unseen.map((a) => a.kind),
    ['close'],
    'a closed trade never seen running (closed between two snapshots) is raised from the history',
  )
})

t.test('closes: liquidation estimated from the last price when the history is late; switches', async (t) => {
  const e = engine({}, { closeWaitMs: 1_000 })
  e.update(base({ price: 92_000, positions: { running: [trade({ id: 'x' })], open: [] } }), 0)
  e.update(base({ price: 90_500, positions: { running: [], open: [] } }), 100)
  const est = e.update(base({ price: 90_500 }), 1_200)
  t.same(
    est.map((a) => a.kind),
    ['liquidation'],
    'the price went through the liquidation price: liquidated',
  )

  const quiet = engine({ notify: { ...ALL_ON, closes: false, liquidations: false } }, { closeWaitMs: 0 })
  quiet.update(
    base({ positions: { running: [trade({ id: 'x' }), trade({ id: 'y' })], open: [] }, history: { closed: [], crossFilled: [] } }),
    0,
  )
  t.same(
    quiet.update(
      base({
        positions: { running: [], open: [] },
        history: {
          closed: [
            trade({ id: 'x', closed: true, running: false, exitPrice: 91_000, pl: -100_000 }),
            trade({ id: 'y', closed: true, running: false, exitPrice: 100_500 }),
          ],
          crossFilled: [],
        },
      }),
      1,
    ),
    [],
    'closes and liquidations switched off',
  )
  const canceled = engine({}, { closeWaitMs: 0 })
  canceled.update(
    base({ positions: { running: [], open: [trade({ id: 'o', open: true, running: false })] }, history: { closed: [], crossFilled: [] } }),
    0,
  )
  t.same(
    canceled.update(
      base({
        positions: { running: [], open: [] },
        history: { closed: [trade({ id: 'o', canceled: true, running: false })], crossFilled: [] },
      }),
      1,
    ),
    [],
    'a canceled order is not a fill nor a close',
  )
})

t.test('closeReason', async (t) => {
  t.equal(closeReason(trade({ exitPrice: 91_000, closed: true })), 'liquidation', 'long at its liquidation price')
  t.equal(closeReason(trade({ exitPrice: 100_000, pl: -100_000 })), 'liquidation', 'all the margin lost')
  t.equal(closeReason(trade({ exitPrice: 94_900, stoploss: 95_000 })), 'stoploss', 'long through its stop')
  t.equal(closeReason(trade({ exitPrice: 95_100, stoploss: 95_000 })), 'close', 'long above its stop: a close')
  t.equal(
    closeReason(trade({ side: 'sell', liquidation: 110_000, exitPrice: 96_000, takeprofit: 96_500 })),
    'takeprofit',
    'short through its take-profit',
  )
  t.equal(closeReason(trade({ exitPrice: null })), 'close')
})

t.test('price level input and browser-notification rules', async (t) => {
  t.equal(priceLevelProblem('', '', 0), 'Enter a price in USD, for example 98500.')
  t.equal(priceLevelProblem('abc', '', 0), 'The price must be a number, for example 98500.')
  t.equal(priceLevelProblem('0', '', 0), 'The price must be more than 0.')
  t.equal(priceLevelProblem('-5', '', 0), 'The price must be more than 0.')
  t.equal(priceLevelProblem('1e9', '', 0), 'The price must be at most 100,000,000.')
  t.equal(priceLevelProblem('98,500', 'x'.repeat(81), 0), 'The note must be at most 80 characters.')
  t.equal(priceLevelProblem('98,500', '', 20), 'At most 20 price levels: remove one before adding another.')
  t.equal(priceLevelProblem('98,500.5', 'ok', 19), null, 'thousands separators are accepted')
  const on = { browserNotifications: true }
  t.equal(
    wantsBrowserNotification(on, { permission: 'granted', visible: true, focused: true }),
    false,
    'in front of the trader: the toast is enough',
  )
  t.equal(wantsBrowserNotification(on, { permission: 'granted', visible: true, focused: false }), true, 'another window has the focus')
  t.equal(wantsBrowserNotification(on, { permission: 'granted', visible: false, focused: false }), true, 'tab in the background')
  t.equal(wantsBrowserNotification(on, { permission: 'default', visible: false, focused: false }), false, 'not allowed by the browser')
  t.equal(
    wantsBrowserNotification({ browserNotifications: false }, { permission: 'granted', visible: false, focused: false }),
    false,
    'not wanted',
  )
})
