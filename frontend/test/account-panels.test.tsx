/**
 * Positions complete, open orders, the cross-margin card and history (issue items 1–4), rendered from
 * constructed channel data with react-dom/server: the numbers a trader reads, and the CSV they export.
 */
import t from 'tap'
import { renderToStaticMarkup } from 'react-dom/server'
import { crossRow, markExplanation, markFor, toRows, totalsOf } from '../src/features/dashboard/positions/position-math.ts'
import { OrdersTable, orderRows } from '../src/features/dashboard/account-data/open-orders.tsx'
import { CrossFigures } from '../src/features/dashboard/account-data/cross-card.tsx'
import {
  HistoryTable,
  RealizedStrip,
  closedRow,
  crossFilledRow,
  historyCsv,
  mergeHistory,
} from '../src/features/dashboard/account-data/history-panel.tsx'
import type { ClosedTrade, CrossOrder, FuturesCrossPosition } from '../src/features/dashboard/account-data/types.ts'
import type { FuturesTrade } from '../../backend/schemas/ws-protocol.ts'

const text = (html: string) =>
  html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim()

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
  stoploss: 95_000,
  takeprofit: 110_000,
  pl: 500,
  openingFee: 100,
  closingFee: 0,
  maintenanceMargin: 1_000,
  sumFundingFees: 40,
  open: false,
  running: true,
  closed: false,
  canceled: false,
  createdAt: '2026-11-30T10:00:00.000Z',
  filledAt: '2026-11-30T10:00:01.000Z',
  closedAt: null,
  ...over,
})

t.test('positions: mark price, exchange vs estimate, fees, funding, net', async (t) => {
  t.same(
    markFor('long', { price: 100, bid: 99, ask: 101, sourceTs: 0 }, 50),
    { price: 99, source: 'bid' },
    'a long is marked at the bid (it closes by selling)',
  )
  t.same(markFor('short', { price: 100, bid: 99, ask: 101, sourceTs: 0 }, 50), { price: 101, source: 'ask' }, 'a short at the ask')
  t.same(markFor('long', { price: 100, sourceTs: 0 }, 50), { price: 100, source: 'last' }, 'the last price without a book')
  t.same(markFor('long', null, 50), { price: 50, source: 'entry' }, 'the entry without any price')
  const [older] = toRows([trade({})], 2_000, { price: 101_000, bid: 100_990, ask: 101_010, sourceTs: 1_000 })
  t.equal(older!.pl, 500, "a price older than the positions: the exchange's P&L")
  t.equal(older!.plEstimated, false, 'not an estimate')
  t.equal(older!.netPl, 500 - 100 - 40, 'net = P&L − fees − funding')
  const [live] = toRows([trade({})], 1_000, { price: 101_000, bid: 100_990, ask: 101_010, sourceTs: 2_000 })
  t.equal(live!.exchangePl, 500, "the exchange's figure is kept beside the estimate")
  t.equal(live!.markSource, 'bid', 'the estimate names its price')
  t.equal(Math.round(live!.pl), Math.round(1_000 * (1 / 100_000 - 1 / 100_990) * 1e8), 'estimate from the bid with the inverse formula')
  t.equal(Math.round(live!.netPl), Math.round(live!.pl - 140), 'net from the estimate')
  t.match(
    markExplanation(live!, 101_000),
    /uses 100990\.0, the bid: a long closes by selling; the last price 101000\.0 differs by 10\.0/,
    'the tooltip says which price, why, and how far the last price is',
  )
})

const crossPos: FuturesCrossPosition = {
  quantity: -2_000,
  leverage: 5,
  margin: 400_000,
  entryPrice: 100_000,
  liquidation: 118_000,
  initialMargin: 400_000,
  maintenanceMargin: 8_000,
  runningMargin: 390_000,
  totalPl: -10_000,
  deltaPl: -1_500,
  fundingFees: 300,
  tradingFees: 1_200,
  updatedAt: '2026-11-30T10:00:00.000Z',
}

t.test('cross position: a card, and counted in the totals and the liquidation alert', async (t) => {
  const row = crossRow(crossPos, { price: 100_000, bid: 99_990, ask: 100_010, sourceTs: 0 })!
  t.equal(row.side, 'short', 'a negative quantity is a short')
  t.equal(row.quantity, 2_000, 'quantity shown positive')
  t.equal(
    Math.round(row.distancePct * 100) / 100,
    Math.round(((118_000 - 100_010) / 100_010) * 10_000) / 100,
    'distance to liquidation from the ask',
  )
  t.equal(row.netPl, -10_000 - 1_200 - 300, 'net = total P&L − trading fees − funding')
  const totals = totalsOf([...toRows([trade({})], 2_000, null), row])
  t.equal(totals.count, 2, 'the totals count the cross position')
  t.equal(totals.margin, 100_000 + 400_000, 'and its margin')
  t.equal(crossRow(null, null), null, 'no cross position: no row')
  const html = text(renderToStaticMarkup(<CrossFigures position={crossPos} lastPrice={100_000} bid={99_990} ask={100_010} />))
  for (const part of [
    'Short',
    '$2,000',
    'Entry 100,000.0',
    'Leverage 5×',
    'Running margin 390,000 sats',
    'Liquidation 118,000.0',
    'Total P&L −10,000 sats',
    'Delta P&L −1,500 sats',
    'Trading fees 1,200 sats',
    'Net P&L −11,500 sats',
  ])
    t.ok(html.includes(part), `the card shows "${part}"`)
  t.match(text(renderToStaticMarkup(<CrossFigures position={null} lastPrice={1} />)), /No cross-margin position/, 'an empty state')
})

t.test('open orders: isolated limits and cross orders with distance from the market', async (t) => {
  const limit = trade({
    id: 'l1',
    type: 'limit',
    open: true,
    running: false,
    price: 97_000,
    createdAt: new Date(Date.now() - 125_000).toISOString(),
  })
  const crossOrder: CrossOrder = {
    id: 'c1',
    type: 'limit',
    side: 'sell',
    price: 104_000,
    quantity: 500,
    tradingFee: 0,
    open: true,
    filled: false,
    canceled: false,
    createdAt: new Date(Date.now() - 5_000).toISOString(),
    filledAt: null,
    canceledAt: null,
  }
  const done: CrossOrder = { ...crossOrder, id: 'c2', open: false, filled: true }
  const rows = orderRows([limit], [crossOrder, done], 100_000)
  t.same(
    rows.map((r) => r.id),
    ['l1', 'c1'],
    'open ones only, closest to the market first',
  )
  t.equal(rows[0]!.distancePct, 3, 'a buy limit 3 % below the market')
  t.equal(rows[1]!.distancePct, 4, 'a sell 4 % above')
  const html = text(renderToStaticMarkup(<OrdersTable rows={rows} now={Date.now()} />))
  t.match(
    html,
    /Isolated limit Buy \$1,000 97,000\.0 10× 100,000 2 min 0[45] s 3\.00 %/,
    `the isolated limit with side, quantity, price, leverage, margin, age and distance: ${html.slice(0, 200)}`,
  )
  t.match(html, /Cross Sell \$500 104,000\.0 cross — \d s 4\.00 %/, 'the cross order')
  t.match(text(renderToStaticMarkup(<OrdersTable rows={[]} now={0} />)), /No open orders/, 'an empty state')
})

t.test('history: newest first, realised windows, CSV of what is shown', async (t) => {
  const closed: ClosedTrade = {
    id: 'a',
    type: 'market',
    side: 'buy',
    quantity: 100,
    margin: 1,
    leverage: 10,
    price: 1,
    entryPrice: 100_000,
    exitPrice: 101_000,
    pl: 990,
    openingFee: 10,
    closingFee: 11,
    sumFundingFees: 5,
    closed: true,
    canceled: false,
    createdAt: '2026-11-29T08:00:00.000Z',
    filledAt: '2026-11-29T08:00:00.000Z',
    closedAt: '2026-11-29T09:00:00.000Z',
  }
  const canceled: ClosedTrade = {
    ...closed,
    id: 'b',
    closed: false,
    canceled: true,
    pl: 0,
    openingFee: 0,
    closingFee: 0,
    sumFundingFees: 0,
    closedAt: '2026-11-30T09:00:00.000Z',
  }
  const fill: CrossOrder = {
    id: 'x',
    type: 'market',
    side: 's',
    price: 100_500,
    quantity: 300,
    tradingFee: 30,
    open: false,
    filled: true,
    canceled: false,
    createdAt: '2026-11-29T12:00:00.000Z',
    filledAt: '2026-11-29T12:00:00.000Z',
    canceledAt: null,
  }
  const rows = mergeHistory([closedRow(closed), closedRow(canceled)], [crossFilledRow(fill)], [closedRow(closed)])
  t.same(
    rows.map((r) => r.key),
    ['trade-b', 'cross-x', 'trade-a'],
    'newest first, a row loaded twice shown once',
  )
  t.equal(rows[2]!.net, 990 - 21 - 5, 'realised net = P&L − fees − funding')
  t.equal(rows[1]!.side, 'short', "'s' is a sell")
  const html = text(renderToStaticMarkup(<HistoryTable rows={rows} />))
  t.match(html, /Closed Long \$100 100,000\.0 101,000\.0 \+990 21 \+5 \+964/, 'a closed trade with entry, exit, P&L, fees, funding, net')
  t.match(html, /Cross fill Short \$300 100,500\.0 — 0 30 0 −30/, 'a filled cross order with its fee')
  const strip = text(
    renderToStaticMarkup(
      <RealizedStrip
        realized={{
          day: { pl: 100, tradingFees: 10, fundingFees: 5, net: 85 },
          week: { pl: -50, tradingFees: 10, fundingFees: 0, net: -60 },
          month: { pl: 0, tradingFees: 0, fundingFees: 0, net: 0 },
        }}
      />,
    ),
  )
  t.equal(strip, 'Realised 24 h +85 sats Realised 7 d −60 sats Realised 30 d 0 sats', 'realised P&L for 24 h, 7 d and 30 d')
  const csv = historyCsv(rows).trim().split('\n')
  t.equal(csv[0], 'time_utc,kind,side,quantity_usd,entry_price,exit_price,pl_sats,fees_sats,funding_sats,net_sats', 'a header row')
  t.equal(csv.length, 4, 'one line per row shown')
  t.equal(csv[3], '2026-11-29T09:00:00.000Z,closed,long,100,100000,101000,990,21,5,964', 'plain numbers and UTC times')
})
