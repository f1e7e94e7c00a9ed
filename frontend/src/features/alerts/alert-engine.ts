/**
 * The alert engine: fed the realtime client's state (connection, exchange status, channel snapshots) and the
 * trader's settings, it says which alerts to raise. Pure (no DOM, no timers, the clock is passed in), so every
 * rule is unit-tested (frontend/test/alert-engine.test.ts); lib/… and the React hook only deliver what it emits.
 *
 * Rules:
 * - live connection lost: the socket was LIVE and has not been for `lossGraceMs` (a reconnect within the grace,
 *   the common blip, raises nothing). SILENT counts at once: the client only calls a socket silent after its own
 *   grace (an unanswered ping). Restored: LIVE again after a loss was raised.
 * - exchange down: a status (WebSocket status frame, or the HTTP fallback's meta) says some part of the exchange is
 *   `down`; recovered when no part is down any more. `degraded` (slow, rate-limited) raises nothing.
 * - price levels: the last price crossing a level, once per crossing. A level only fires after the price was seen
 *   on the near side of it; after firing it re-arms once the price went back past the level by `hysteresisPct`,
 *   so a price wobbling around the level does not fire again and again.
 * - fills: an isolated order id moving from `positions.open` to `positions.running`; a new id in the history's
 *   filled cross orders.
 * - closes: a running trade leaving `positions.running`. The reason and the realised P&L come from the history's
 *   closed trade (liquidation, stop-loss, take-profit or a close); when the history does not show it within
 *   `closeWaitMs`, the close is raised with the last P&L the positions showed, its reason judged from the last price. A closed trade appearing in the
 *   history that was never seen running is raised too. What was already there at the first snapshot never is.
 */
import type { FuturesTrade, UpstreamState } from '../../../../backend/schemas/ws-protocol.ts'
import type { Transport } from '../../lib/realtime-client.ts'

export type AlertKind =
  | 'connection_lost'
  | 'connection_restored'
  | 'exchange_down'
  | 'exchange_recovered'
  | 'price_level'
  | 'fill'
  | 'close'
  | 'stoploss'
  | 'takeprofit'
  | 'liquidation'

export interface AlertEvent {
  /** unique per event (dedupe key + React key) */
  id: string
  kind: AlertKind
  title: string
  body: string
  /** client ms */
  at: number
  /** assertive: liquidation and connection loss interrupt a screen reader; the rest are polite */
  urgency: 'assertive' | 'polite'
  /** for price_level: the level that fired (the page marks it triggered and saves it) */
  levelId?: string
  tradeId?: string
}

export interface PriceLevel {
  id: string
  price: number
  direction: 'above' | 'below'
  note?: string
  triggeredAt?: string | null
}

export interface AlertNotify {
  connectionLoss: boolean
  exchangeDown: boolean
  fills: boolean
  closes: boolean
  liquidations: boolean
}

export interface EngineSettings {
  notify: AlertNotify
  priceLevels: readonly PriceLevel[]
}

type Trade = Pick<
  FuturesTrade,
  | 'id'
  | 'side'
  | 'quantity'
  | 'leverage'
  | 'price'
  | 'entryPrice'
  | 'exitPrice'
  | 'liquidation'
  | 'stoploss'
  | 'takeprofit'
  | 'pl'
  | 'margin'
  | 'closed'
  | 'canceled'
>

export interface EngineInput {
  transport: Transport
  upstream: Readonly<Record<string, { state: UpstreamState; reason: string | null }>>
  /** the last price (ticker), undefined until known */
  price?: number | undefined
  positions?: { running: readonly Trade[]; open: readonly Trade[] } | undefined
  /** the history channel's closed isolated trades and filled cross orders */
  history?: { closed: readonly Trade[]; crossFilled: readonly { id: string; side: string; quantity: number; price: number }[] } | undefined
}

export interface EngineOptions {
  /** how long the socket may be down before "connection lost" is raised (default 2 s: the client's silence grace) */
  lossGraceMs?: number
  /** % of the level price the last price must move back before a fired level re-arms */
  hysteresisPct?: number
  /** how long a close waits for the history to say why and for how much */
  closeWaitMs?: number
}

const usd = (v: number) => `$${v.toLocaleString('en-US', { maximumFractionDigits: 2 })}`
const px = (v: number) => v.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })
const sats = (v: number) => `${v > 0 ? '+' : v < 0 ? '−' : ''}${Math.abs(Math.round(v)).toLocaleString('en-US')} sats`
const sideWord = (s: string) => (s === 'buy' || s === 'long' || s === 'b' ? 'Long' : 'Short')
const isLong = (s: string) => s === 'buy' || s === 'long' || s === 'b'

/** why a closed trade closed, from what the exchange recorded on it */
export function closeReason(t: Trade): 'liquidation' | 'stoploss' | 'takeprofit' | 'close' {
  const exit = t.exitPrice
  if (exit === null) return 'close'
  const long = isLong(t.side)
  const tick = Math.max(0.5, t.liquidation * 0.0005)
  // a liquidated trade exits at its liquidation price (a live one never trades beyond it) and loses its margin
  if ((long ? exit <= t.liquidation + tick : exit >= t.liquidation - tick) || (t.margin > 0 && t.pl <= -t.margin)) return 'liquidation'
  if (t.stoploss > 0 && (long ? exit <= t.stoploss : exit >= t.stoploss)) return 'stoploss'
  if (t.takeprofit > 0 && (long ? exit >= t.takeprofit : exit <= t.takeprofit)) return 'takeprofit'
  return 'close'
}

type LevelState = 'unknown' | 'armed' | 'fired'

export class AlertEngine {
  private readonly lossGraceMs: number
  private readonly hysteresis: number
  private readonly closeWaitMs: number
  private settings: EngineSettings = {
    notify: { connectionLoss: true, exchangeDown: true, fills: true, closes: true, liquidations: true },
    priceLevels: [],
  }

  private everLive = false
  private leftLiveAt: number | null = null
  private lossRaised = false
  /** the loss was raised while its switch was on: only then is "restored" worth saying */
  private lossShown = false
  private downRaised = false
  private readonly levels = new Map<string, LevelState>()
  private running: Map<string, Trade> | null = null
  private open: Set<string> | null = null
  private historySeen: Set<string> | null = null
  private crossSeen: Set<string> | null = null
  private readonly pendingCloses = new Map<string, { trade: Trade; since: number }>()
  private readonly raisedTrades = new Set<string>()
  private seq = 0
  private lastPrice: number | null = null

  constructor(opts: EngineOptions = {}) {
    this.lossGraceMs = opts.lossGraceMs ?? 2_000
    this.hysteresis = (opts.hysteresisPct ?? 0.1) / 100
    this.closeWaitMs = opts.closeWaitMs ?? 15_000
  }

  setSettings(settings: EngineSettings): void {
    this.settings = settings
    // a level whose price or direction changed is a new level: it must see the price on its near side again
    const keys = new Set(settings.priceLevels.map(levelKey))
    for (const k of this.levels.keys()) if (!keys.has(k)) this.levels.delete(k)
    // a new level is judged against the price the trader saw when setting it, not the next one (which may
    // already be past it: the crossing would then be missed)
    if (this.lastPrice !== null)
      for (const l of settings.priceLevels)
        if (!this.levels.has(levelKey(l))) this.levels.set(levelKey(l), isBeyond(l, this.lastPrice) ? 'fired' : 'armed')
  }

  /** the alerts the new state raises (in order); call on every state change and about once a second */
  update(input: EngineInput, now: number): AlertEvent[] {
    const out: AlertEvent[] = []
    this.connection(input.transport, now, out)
    this.exchange(input.upstream, now, out)
    if (input.price !== undefined && input.price > 0) {
      this.lastPrice = input.price
      this.priceLevels(input.price, now, out)
    }
    this.trades(input, now, out)
    return out
  }

  private emit(out: AlertEvent[], e: Omit<AlertEvent, 'id' | 'at'>, now: number, gate: boolean): void {
    if (!gate) return
    out.push({ ...e, id: `${e.kind}-${now}-${++this.seq}`, at: now })
  }

  private connection(transport: Transport, now: number, out: AlertEvent[]): void {
    const notify = this.settings.notify.connectionLoss
    if (transport === 'live') {
      if (this.lossShown)
        this.emit(
          out,
          {
            kind: 'connection_restored',
            title: 'Live connection restored',
            body: 'Prices and positions are pushed live again.',
            urgency: 'polite',
          },
          now,
          notify,
        )
      this.everLive = true
      this.leftLiveAt = null
      this.lossRaised = false
      this.lossShown = false
      return
    }
    // before the first LIVE (page opening) and after stop() (sign-out) there is nothing to lose
    if (!this.everLive || transport === 'stopped' || transport === 'connecting') return
    this.leftLiveAt ??= now
    if (this.lossRaised) return
    if (transport === 'silent' || now - this.leftLiveAt >= this.lossGraceMs) {
      this.lossRaised = true
      this.lossShown = notify
      const body =
        transport === 'silent'
          ? 'The live connection is open but nothing arrives on it. Values are fetched over HTTP meanwhile; they may be late.'
          : transport === 'offline'
            ? 'The gateway cannot be reached. The values shown are the last ones received and are not updating.'
            : 'Reconnecting. Values are fetched over HTTP meanwhile; each panel shows how old its numbers are.'
      this.emit(out, { kind: 'connection_lost', title: 'Live connection lost', body, urgency: 'assertive' }, now, notify)
    }
  }

  private exchange(upstream: EngineInput['upstream'], now: number, out: AlertEvent[]): void {
    const notify = this.settings.notify.exchangeDown
    const down = Object.entries(upstream).filter(([, u]) => u.state === 'down')
    if (down.length && !this.downRaised) {
      this.downRaised = true
      const parts = down.map(([scope]) =>
        scope === 'ticker' ? 'market prices' : scope === 'account' ? 'account and positions' : 'everything',
      )
      this.emit(
        out,
        {
          kind: 'exchange_down',
          title: 'LN Markets is down',
          body: `The exchange is not answering (${[...new Set(parts)].join(', ')}). The values shown are the last ones received.`,
          urgency: 'assertive',
        },
        now,
        notify,
      )
    } else if (!down.length && this.downRaised) {
      this.downRaised = false
      this.emit(
        out,
        {
          kind: 'exchange_recovered',
          title: 'LN Markets is back',
          body: 'The exchange answers again; values are updating.',
          urgency: 'polite',
        },
        now,
        notify,
      )
    }
  }

  private priceLevels(price: number, now: number, out: AlertEvent[]): void {
    for (const level of this.settings.priceLevels) {
      const key = levelKey(level)
      const state = this.levels.get(key) ?? 'unknown'
      const beyond = isBeyond(level, price)
      const rearm =
        level.direction === 'above' ? price <= level.price * (1 - this.hysteresis) : price >= level.price * (1 + this.hysteresis)
      if (state === 'armed' && beyond) {
        this.levels.set(key, 'fired')
        this.emit(
          out,
          {
            kind: 'price_level',
            title: `Price ${level.direction} ${px(level.price)}`,
            body: `The last price ${px(price)} crossed ${level.direction === 'above' ? 'above' : 'below'} your level ${px(level.price)}${level.note ? ` (${level.note})` : ''}.`,
            urgency: 'polite',
            levelId: level.id,
          },
          now,
          true,
        )
      } else if (state === 'unknown') {
        // first sight: already beyond counts as fired (it waits for the price to come back), else armed
        this.levels.set(key, beyond ? 'fired' : 'armed')
      } else if (state === 'fired' && rearm) {
        this.levels.set(key, 'armed')
      }
    }
  }

  private trades(input: EngineInput, now: number, out: AlertEvent[]): void {
    const n = this.settings.notify
    const positions = input.positions
    const history = input.history
    if (positions) {
      const running = new Map(positions.running.map((t) => [t.id, t]))
      if (this.running && this.open) {
        for (const t of positions.running) {
          if (this.open.has(t.id) && !this.running.has(t.id)) {
            this.emit(
              out,
              {
                kind: 'fill',
                title: 'Order filled',
                body: `${sideWord(t.side)} ${usd(t.quantity)} at ${t.leverage}× filled at ${px(t.entryPrice ?? t.price)}.`,
                urgency: 'polite',
                tradeId: t.id,
              },
              now,
              n.fills,
            )
          }
        }
        for (const [id, t] of this.running)
          if (!running.has(id) && !this.raisedTrades.has(id)) this.pendingCloses.set(id, { trade: t, since: now })
      }
      this.running = running
      this.open = new Set(positions.open.map((t) => t.id))
    }
    if (history) {
      const closedById = new Map(history.closed.filter((t) => t.closed && !t.canceled).map((t) => [t.id, t]))
      for (const [id, pending] of this.pendingCloses) {
        const done = closedById.get(id)
        if (done) this.raiseClose(done, false, now, out)
        else if (now - pending.since >= this.closeWaitMs) this.raiseClose(pending.trade, true, now, out)
      }
      if (this.historySeen) {
        for (const [id, t] of closedById)
          if (!this.historySeen.has(id) && !this.raisedTrades.has(id) && !this.running?.has(id)) this.raiseClose(t, false, now, out)
      }
      this.historySeen = new Set(closedById.keys())
      if (this.crossSeen) {
        for (const o of history.crossFilled) {
          if (this.crossSeen.has(o.id)) continue
          this.emit(
            out,
            {
              kind: 'fill',
              title: 'Cross order filled',
              body: `Cross ${o.side === 'buy' ? 'buy' : 'sell'} ${usd(o.quantity)} filled at ${px(o.price)}.`,
              urgency: 'polite',
              tradeId: o.id,
            },
            now,
            n.fills,
          )
        }
      }
      this.crossSeen = new Set(history.crossFilled.map((o) => o.id))
    } else {
      // no history channel yet: closes still get raised once their wait is over
      for (const [, pending] of this.pendingCloses)
        if (now - pending.since >= this.closeWaitMs) this.raiseClose(pending.trade, true, now, out)
    }
  }

  private raiseClose(t: Trade, estimated: boolean, now: number, out: AlertEvent[]): void {
    this.pendingCloses.delete(t.id)
    if (this.raisedTrades.has(t.id)) return
    this.raisedTrades.add(t.id)
    const n = this.settings.notify
    const what = `${sideWord(t.side)} ${usd(t.quantity)} at ${t.leverage}×`
    const pl = estimated ? `P&L at the last update ${sats(t.pl)}` : `P&L ${sats(t.pl)}`
    const at = !estimated && t.exitPrice ? ` at ${px(t.exitPrice)}` : ''
    // without the history's record, the last price says which trigger the exchange most likely applied
    const reason = estimated ? (this.lastPrice === null ? 'close' : closeReason({ ...t, exitPrice: this.lastPrice })) : closeReason(t)
    if (reason === 'liquidation') {
      this.emit(
        out,
        {
          kind: 'liquidation',
          title: 'Position liquidated',
          body: `${what} was liquidated${at}. ${pl}.`,
          urgency: 'assertive',
          tradeId: t.id,
        },
        now,
        n.liquidations,
      )
    } else if (reason === 'stoploss') {
      this.emit(
        out,
        {
          kind: 'stoploss',
          title: 'Stop-loss hit',
          body: `${what} closed by its stop-loss${at}. ${pl}.`,
          urgency: 'polite',
          tradeId: t.id,
        },
        now,
        n.closes,
      )
    } else if (reason === 'takeprofit') {
      this.emit(
        out,
        {
          kind: 'takeprofit',
          title: 'Take-profit hit',
          body: `${what} closed by its take-profit${at}. ${pl}.`,
          urgency: 'polite',
          tradeId: t.id,
        },
        now,
        n.closes,
      )
    } else {
      this.emit(
        out,
        { kind: 'close', title: 'Position closed', body: `${what} closed${at}. ${pl}.`, urgency: 'polite', tradeId: t.id },
        now,
        n.closes,
      )
    }
  }
}

const levelKey = (l: PriceLevel): string => `${l.id}:${l.price}:${l.direction}`
const isBeyond = (l: PriceLevel, price: number): boolean => (l.direction === 'above' ? price >= l.price : price <= l.price)
