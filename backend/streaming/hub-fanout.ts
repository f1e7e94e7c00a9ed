/**
 * Hub part 3 of 4: fan-out and slow consumers, and every frame written to a socket.
 *
 * A bus event changes the cache; the data_update is serialized and framed once (header + payload, one
 * Buffer) and that same Buffer is written to every subscriber through its FrameWriter (frame-writer.ts:
 * written as ws's Sender writes a ready frame, one write in flight, frames queued meanwhile written together).
 * The loop costs one writer call per socket; the writer reads the buffered bytes only while a write of
 * ours is in flight (otherwise the kernel has taken everything). A socket whose buffered bytes (ws's buffer
 * + its writer's queue) exceed the cap stops receiving frames: its pending channels are collapsed to a bit
 * mask and flushed from the cache (latest snapshot only) once it drains below half the cap; still above
 * the cap after `slowConsumerGraceMs`, it is closed with 4008.
 */
import { staleLimitOf } from '../schemas/channels.ts'
import type { Metrics } from '../metrics.ts'
import { ALL_CHANNELS, CHANNELS, CHANNEL_BITS, MARKET_CHANNEL_BITS, scopeOf, type Channel } from '../schemas/channels.ts'
import { CloseCode, type FreshFrame, type ServerFrame, type Source } from '../schemas/ws-protocol.ts'
import { TICKER_TOPIC, accountTopic, type StatusEvent } from './bus.ts'
import { dataUpdateFrame, type CachedSnapshot, type SnapshotCache } from './cache.ts'
import { FrameWriter, OVER_CAP, WRITTEN, frameText } from './frame-writer.ts'
import { State, type Conn } from './hub-conn.ts'

/** every frame goes through the socket's FrameWriter (pre-framed, one write in flight: frame-writer.ts) */
const writerOf = (c: Conn): FrameWriter => (c.out ??= new FrameWriter(c.ws))
/** bytes owed to a socket: ws's buffer plus the frames its writer holds */
export const buffered = (c: Conn): number => (c.out ? c.out.buffered() : c.ws.bufferedAmount)

/** statuses owed to a collapsed socket: their own mask (`Conn.pendingStatus`), apart from the channel bits */
export const STATUS_BITS = { account: 1, ticker: 2 } as const

export const NO_CREDENTIALS: ServerFrame = {
  type: 'error',
  code: 'no_credentials',
  message: 'no exchange credentials stored: only the ticker is streamed (PUT /api/credentials to add them)',
}

export function statusFrame(s: StatusEvent): ServerFrame {
  return { type: 'status', upstream: s.upstream, lastSuccessTs: s.lastSuccessTs, reason: s.reason, scope: s.scope }
}

export interface FanoutOptions {
  cache: SnapshotCache
  metrics: Metrics
  source: Source
  staleAfterMs: number
  maxBufferedBytes: number
  slowConsumerGraceMs: number
  now: () => number
  /** close a socket (slow consumer) */
  close: (c: Conn, code: number, reason: string) => void
}

export class Fanout {
  /** collapsed sockets */
  readonly slow = new Set<Conn>()
  private readonly m: {
    dataFrames: { inc(v: number): void }
    dataBytes: { inc(v: number): void }
  }

  constructor(private readonly o: FanoutOptions) {
    this.m = {
      dataFrames: o.metrics.framesSent.labels('data_update'),
      dataBytes: o.metrics.bytesSent.labels('data_update'),
    }
  }

  /**
   * Unchanged data re-confirmed by a poll: tell the pages how recent it is (one small frame, at most every
   * STALE_AFTER_MS/4), so an unchanged balance is not shown as ageing. Returns the new last-sent time.
   */
  broadcastFresh(conns: Set<Conn>, topic: string, channels: Channel[], lastSent: number): number {
    const now = this.o.now()
    if (conns.size === 0 || now - lastSent < this.o.staleAfterMs / 4) return lastSent
    const list: FreshFrame['channels'] = []
    for (const ch of channels) {
      const entry = this.o.cache.get(topic, ch)
      if (entry && now - entry.sourceTs <= staleLimitOf(ch, this.o.staleAfterMs))
        list.push({ channel: ch, epoch: entry.epoch, seq: entry.seq, sourceTs: entry.sourceTs })
    }
    if (list.length === 0) return lastSent
    const frame: FreshFrame = { type: 'fresh', ts: now, channels: list }
    const payload = Buffer.from(JSON.stringify(frame))
    const framed = frameText(payload)
    let n = 0
    for (const c of conns) {
      // a slow socket catches up with full snapshots anyway
      if (c.state !== State.OPEN || c.slowSince !== 0) continue
      writerOf(c).write(framed)
      n++
    }
    if (n > 0) {
      this.o.metrics.framesSent.inc({ type: 'fresh' }, n)
      this.o.metrics.bytesSent.inc({ type: 'fresh' }, n * payload.length)
    }
    return now
  }

  /** serialize and frame once, write the same Buffer to every subscriber that keeps up */
  broadcast(conns: Set<Conn>, entry: CachedSnapshot): void {
    if (conns.size === 0) return
    const now = this.o.now()
    if (now - entry.sourceTs > staleLimitOf(entry.channel, this.o.staleAfterMs)) {
      this.o.metrics.staleWithheld.inc({ channel: entry.channel })
      return
    }
    const t0 = process.hrtime.bigint()
    const buf = Buffer.from(dataUpdateFrame(entry, now, this.o.source))
    const framed = frameText(buf)
    const bit = CHANNEL_BITS[entry.channel]
    const cap = this.o.maxBufferedBytes
    let n = 0
    for (const c of conns) {
      if (c.state !== State.OPEN || !(c.channels & bit)) continue
      if (c.slowSince !== 0) {
        c.pendingMask |= bit
        continue
      }
      // one call per socket: the writer checks the cap only when a write of ours is in flight
      const r = writerOf(c).write(framed, cap)
      if (r === WRITTEN) n++
      else if (r === OVER_CAP) this.collapse(c, now, bit)
    }
    if (n > 0) {
      this.m.dataFrames.inc(n)
      this.m.dataBytes.inc(n * buf.length)
    }
    this.o.metrics.fanoutDuration.observe(Number(process.hrtime.bigint() - t0) / 1e9)
  }

  broadcastStatus(conns: Set<Conn>, s: StatusEvent, pendingBit: number): void {
    if (conns.size === 0) return
    const frame = s.hasCredentials === false ? NO_CREDENTIALS : statusFrame(s)
    const buf = Buffer.from(JSON.stringify(frame))
    const framed = frameText(buf)
    let n = 0
    for (const c of conns) {
      if (c.state !== State.OPEN) continue
      if (c.slowSince !== 0) {
        c.pendingStatus |= pendingBit
        continue
      }
      writerOf(c).write(framed)
      n++
    }
    if (n > 0) {
      this.o.metrics.framesSent.inc({ type: frame.type }, n)
      this.o.metrics.bytesSent.inc({ type: frame.type }, n * buf.length)
    }
  }

  private collapse(c: Conn, now: number, bits: number): void {
    c.slowSince = now
    c.pendingMask |= bits
    this.slow.add(c)
    this.o.metrics.slowConsumerCollapsed.inc()
  }

  /** the latest cached snapshot of each channel in `bits`, never a stale one */
  sendSnapshots(c: Conn, bits: number): void {
    if (!c.userId) return
    const now = this.o.now()
    const accTopic = accountTopic(c.userId)
    for (const ch of CHANNELS) {
      const bit = CHANNEL_BITS[ch]
      if (!(bits & bit)) continue
      const entry = this.o.cache.get(scopeOf(ch) === 'market' ? TICKER_TOPIC : accTopic, ch)
      if (!entry) {
        this.o.metrics.cacheMisses.inc({ cache: 'snapshot' })
        continue
      }
      this.o.metrics.cacheHits.inc({ cache: 'snapshot' })
      if (now - entry.sourceTs > staleLimitOf(ch, this.o.staleAfterMs)) {
        this.o.metrics.staleWithheld.inc({ channel: ch })
        continue
      }
      if (c.slowSince !== 0 || buffered(c) > this.o.maxBufferedBytes) {
        if (c.slowSince === 0) this.collapse(c, now, bit)
        else c.pendingMask |= bit
        continue
      }
      const payload = Buffer.from(dataUpdateFrame(entry, now, this.o.source))
      writerOf(c).write(frameText(payload))
      this.m.dataFrames.inc(1)
      this.m.dataBytes.inc(payload.length)
    }
  }

  /** on connect: every status that is not plainly ok, and the no-credentials notice */
  sendStatuses(c: Conn, onConnect: boolean): void {
    if (!c.userId) return
    const acc = this.o.cache.status(accountTopic(c.userId))
    if (acc && acc.hasCredentials === false) {
      if (onConnect) this.sendFrame(c, NO_CREDENTIALS)
    } else if (acc && (acc.upstream !== 'ok' || !onConnect)) {
      this.sendFrame(c, statusFrame(acc))
    }
    const tick = this.o.cache.status(TICKER_TOPIC)
    if (tick && c.channels & MARKET_CHANNEL_BITS && (tick.upstream !== 'ok' || !onConnect)) this.sendFrame(c, statusFrame(tick))
  }

  /**
   * A collapsed socket: drained below half the cap → catch up with the latest snapshot of each owed
   * channel and status, back to live frames; still above the cap after the grace period → 4008.
   */
  checkSlow(c: Conn, now: number): void {
    const bytes = buffered(c)
    if (bytes <= this.o.maxBufferedBytes / 2) {
      const owed = c.pendingMask
      const owedStatus = c.pendingStatus
      c.slowSince = 0
      c.pendingMask = 0
      c.pendingStatus = 0
      this.slow.delete(c)
      this.sendSnapshots(c, owed & ALL_CHANNELS)
      if (owedStatus & STATUS_BITS.account && c.userId) {
        const s = this.o.cache.status(accountTopic(c.userId))
        if (s) this.sendFrame(c, s.hasCredentials === false ? NO_CREDENTIALS : statusFrame(s))
      }
      if (owedStatus & STATUS_BITS.ticker) {
        const s = this.o.cache.status(TICKER_TOPIC)
        if (s) this.sendFrame(c, statusFrame(s))
      }
      return
    }
    if (bytes > this.o.maxBufferedBytes && now - c.slowSince >= this.o.slowConsumerGraceMs) this.slowConsumer(c)
  }

  // ------------------------------------------------------------------ per-socket frames

  sendFrame(c: Conn, frame: ServerFrame): void {
    if (c.state >= State.CLOSING) return
    const ws = c.ws
    if (ws.readyState !== 1) return
    // control frames are tiny, but a socket that lets them pile up far past the cap is not reading at all
    if (buffered(c) > this.o.maxBufferedBytes * 2) return this.slowConsumer(c)
    const payload = Buffer.from(JSON.stringify(frame))
    writerOf(c).write(frameText(payload))
    this.o.metrics.framesSent.inc({ type: frame.type })
    this.o.metrics.bytesSent.inc({ type: frame.type }, payload.length)
  }

  ack(c: Conn, requestId: string, status: 'ok' | 'error', message?: string, data?: unknown): void {
    const frame: ServerFrame = { type: 'ack', request_id: requestId, status }
    if (message !== undefined) frame.message = message
    if (data !== undefined) frame.data = data
    this.sendFrame(c, frame)
  }

  sendError(c: Conn, code: string, message: string, requestId?: string): void {
    const frame: ServerFrame = { type: 'error', code, message }
    if (requestId !== undefined) frame.request_id = requestId
    this.sendFrame(c, frame)
  }

  private slowConsumer(c: Conn): void {
    this.o.metrics.slowConsumerDrops.inc()
    this.o.close(c, CloseCode.SLOW_CONSUMER, 'slow consumer')
  }
}
