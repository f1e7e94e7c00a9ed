/**
 * Accounts and isolated-margin trades of the inverse BTC/USD perpetual (lnmarkets-api.md §8.2).
 * All amounts are integer sats, quantities integer USD, prices multiples of 0.5.
 * Balance flow: opening a trade (market or limit) debits margin + maintenanceMargin (the fee reserve);
 * the opening fee is taken from the reserve when the trade fills; closing credits
 * margin + pl + (reserve − opening fee − closing fee); canceling an unfilled order refunds both.
 */
import { randomUUID } from 'node:crypto'
import { Market, roundHalf, nextFundingTime, FUNDING_PERIOD_MS } from './market.ts'
import { CrossBook, type CrossOrder, type CrossOrderEvent, type CrossPositionEvent, type CrossPositionView } from './cross.ts'
import { SimError, type SimAccountInput } from './types.ts'

export const FEE_RATE = 0.001 // tier 0 (0.1 %)
export const MAX_LEVERAGE = 100
export const MAX_TRADE_QUANTITY = 500_000
export const MAX_ACCOUNT_QUANTITY = 10_000_000
export const MAX_TRADES = 100
const SATS = 1e8
const MAX_LIQUIDATION = 1e9 // a 1× short has no liquidation price; cap it

export type TradeEvent = 'open' | 'filled' | 'closed' | 'canceled' | 'liquidation' | 'stoploss' | 'takeprofit' | 'funding'

/** what a funding event carries besides the trade id (the SDK's shape) */
export interface FundingEventExtra {
  fundingFee: number
  fundedAt: number
}

export interface WalletEvent {
  currency: 'btc'
  network: 'lightning' | 'bitcoin'
  id: string
  amount: number
  fee?: number
  balance: number
  status: string
  txId: string | null
}

/** every private event the engine produces; the stream turns them into Stream v1 notifications */
export interface EngineEvents {
  trade(owner: string, event: TradeEvent, t: Trade, extra?: FundingEventExtra): void
  crossOrder?(owner: string, event: CrossOrderEvent, o: CrossOrder): void
  crossPosition?(owner: string, event: CrossPositionEvent, p: CrossPositionView): void
  wallet?(owner: string, kind: 'deposit' | 'withdrawal', e: WalletEvent): void
}

export interface Trade {
  id: string
  owner: string
  type: 'limit' | 'market'
  side: 'buy' | 'sell'
  quantity: number
  margin: number
  leverage: number
  price: number
  entryPrice: number | null
  entryMargin: number | null
  exitPrice: number | null
  liquidation: number
  stoploss: number
  stoplossTrailingDistance: number
  takeprofit: number
  pl: number
  openingFee: number
  closingFee: number
  maintenanceMargin: number
  sumFundingFees: number
  sumCashInMargin: number
  sumCashInPl: number
  open: boolean
  running: boolean
  closed: boolean
  canceled: boolean
  createdAt: number
  filledAt: number | null
  closedAt: number | null
  clientId: string | null
}

export interface Account {
  id: string
  username: string
  key: string
  balance: number
  trades: Trade[]
  /** last closedAt handed out, so closed trades of one account never share a millisecond (cursor ties) */
  lastClosedAt: number
}

export interface FundingSettlement {
  id: string
  time: number
  fundingRate: number
  fixingPrice: number
}
export interface FundingFee {
  fee: number
  settlementId: string
  time: number
  tradeId: string
  owner: string
}

export interface CreateTradeBody {
  type: 'market' | 'limit'
  side: 'buy' | 'sell'
  leverage: number
  quantity?: number
  margin?: number
  price?: number
  stoploss?: number
  takeprofit?: number
  clientId?: string
}

const fee = (quantity: number, price: number): number => Math.round((quantity / price) * SATS * FEE_RATE)

export const marginFor = (quantity: number, price: number, leverage: number): number =>
  Math.max(1, Math.round((quantity * SATS) / (price * leverage)))

/** the price at which the margin is exhausted, rounded to the 0.5 tick */
export function liquidationFor(side: 'buy' | 'sell', quantity: number, entry: number, margin: number): number {
  const inv = side === 'buy' ? 1 / entry + margin / (quantity * SATS) : 1 / entry - margin / (quantity * SATS)
  if (inv <= 0) return MAX_LIQUIDATION
  return Math.min(MAX_LIQUIDATION, roundHalf(1 / inv))
}

/** P&L in sats of `quantity` USD from `entry` to `exit` */
export function plFor(side: 'buy' | 'sell', quantity: number, entry: number, exit: number): number {
  const longPl = quantity * (1 / entry - 1 / exit) * SATS
  return Math.round(side === 'buy' ? longPl : -longPl)
}

export const maintenanceMarginFor = (quantity: number, entry: number, liquidation: number): number =>
  Math.round((quantity / entry) * SATS * FEE_RATE + (quantity / liquidation) * SATS * FEE_RATE)

export class Engine {
  readonly accounts = new Map<string, Account>()
  readonly trades = new Map<string, Trade>()
  readonly settlements: FundingSettlement[] = []
  readonly fundingFees: FundingFee[] = []
  readonly cross: CrossBook
  private nextFunding: number
  private readonly events: EngineEvents

  constructor(
    private readonly market: Market,
    private readonly now: () => number,
    inputs: SimAccountInput[],
    events: EngineEvents | EngineEvents['trade'] = () => {},
  ) {
    this.events = typeof events === 'function' ? { trade: events } : events
    this.cross = new CrossBook(market, now, {
      balance: (key) => this.account(key).balance,
      addBalance: (key, delta) => {
        this.account(key).balance += delta
      },
      userId: (key) => this.account(key).id,
      onOrder: (owner, event, o) => this.events.crossOrder?.(owner, event, o),
      onPosition: (owner, event, p) => this.events.crossPosition?.(owner, event, p),
    })
    this.nextFunding = nextFundingTime(now())
    const withHistory = inputs.filter((a) => a.history)
    const settlements = Math.max(0, ...withHistory.map((a) => Math.max(a.history?.closedTrades ?? 0, a.history?.fundingSettlements ?? 0)))
    this.seedSettlements(settlements)
    for (const a of inputs) this.addAccount(a)
  }

  private emit(owner: string, event: TradeEvent, t: Trade, extra?: FundingEventExtra): void {
    this.events.trade(owner, event, t, extra)
  }

  /** `n` past fixings (oldest first, like live ones), so seeded history has settlements to point at */
  private seedSettlements(n: number): void {
    const last = this.nextFunding - FUNDING_PERIOD_MS
    for (let k = n - 1; k >= 0; k--) {
      const time = last - k * FUNDING_PERIOD_MS
      this.settlements.push({
        id: randomUUID(),
        time,
        fundingRate: k % 3 === 2 ? -0.00005 : 0.0001,
        fixingPrice: roundHalf(this.market.price() * (1 - 0.004 * ((k % 4) - 1.5))),
      })
    }
  }

  addAccount(input: SimAccountInput): Account {
    const acc: Account = {
      id: randomUUID(),
      username: input.username,
      key: input.key,
      balance: Math.floor(input.balance),
      trades: [],
      lastClosedAt: 0,
    }
    this.accounts.set(input.key, acc)
    const t0 = this.now()
    input.positions?.forEach((p, i) => {
      const limit = p.type === 'limit'
      const ref = this.market.price()
      const price = limit ? roundHalf(p.price ?? ref * (p.side === 'buy' ? 0.97 : 1.03)) : roundHalf(p.entryPrice ?? p.price ?? ref)
      const t = this.build(
        acc,
        { type: limit ? 'limit' : 'market', side: p.side, leverage: p.leverage, quantity: p.quantity },
        price,
        t0 - (i + 1) * 3_600_000,
      )
      // seeded positions are funded by the exchange, not by the configured balance
      if (!limit) this.fill(t, price, t.createdAt + 1000, false)
      const long = p.side === 'buy'
      if (!limit && p.stoplossPct) t.stoploss = roundHalf(price * (1 + (long ? -p.stoplossPct : p.stoplossPct) / 100))
      if (!limit && p.takeprofitPct) t.takeprofit = roundHalf(price * (1 + (long ? p.takeprofitPct : -p.takeprofitPct) / 100))
      acc.trades.push(t)
      this.trades.set(t.id, t)
    })
    if (input.history) this.seedHistory(acc, input.history.closedTrades ?? 0)
    if (input.cross) this.seedCross(acc, input.cross)
    return acc
  }

  /** `n` closed isolated trades, each alive across one past fixing (and paying its funding), plus one canceled order */
  private seedHistory(acc: Account, n: number): void {
    const now = this.now()
    const fixings = this.settlements.slice(-n).reverse()
    fixings.forEach((s, i) => {
      const side = i % 2 === 0 ? 'buy' : 'sell'
      const long = side === 'buy'
      const quantity = 150 + 100 * i
      const entry = roundHalf(s.fixingPrice * (long ? 0.997 : 1.003))
      const move = i % 3 === 1 ? -0.008 : 0.012
      const exit = roundHalf(entry * (1 + (long ? move : -move)))
      const t = this.build(acc, { type: 'market', side, leverage: 10, quantity }, entry, s.time - 2 * 3_600_000)
      this.fill(t, entry, t.createdAt + 1000, false)
      const paid = Math.round((quantity / s.fixingPrice) * s.fundingRate * SATS) * (long ? 1 : -1)
      t.margin -= paid
      t.sumFundingFees = paid
      this.recompute(t)
      this.fundingFees.push({ fee: paid, settlementId: s.id, time: s.time, tradeId: t.id, owner: acc.key })
      t.exitPrice = exit
      t.pl = plFor(side, quantity, entry, exit)
      t.closingFee = fee(quantity, exit)
      t.running = false
      t.closed = true
      t.closedAt = Math.min(s.time + 3 * 3_600_000, now - (i + 2) * 60_000)
      acc.lastClosedAt = Math.max(acc.lastClosedAt, t.closedAt)
      acc.trades.push(t)
      this.trades.set(t.id, t)
    })
    if (n > 0) {
      const c = this.build(
        acc,
        { type: 'limit', side: 'buy', leverage: 20, quantity: 250 },
        roundHalf(this.market.price() * 0.95),
        now - 5 * 3_600_000,
      )
      c.open = false
      c.canceled = true
      c.closedAt = now - 60_000
      acc.lastClosedAt = Math.max(acc.lastClosedAt, c.closedAt)
      acc.trades.push(c)
      this.trades.set(c.id, c)
    }
  }

  /** a cross account opened before the last fixings (it paid their funding) with resting limit orders */
  private seedCross(acc: Account, c: NonNullable<SimAccountInput['cross']>): void {
    const now = this.now()
    const past = this.settlements.filter((s) => s.time < now)
    const previous = past[past.length - 2]
    const openedAt = previous ? previous.time - 3_600_000 : now - 2 * 3_600_000
    this.cross.seed(acc.key, {
      margin: c.margin,
      leverage: c.leverage ?? 10,
      side: c.side,
      quantity: c.quantity,
      entryPrice: c.entryPrice,
      openedAt,
    })
    for (const s of past) if (s.time > openedAt) this.cross.fund(acc.key, s, false)
    for (const o of c.orders ?? []) {
      const price = o.price ?? this.market.price() * (o.side === 'buy' ? 0.97 : 1.03)
      this.cross.seedOrder(acc.key, o.side, o.quantity, price, now - 30 * 60_000)
    }
  }

  // ---------------------------------------------------------------- wallet

  /** a settled deposit (credited now) → `wallet/deposit` */
  deposit(key: string, amount: number, network: 'lightning' | 'bitcoin' = 'lightning'): WalletEvent {
    const acc = this.account(key)
    acc.balance += amount
    const e: WalletEvent = {
      currency: 'btc',
      network,
      id: randomUUID(),
      amount,
      balance: acc.balance,
      status: network === 'lightning' ? 'settled' : 'confirmed',
      txId: network === 'bitcoin' ? randomUUID().replaceAll('-', '') + randomUUID().replaceAll('-', '') : null,
    }
    this.events.wallet?.(key, 'deposit', e)
    return e
  }

  /** a processed withdrawal (debited now, fee included) → `wallet/withdrawal` */
  withdraw(key: string, amount: number, network: 'lightning' | 'bitcoin' = 'lightning'): WalletEvent {
    const acc = this.account(key)
    const f = network === 'lightning' ? Math.max(1, Math.ceil(amount * 0.001)) : 1_000
    if (amount + f > acc.balance) throw new SimError(400, 'insufficientBalance', 'Not enough balance')
    acc.balance -= amount + f
    const e: WalletEvent = {
      currency: 'btc',
      network,
      id: randomUUID(),
      amount,
      fee: f,
      balance: acc.balance,
      status: 'processed',
      txId: network === 'bitcoin' ? randomUUID().replaceAll('-', '') + randomUUID().replaceAll('-', '') : null,
    }
    this.events.wallet?.(key, 'withdrawal', e)
    return e
  }

  account(key: string): Account {
    const a = this.accounts.get(key)
    if (!a) throw new SimError(401, 'apiKeyNotFound', 'API key not found')
    return a
  }

  private build(acc: Account, body: CreateTradeBody, price: number, createdAt: number): Trade {
    let quantity = body.quantity
    if (quantity === undefined) {
      quantity = Math.floor(((body.margin ?? 0) * body.leverage * price) / SATS)
      if (quantity < 1) throw new SimError(400, 'badRequest', 'margin is too small for a 1 USD quantity at this leverage')
    }
    const margin = marginFor(quantity, price, body.leverage)
    const liquidation = liquidationFor(body.side, quantity, price, margin)
    return {
      id: randomUUID(),
      owner: acc.key,
      type: body.type,
      side: body.side,
      quantity,
      margin,
      leverage: body.leverage,
      price,
      entryPrice: price,
      entryMargin: margin,
      exitPrice: null,
      liquidation,
      stoploss: body.stoploss ?? 0,
      stoplossTrailingDistance: 0,
      takeprofit: body.takeprofit ?? 0,
      pl: 0,
      openingFee: 0,
      closingFee: 0,
      maintenanceMargin: maintenanceMarginFor(quantity, price, liquidation),
      sumFundingFees: 0,
      sumCashInMargin: 0,
      sumCashInPl: 0,
      open: true,
      running: false,
      closed: false,
      canceled: false,
      createdAt,
      filledAt: null,
      closedAt: null,
      clientId: body.clientId ?? null,
    }
  }

  private fill(t: Trade, price: number, at: number, notify = true): void {
    t.entryPrice = price
    t.open = false
    t.running = true
    t.filledAt = at
    t.openingFee = fee(t.quantity, price)
    if (notify) this.emit(t.owner, 'filled', t)
  }

  /** the price a running trade would close at now (longs sell at the bid, shorts buy at the ask) */
  private exitQuote(t: Trade): number {
    const q = this.market.quote(t.quantity)
    return t.side === 'buy' ? q.bidPrice : q.askPrice
  }

  /** a copy with live P&L for running trades */
  view(t: Trade): Trade {
    if (t.running && t.entryPrice !== null) return { ...t, pl: plFor(t.side, t.quantity, t.entryPrice, this.exitQuote(t)) }
    return { ...t }
  }

  create(key: string, body: CreateTradeBody): Trade {
    const acc = this.account(key)
    const live = acc.trades.filter((t) => t.open || t.running)
    if (live.length >= MAX_TRADES)
      throw new SimError(400, 'tooManyTrades', `You cannot have more than ${MAX_TRADES} open or running trades`)
    const quote = this.market.quote(body.quantity ?? 0)
    const price = body.type === 'limit' ? (body.price as number) : body.side === 'buy' ? quote.askPrice : quote.bidPrice
    const t = this.build(acc, body, price, this.now())
    if (t.quantity > MAX_TRADE_QUANTITY) throw new SimError(400, 'quantityTooHigh', `quantity must be at most ${MAX_TRADE_QUANTITY}`)
    if (live.reduce((s, x) => s + x.quantity, 0) + t.quantity > MAX_ACCOUNT_QUANTITY) {
      throw new SimError(400, 'quantityTooHigh', `total quantity of open and running trades must stay below ${MAX_ACCOUNT_QUANTITY}`)
    }
    this.checkStops(t, t.stoploss, t.takeprofit, price)
    const cost = t.margin + t.maintenanceMargin
    if (cost > acc.balance) throw new SimError(400, 'insufficientBalance', 'Not enough balance')
    acc.balance -= cost
    acc.trades.push(t)
    this.trades.set(t.id, t)
    if (body.type === 'market') {
      this.fill(t, price, t.createdAt, false)
    }
    this.emit(key, body.type === 'market' ? 'filled' : 'open', t)
    if (body.type === 'limit') this.fillLimits()
    return this.view(t)
  }

  private checkStops(t: Trade, stoploss: number, takeprofit: number, ref: number): void {
    const long = t.side === 'buy'
    if (stoploss > 0) {
      if (long && stoploss >= ref) throw new SimError(400, 'invalidStoploss', 'Stoploss must be lower than the current price for a buy')
      if (!long && stoploss <= ref) throw new SimError(400, 'invalidStoploss', 'Stoploss must be higher than the current price for a sell')
      // a stop the liquidation would hit first is refused [GUESS: the code and message]
      if (long && stoploss <= t.liquidation)
        throw new SimError(400, 'invalidStoploss', 'Stoploss must be higher than the liquidation price for a buy')
      if (!long && stoploss >= t.liquidation)
        throw new SimError(400, 'invalidStoploss', 'Stoploss must be lower than the liquidation price for a sell')
    }
    if (takeprofit > 0) {
      if (long && takeprofit <= ref)
        throw new SimError(400, 'invalidTakeprofit', 'Takeprofit must be higher than the current price for a buy')
      if (!long && takeprofit >= ref)
        throw new SimError(400, 'invalidTakeprofit', 'Takeprofit must be lower than the current price for a sell')
    }
  }

  private owned(key: string, id: string): Trade {
    const t = this.trades.get(id)
    if (!t) throw new SimError(404, 'tradeNotFound', 'Trade not found')
    if (t.owner !== key) throw new SimError(400, 'tradeNotOwned', 'You do not own this trade')
    return t
  }

  private stamp(acc: Account): number {
    const t = Math.max(this.now(), acc.lastClosedAt + 1)
    acc.lastClosedAt = t
    return t
  }

  private settle(t: Trade, exit: number, event: TradeEvent, forcedPl?: number): void {
    const acc = this.accounts.get(t.owner) as Account
    t.exitPrice = exit
    t.pl = forcedPl ?? plFor(t.side, t.quantity, t.entryPrice as number, exit)
    t.closingFee = fee(t.quantity, exit)
    const reserveLeft = Math.max(0, t.maintenanceMargin - t.openingFee - t.closingFee)
    acc.balance += Math.max(0, t.margin + t.pl) + reserveLeft
    t.running = false
    t.closed = true
    t.closedAt = this.stamp(acc)
    this.emit(t.owner, event, t)
  }

  close(key: string, id: string): Trade {
    const t = this.owned(key, id)
    if (!t.running) throw new SimError(400, 'tradeNotRunning', 'Trade is not running')
    this.settle(t, this.exitQuote(t), 'closed')
    return this.view(t)
  }

  private cancelOne(t: Trade): void {
    const acc = this.accounts.get(t.owner) as Account
    acc.balance += t.margin + t.maintenanceMargin
    t.open = false
    t.canceled = true
    t.closedAt = this.stamp(acc)
    this.emit(t.owner, 'canceled', t)
  }

  cancel(key: string, id: string): Trade {
    const t = this.owned(key, id)
    if (!t.open) throw new SimError(400, 'tradeNotOpen', 'Trade is not open')
    this.cancelOne(t)
    return this.view(t)
  }

  cancelAll(key: string): Trade[] {
    const acc = this.account(key)
    const open = acc.trades.filter((t) => t.open)
    for (const t of open) this.cancelOne(t)
    return open.map((t) => this.view(t))
  }

  private recompute(t: Trade): void {
    const entry = t.entryPrice as number
    t.leverage = Math.round(((t.quantity * SATS) / (entry * t.margin)) * 100) / 100
    t.liquidation = liquidationFor(t.side, t.quantity, entry, t.margin)
  }

  addMargin(key: string, id: string, amount: number): Trade {
    const t = this.owned(key, id)
    if (!t.running) throw new SimError(400, 'tradeNotRunning', 'Trade is not running')
    const acc = this.account(key)
    if (amount > acc.balance) throw new SimError(400, 'insufficientBalance', 'Not enough balance')
    const entry = t.entryPrice as number
    if ((t.quantity * SATS) / (entry * (t.margin + amount)) < 1) throw new SimError(400, 'leverageTooLow', 'Leverage cannot go below 1')
    acc.balance -= amount
    t.margin += amount
    this.recompute(t)
    return this.view(t)
  }

  /** takes profit first (moving the entry price), then margin, never above 100× leverage */
  cashIn(key: string, id: string, amount: number): Trade {
    const t = this.owned(key, id)
    if (!t.running) throw new SimError(400, 'tradeNotRunning', 'Trade is not running')
    const acc = this.account(key)
    const cur = this.exitQuote(t)
    const entry = t.entryPrice as number
    const pl = plFor(t.side, t.quantity, entry, cur)
    const fromPl = Math.min(amount, Math.max(0, pl))
    const fromMargin = amount - fromPl
    const minMargin = Math.ceil((t.quantity * SATS) / (entry * MAX_LEVERAGE))
    if (t.margin - fromMargin < minMargin)
      throw new SimError(400, 'insufficientMargin', 'Not enough margin or profit to cash in this amount')
    if (fromPl > 0) {
      const rest = (pl - fromPl) / (t.quantity * SATS)
      t.entryPrice = Math.round((t.side === 'buy' ? 1 / (rest + 1 / cur) : 1 / (1 / cur - rest)) * 100) / 100
    }
    t.margin -= fromMargin
    t.sumCashInPl += fromPl
    t.sumCashInMargin += fromMargin
    acc.balance += amount
    this.recompute(t)
    return this.view(t)
  }

  setStoploss(key: string, id: string, value: number, mode: 'fixed' | 'trailing' = 'fixed'): Trade {
    const t = this.owned(key, id)
    if (!t.running && !t.open) throw new SimError(400, 'tradeClosed', 'Trade is closed or canceled')
    const ref = t.running ? this.exitQuote(t) : t.price
    if (mode === 'trailing' && value > 0) {
      const stop = this.trailingStop({ ...t, stoplossTrailingDistance: value }, ref)
      if (stop <= 0) throw new SimError(400, 'invalidStoploss', 'Stoploss must be higher than the liquidation price for a buy')
      this.checkStops(t, stop, 0, ref)
      t.stoplossTrailingDistance = value
      t.stoploss = stop
    } else {
      this.checkStops(t, value, 0, ref)
      t.stoploss = value
      t.stoplossTrailingDistance = 0
    }
    return this.view(t)
  }

  setTakeprofit(key: string, id: string, value: number): Trade {
    const t = this.owned(key, id)
    if (!t.running && !t.open) throw new SimError(400, 'tradeClosed', 'Trade is closed or canceled')
    this.checkStops(t, 0, value, t.running ? this.exitQuote(t) : t.price)
    t.takeprofit = value
    return this.view(t)
  }

  /** trailing distance is a fraction of price (0.1 = 10 %; the SDK accepts 0.001–10) */
  private trailingStop(t: Pick<Trade, 'side' | 'stoplossTrailingDistance'>, ref: number): number {
    const d = t.stoplossTrailingDistance
    return roundHalf(t.side === 'buy' ? ref * (1 - d) : ref * (1 + d))
  }

  private fillLimits(): void {
    const bid = this.market.bid()
    const ask = this.market.ask()
    for (const t of this.trades.values()) {
      if (!t.open) continue
      if ((t.side === 'buy' && ask <= t.price) || (t.side === 'sell' && bid >= t.price)) this.fill(t, t.price, this.now())
    }
  }

  /** run after every price change: limit fills, trailing stops, stoploss/takeprofit, liquidations, funding */
  onPrice(): void {
    this.fillLimits()
    for (const t of this.trades.values()) {
      if (!t.running) continue
      const px = this.exitQuote(t)
      const long = t.side === 'buy'
      if (t.stoplossTrailingDistance > 0) {
        const s = this.trailingStop(t, px)
        if (long ? s > t.stoploss : s < t.stoploss) t.stoploss = s
      }
      if (long ? px <= t.liquidation : px >= t.liquidation) this.settle(t, t.liquidation, 'liquidation', -t.margin)
      else if (t.stoploss > 0 && (long ? px <= t.stoploss : px >= t.stoploss)) this.settle(t, px, 'stoploss')
      else if (t.takeprofit > 0 && (long ? px >= t.takeprofit : px <= t.takeprofit)) this.settle(t, px, 'takeprofit')
    }
    this.cross.onPrice()
    if (this.now() >= this.nextFunding) this.settleFunding()
  }

  /** funding at the fixing: fee = quantity / index × rate × 1e8, longs pay when the rate is positive */
  settleFunding(): FundingSettlement {
    const time = this.nextFunding <= this.now() ? this.nextFunding : this.now()
    this.nextFunding = nextFundingTime(this.now())
    const s: FundingSettlement = { id: randomUUID(), time, fundingRate: this.market.fundingRate, fixingPrice: this.market.index() }
    this.settlements.push(s)
    for (const t of this.trades.values()) {
      if (!t.running) continue
      const paid = Math.round((t.quantity / s.fixingPrice) * s.fundingRate * SATS) * (t.side === 'buy' ? 1 : -1)
      t.margin -= paid
      t.sumFundingFees += paid
      this.fundingFees.push({ fee: paid, settlementId: s.id, time, tradeId: t.id, owner: t.owner })
      if (t.margin <= 0) {
        t.margin = 0
        this.settle(t, this.exitQuote(t), 'liquidation', 0)
        continue
      }
      this.recompute(t)
      this.emit(t.owner, 'funding', t, { fundingFee: paid, fundedAt: time })
    }
    this.cross.settleFunding(s)
    return s
  }

  nextFundingTime(): number {
    return this.nextFunding
  }
}
