/**
 * Cross margin of the inverse BTC/USD perpetual: one position per account, fed by cross orders and by
 * transfers from the account balance (lnmarkets-api.md §4.1 "Futures cross margin"). Undocumented maths
 * are [GUESS]es listed in README.md:
 *
 * - `quantity` is signed (USD, > 0 long, < 0 short); `entryPrice` is the inverse-weighted average of the
 *   fills that built it and null when flat; reducing fills realise P&L into `margin` and `totalPl`;
 * - `margin` = transfers in − out + realised P&L − trading fees − funding fees (sats);
 * - `initialMargin` = |quantity| / entry × 1e8 / leverage; `maintenanceMargin` = 0.5 % of the notional;
 *   `deltaPl` = unrealised P&L at the exit quote (bid for a long, ask for a short); `runningMargin` =
 *   margin + deltaPl; liquidation = the price where runningMargin = maintenanceMargin (null when flat);
 * - a market order fills at the ladder quote for its size, a limit order at its price when the quote
 *   crosses it; the trading fee is FEE_RATE × notional, taken from the cross margin on fill;
 * - orders are refused when the cross margin would not cover the initial margin after the fill.
 */
import { randomUUID } from 'node:crypto'
import { FEE_RATE, plFor } from './engine.ts'
import { roundHalf, type Market } from './market.ts'
import { SimError } from './types.ts'

const SATS = 1e8
export const CROSS_MAINTENANCE_RATE = 0.005
const MAX_LIQUIDATION = 1e9

export interface CrossOrder {
  id: string
  owner: string
  type: 'limit' | 'market' | 'liquidation'
  side: 'buy' | 'sell'
  price: number
  quantity: number
  tradingFee: number
  open: boolean
  filled: boolean
  canceled: boolean
  createdAt: number
  filledAt: number | null
  canceledAt: number | null
}

export interface CrossState {
  id: string
  owner: string
  uid: string
  quantity: number
  leverage: number
  margin: number
  entryPrice: number | null
  tradingFees: number
  fundingFees: number
  totalPl: number
  updatedAt: number
  orders: CrossOrder[]
  transfers: Array<{ id: string; amount: number; time: number }>
  fundingFeeList: Array<{ fee: number; settlementId: string; time: number; tradeId: null }>
  /** last filledAt handed out, so filled orders of one account never share a millisecond (cursor ties) */
  lastFilledAt: number
}

/** the v3 position (times in ms; the REST route turns them into ISO, the stream keeps ms) */
export interface CrossPositionView {
  id: string
  uid: string
  quantity: number
  leverage: number
  margin: number
  entryPrice: number | null
  liquidation: number | null
  initialMargin: number
  maintenanceMargin: number
  runningMargin: number
  totalPl: number
  deltaPl: number
  fundingFees: number
  tradingFees: number
  updatedAt: number
}

export type CrossOrderEvent = 'new' | 'limit' | 'canceled'
export type CrossPositionEvent = 'order' | 'deposit' | 'withdraw' | 'leverage' | 'funding' | 'liquidation'

export interface CrossHooks {
  /** balance of the account (sats) */
  balance(key: string): number
  addBalance(key: string, delta: number): void
  userId(key: string): string
  onOrder(owner: string, event: CrossOrderEvent, o: CrossOrder): void
  onPosition(owner: string, event: CrossPositionEvent, p: CrossPositionView): void
}

export interface CrossOrderBody {
  type: 'market' | 'limit'
  side: 'buy' | 'sell'
  quantity: number
  price?: number
}

const fee = (quantity: number, price: number): number => Math.round((quantity / price) * SATS * FEE_RATE)
const signed = (side: 'buy' | 'sell', q: number) => (side === 'buy' ? q : -q)

export class CrossBook {
  readonly states = new Map<string, CrossState>()
  readonly orders = new Map<string, CrossOrder>()

  constructor(
    private readonly market: Market,
    private readonly now: () => number,
    private readonly hooks: CrossHooks,
  ) {}

  state(key: string): CrossState {
    let s = this.states.get(key)
    if (!s) {
      s = {
        id: randomUUID(),
        owner: key,
        uid: this.hooks.userId(key),
        quantity: 0,
        leverage: 10,
        margin: 0,
        entryPrice: null,
        tradingFees: 0,
        fundingFees: 0,
        totalPl: 0,
        updatedAt: this.now(),
        orders: [],
        transfers: [],
        fundingFeeList: [],
        lastFilledAt: 0,
      }
      this.states.set(key, s)
    }
    return s
  }

  private exitQuote(s: CrossState): number {
    const q = this.market.quote(Math.abs(s.quantity))
    return s.quantity > 0 ? q.bidPrice : q.askPrice
  }

  view(key: string): CrossPositionView {
    const s = this.state(key)
    const abs = Math.abs(s.quantity)
    const entry = s.entryPrice
    let deltaPl = 0
    let initialMargin = 0
    let maintenanceMargin = 0
    let liquidation: number | null = null
    if (abs > 0 && entry !== null) {
      const side = s.quantity > 0 ? 'buy' : 'sell'
      deltaPl = plFor(side, abs, entry, this.exitQuote(s))
      initialMargin = Math.round(((abs / entry) * SATS) / s.leverage)
      maintenanceMargin = Math.round((abs / entry) * SATS * CROSS_MAINTENANCE_RATE)
      const room = (s.margin - maintenanceMargin) / (abs * SATS)
      const inv = side === 'buy' ? 1 / entry + room : 1 / entry - room
      liquidation = inv <= 0 ? MAX_LIQUIDATION : Math.min(MAX_LIQUIDATION, roundHalf(1 / inv))
    }
    return {
      id: s.id,
      uid: s.uid,
      quantity: s.quantity,
      leverage: s.leverage,
      margin: s.margin,
      entryPrice: abs > 0 ? entry : null,
      liquidation,
      initialMargin,
      maintenanceMargin,
      runningMargin: s.margin + deltaPl,
      totalPl: s.totalPl,
      deltaPl,
      fundingFees: s.fundingFees,
      tradingFees: s.tradingFees,
      updatedAt: s.updatedAt,
    }
  }

  /** initial margin the position would need after a fill of `q` (signed) at `price` */
  private neededAfter(s: CrossState, q: number, price: number): number {
    const after = s.quantity + q
    if (after === 0) return 0
    const entry = Math.sign(after) === Math.sign(s.quantity) && s.entryPrice !== null ? s.entryPrice : price
    return Math.round(((Math.abs(after) / entry) * SATS) / s.leverage)
  }

  order(key: string, body: CrossOrderBody): CrossOrder {
    const s = this.state(key)
    const quote = this.market.quote(body.quantity)
    const price = body.type === 'limit' ? (body.price as number) : body.side === 'buy' ? quote.askPrice : quote.bidPrice
    const q = signed(body.side, body.quantity)
    const open = s.orders.filter((o) => o.open).reduce((sum, o) => sum + signed(o.side, o.quantity), 0)
    // the worst case: every resting order on this side fills too
    const worst = Math.abs(q + open) > Math.abs(q) ? q + open : q
    const cur = this.view(key)
    if (this.neededAfter(s, worst, price) + fee(body.quantity, price) > s.margin + Math.min(0, cur.deltaPl)) {
      throw new SimError(400, 'insufficientMargin', 'Not enough cross margin for this order')
    }
    const o: CrossOrder = {
      id: randomUUID(),
      owner: key,
      type: body.type,
      side: body.side,
      price,
      quantity: body.quantity,
      tradingFee: 0,
      open: true,
      filled: false,
      canceled: false,
      createdAt: this.now(),
      filledAt: null,
      canceledAt: null,
    }
    s.orders.push(o)
    this.orders.set(o.id, o)
    if (body.type === 'market') {
      this.fill(s, o, price, false)
      this.hooks.onOrder(key, 'new', o)
      this.hooks.onPosition(key, 'order', this.view(key))
    } else {
      this.hooks.onOrder(key, 'new', o)
      this.fillLimits()
    }
    return o
  }

  private stampFill(s: CrossState): number {
    const t = Math.max(this.now(), s.lastFilledAt + 1)
    s.lastFilledAt = t
    return t
  }

  /** apply a fill to the position: average in, or realise P&L on the reduced part (and flip) */
  private fill(s: CrossState, o: CrossOrder, price: number, notify = true, at?: number): void {
    const q = signed(o.side, o.quantity)
    const f = o.type === 'liquidation' ? 0 : fee(o.quantity, price)
    if (s.quantity === 0 || Math.sign(s.quantity) === Math.sign(q)) {
      const a = Math.abs(s.quantity)
      s.entryPrice =
        s.entryPrice === null || a === 0 ? price : Math.round(((a + o.quantity) / (a / s.entryPrice + o.quantity / price)) * 100) / 100
      s.quantity += q
    } else {
      const closing = Math.min(Math.abs(q), Math.abs(s.quantity))
      const realised = plFor(s.quantity > 0 ? 'buy' : 'sell', closing, s.entryPrice as number, price)
      s.margin += realised
      s.totalPl += realised
      const rest = Math.abs(q) - closing
      s.quantity += q
      if (s.quantity === 0) s.entryPrice = null
      else if (rest > 0) s.entryPrice = price
    }
    s.margin -= f
    s.tradingFees += f
    o.price = price
    o.tradingFee = f
    o.open = false
    o.filled = true
    o.filledAt = at ?? this.stampFill(s)
    s.lastFilledAt = Math.max(s.lastFilledAt, o.filledAt)
    s.updatedAt = o.filledAt
    if (notify) {
      this.hooks.onOrder(s.owner, 'limit', o)
      this.hooks.onPosition(s.owner, 'order', this.view(s.owner))
    }
  }

  cancel(key: string, id: string): CrossOrder {
    const o = this.orders.get(id)
    if (!o) throw new SimError(404, 'orderNotFound', 'Order not found')
    if (o.owner !== key) throw new SimError(400, 'orderNotOwned', 'You do not own this order')
    if (!o.open) throw new SimError(400, 'orderNotOpen', 'Order is not open')
    this.cancelOne(o)
    return o
  }

  private cancelOne(o: CrossOrder): void {
    o.open = false
    o.canceled = true
    o.canceledAt = this.now()
    this.hooks.onOrder(o.owner, 'canceled', o)
  }

  cancelAll(key: string): CrossOrder[] {
    const open = this.state(key).orders.filter((o) => o.open)
    for (const o of open) this.cancelOne(o)
    return open
  }

  close(key: string): CrossOrder {
    const s = this.state(key)
    if (s.quantity === 0) throw new SimError(400, 'noPosition', 'There is no cross position to close')
    return this.order(key, { type: 'market', side: s.quantity > 0 ? 'sell' : 'buy', quantity: Math.abs(s.quantity) })
  }

  deposit(key: string, amount: number): CrossPositionView {
    if (amount > this.hooks.balance(key)) throw new SimError(400, 'insufficientBalance', 'Not enough balance')
    const s = this.state(key)
    this.hooks.addBalance(key, -amount)
    s.margin += amount
    s.updatedAt = this.now()
    s.transfers.push({ id: randomUUID(), amount, time: s.updatedAt })
    const v = this.view(key)
    this.hooks.onPosition(key, 'deposit', v)
    return v
  }

  withdraw(key: string, amount: number): CrossPositionView {
    const s = this.state(key)
    const v0 = this.view(key)
    const free = s.margin + Math.min(0, v0.deltaPl) - v0.initialMargin
    if (amount > free) throw new SimError(400, 'insufficientMargin', 'Not enough free cross margin')
    s.margin -= amount
    this.hooks.addBalance(key, amount)
    s.updatedAt = this.now()
    s.transfers.push({ id: randomUUID(), amount: -amount, time: s.updatedAt })
    const v = this.view(key)
    this.hooks.onPosition(key, 'withdraw', v)
    return v
  }

  setLeverage(key: string, leverage: number): CrossPositionView {
    const s = this.state(key)
    const old = s.leverage
    s.leverage = leverage
    const v = this.view(key)
    if (v.initialMargin > s.margin + Math.min(0, v.deltaPl)) {
      s.leverage = old
      throw new SimError(400, 'insufficientMargin', 'Not enough cross margin for this leverage')
    }
    s.updatedAt = this.now()
    const out = this.view(key)
    this.hooks.onPosition(key, 'leverage', out)
    return out
  }

  private fillLimits(): void {
    for (const o of this.orders.values()) {
      if (!o.open || o.type !== 'limit') continue
      const q = this.market.quote(o.quantity)
      if ((o.side === 'buy' && q.askPrice <= o.price) || (o.side === 'sell' && q.bidPrice >= o.price))
        this.fill(this.state(o.owner), o, o.price)
    }
  }

  /** after every price change: limit fills, then liquidations at the liquidation price */
  onPrice(): void {
    this.fillLimits()
    for (const s of this.states.values()) {
      if (s.quantity === 0) continue
      const v = this.view(s.owner)
      if (v.liquidation === null) continue
      const px = this.exitQuote(s)
      if (s.quantity > 0 ? px > v.liquidation : px < v.liquidation) continue
      const o: CrossOrder = {
        id: randomUUID(),
        owner: s.owner,
        type: 'liquidation',
        side: s.quantity > 0 ? 'sell' : 'buy',
        price: v.liquidation,
        quantity: Math.abs(s.quantity),
        tradingFee: 0,
        open: true,
        filled: false,
        canceled: false,
        createdAt: this.now(),
        filledAt: null,
        canceledAt: null,
      }
      s.orders.push(o)
      this.orders.set(o.id, o)
      this.fill(s, o, v.liquidation, false)
      // what is left of the margin (about the maintenance margin) is kept by the exchange [GUESS]
      s.margin = 0
      this.hooks.onOrder(s.owner, 'new', o)
      this.hooks.onPosition(s.owner, 'liquidation', this.view(s.owner))
    }
  }

  /** funding at the fixing: fee = |quantity| / fixing × rate × 1e8, longs pay when the rate is positive */
  settleFunding(settlement: { id: string; time: number; fundingRate: number; fixingPrice: number }): void {
    for (const s of this.states.values()) this.fund(s.owner, settlement, true)
  }

  fund(key: string, settlement: { id: string; time: number; fundingRate: number; fixingPrice: number }, notify: boolean): void {
    const s = this.state(key)
    {
      if (s.quantity === 0) return
      const paid = Math.round((Math.abs(s.quantity) / settlement.fixingPrice) * settlement.fundingRate * SATS) * (s.quantity > 0 ? 1 : -1)
      s.margin -= paid
      s.fundingFees += paid
      s.updatedAt = settlement.time
      s.fundingFeeList.push({ fee: paid, settlementId: settlement.id, time: settlement.time, tradeId: null })
      if (notify) this.hooks.onPosition(s.owner, 'funding', this.view(s.owner))
    }
  }

  /** seed: a position opened by a filled market order at `at`, funded by the exchange (not the balance) */
  seed(
    key: string,
    // side, quantity, entryPrice: undefined = no position (a cross account holding margin only)
    input: {
      margin: number
      leverage: number
      side?: 'buy' | 'sell' | undefined
      quantity?: number | undefined
      entryPrice?: number | undefined
      openedAt: number
    },
  ): void {
    const s = this.state(key)
    s.margin = input.margin
    s.leverage = input.leverage
    s.transfers.push({ id: randomUUID(), amount: input.margin, time: input.openedAt - 60_000 })
    if (input.quantity && input.side) {
      const price = roundHalf(input.entryPrice ?? this.market.price())
      const o: CrossOrder = {
        id: randomUUID(),
        owner: key,
        type: 'market',
        side: input.side,
        price,
        quantity: input.quantity,
        tradingFee: 0,
        open: true,
        filled: false,
        canceled: false,
        createdAt: input.openedAt,
        filledAt: null,
        canceledAt: null,
      }
      s.orders.push(o)
      this.orders.set(o.id, o)
      this.fill(s, o, price, false, input.openedAt)
    }
    s.updatedAt = input.openedAt
  }

  /** seed a resting limit order (no notification) */
  seedOrder(key: string, side: 'buy' | 'sell', quantity: number, price: number, createdAt: number): void {
    const s = this.state(key)
    const o: CrossOrder = {
      id: randomUUID(),
      owner: key,
      type: 'limit',
      side,
      price: roundHalf(price),
      quantity,
      tradingFee: 0,
      open: true,
      filled: false,
      canceled: false,
      createdAt,
      filledAt: null,
      canceledAt: null,
    }
    s.orders.push(o)
    this.orders.set(o.id, o)
  }
}
