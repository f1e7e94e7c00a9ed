/**
 * The market ticker, shared by every user: LN Markets Stream v1 while it is up (lastPrice, index, funding
 * as they happen), REST every TICKER_INTERVAL_MS for bid/ask and as the fallback when the stream is down.
 * Runs only while the hub watches 'ticker'. Publishes on the `ticker` topic like any poller.
 */
import type { TickerSnapshot, UpstreamState } from '../schemas/ws-protocol.ts'
import { CONTROL_TOPIC, TICKER_TOPIC, type Bus, type BusEvent, type StatusEvent } from './bus.ts'
import { classify, nextEpoch, reasonOf, silentLog, type Log, type StreamTick, type TickerSource, type TickerStream } from './sources.ts'

/** budget of the REST probe made when the stream drops (covers a wait for the 1/s public throttle) */
const PROBE_DEADLINE_MS = 1500

export interface TickerFeedOptions {
  bus: Bus
  source: TickerSource
  stream?: TickerStream | null
  intervalMs: number
  maxBackoffFactor?: number
  metrics?: { pollsTotal: { inc(labels: { outcome: string }): void } }
  log?: Log
  now?: () => number
}

export class TickerFeed {
  private readonly o: Required<Omit<TickerFeedOptions, 'metrics' | 'stream'>> & Pick<TickerFeedOptions, 'metrics' | 'stream'>
  private watching = false
  private epoch = 0
  private seq = 0
  private lastJson: string | null = null
  private lastTs = 0
  /** the latest full ticker from REST, the base the stream's partial updates are merged into */
  private base: TickerSnapshot | null = null
  private timer: NodeJS.Timeout | null = null
  private controller: AbortController | null = null
  private failures = 0
  private lastSuccessTs: number | null = null
  private status: StatusEvent | null = null
  private unsubscribe: (() => void) | null = null

  constructor(opts: TickerFeedOptions) {
    this.o = { maxBackoffFactor: 8, log: silentLog, now: Date.now, ...opts }
    this.onTick = this.onTick.bind(this)
    this.onStreamChange = this.onStreamChange.bind(this)
    this.pollRest = this.pollRest.bind(this)
  }

  start(): void {
    if (this.unsubscribe) return
    this.unsubscribe = this.o.bus.subscribe(CONTROL_TOPIC, (e) => this.onControl(e))
    this.o.stream?.on('ticker', this.onTick)
    this.o.stream?.on('up', this.onStreamChange)
    this.o.stream?.on('down', this.onStreamChange)
  }

  async stop(): Promise<void> {
    this.unsubscribe?.()
    this.unsubscribe = null
    this.o.stream?.off('ticker', this.onTick)
    this.o.stream?.off('up', this.onStreamChange)
    this.o.stream?.off('down', this.onStreamChange)
    this.halt()
  }

  get isWatching(): boolean {
    return this.watching
  }

  private onControl(e: BusEvent): void {
    if (e.kind !== 'watch' && e.kind !== 'unwatch' && e.kind !== 'refresh') return
    if (e.key !== 'ticker') return
    if (e.kind === 'watch') {
      if (this.watching) {
        // a lease generation above our epoch (fencing): publish under it from now on — the next tick or REST
        // answer, as a new version: our last ticker is not replayed under it (another node may have published a
        // newer one meanwhile; a higher epoch with older data would take clients back in time)
        if (e.epoch !== undefined && e.epoch > this.epoch) {
          this.epoch = e.epoch
          this.lastJson = null
          if (this.status) this.o.bus.publish(TICKER_TOPIC, this.status)
          return
        }
        return this.replay()
      }
      this.watching = true
      this.epoch = e.epoch ?? nextEpoch()
      this.seq = 0
      this.lastJson = null
      this.status = null
      void this.pollRest()
    } else if (e.kind === 'unwatch') {
      this.halt()
    }
  }

  private halt(): void {
    this.watching = false
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.controller?.abort()
    this.controller = null
  }

  private replay(): void {
    if (this.lastJson !== null)
      this.o.bus.publish(TICKER_TOPIC, {
        kind: 'snapshot',
        channel: 'ticker',
        epoch: this.epoch,
        seq: this.seq,
        sourceTs: this.lastTs,
        json: this.lastJson,
      })
    if (this.status) this.o.bus.publish(TICKER_TOPIC, this.status)
  }

  private schedule(): void {
    if (!this.watching) return
    if (this.timer) clearTimeout(this.timer)
    const f = this.failures > 0 ? Math.min(2 ** (this.failures - 1), this.o.maxBackoffFactor) : 1
    const delay = this.o.intervalMs * f
    // pollRest settles every outcome itself (status, metrics, the next schedule); nothing to catch here
    this.timer = setTimeout(() => void this.pollRest(), delay)
    this.timer.unref()
  }

  private async pollRest(probe = false): Promise<void> {
    this.timer = null
    if (!this.watching || this.controller) return this.schedule()
    const controller = new AbortController()
    this.controller = controller
    // a probe (the stream just dropped) gets a short budget: is the whole exchange gone, or only the stream?
    const deadlineMs = probe ? PROBE_DEADLINE_MS : Math.max(200, Math.round(this.o.intervalMs * 0.9))
    try {
      const { data, ts } = await this.o.source.fetchTicker({ signal: controller.signal, deadlineMs })
      if (this.controller !== controller) return
      this.failures = 0
      this.base = data
      this.lastSuccessTs = this.o.now()
      this.o.metrics?.pollsTotal.inc({ outcome: 'ticker_ok' })
      this.emit(data, ts)
      this.setStatus('ok', this.o.stream && !this.o.stream.isUp ? 'rest_fallback' : 'ok')
    } catch (err) {
      if (this.controller !== controller) return
      this.failures++
      this.o.metrics?.pollsTotal.inc({ outcome: 'ticker_failed' })
      const f = classify(err)
      // with the stream up only bid/ask age; without it the ticker is dead
      this.setStatus(this.o.stream?.isUp ? 'degraded' : 'down', reasonOf(f))
    } finally {
      if (this.controller === controller) {
        this.controller = null
        this.schedule()
      }
    }
  }

  private onTick(t: StreamTick): void {
    if (!this.watching || !this.base) return
    const merged: TickerSnapshot = {
      ...this.base,
      index: t.index ?? this.base.index,
      lastPrice: t.lastPrice ?? this.base.lastPrice,
      fundingRate: t.fundingRate ?? this.base.fundingRate,
      fundingTime: t.fundingTime ?? this.base.fundingTime,
    }
    this.base = merged
    this.lastSuccessTs = this.o.now()
    this.emit(merged, t.time > 0 ? Math.min(t.time, this.o.now()) : this.o.now())
    if (this.failures === 0 && this.status?.upstream !== 'ok') this.setStatus('ok', 'ok')
  }

  /** the exchange answers again after an outage (the client's breaker closed): a backed-off REST poll goes now */
  recover(): void {
    if (!this.watching || this.failures === 0 || this.controller) return
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    void this.pollRest()
  }

  private onStreamChange(): void {
    if (!this.watching) return
    // stream lost: poll REST at once instead of waiting for a backed-off timer
    if (!this.o.stream?.isUp) {
      if (this.timer) clearTimeout(this.timer)
      void this.pollRest(true)
    }
  }

  private emit(data: TickerSnapshot, ts: number): void {
    const json = JSON.stringify(data)
    if (ts < this.lastTs) ts = this.lastTs
    this.lastTs = ts
    if (json === this.lastJson) {
      this.o.bus.publish(TICKER_TOPIC, { kind: 'fresh', channels: ['ticker'], epoch: this.epoch, sourceTs: ts })
      return
    }
    this.lastJson = json
    this.seq++
    this.o.bus.publish(TICKER_TOPIC, { kind: 'snapshot', channel: 'ticker', epoch: this.epoch, seq: this.seq, sourceTs: ts, json })
  }

  private setStatus(upstream: UpstreamState, reason: string): void {
    const p = this.status
    if (p && p.upstream === upstream && p.reason === reason) return
    this.status = { kind: 'status', scope: 'ticker', upstream, lastSuccessTs: this.lastSuccessTs, reason }
    this.o.bus.publish(TICKER_TOPIC, this.status)
  }
}
