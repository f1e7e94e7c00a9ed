/**
 * The node-local snapshot cache: per topic (`account:<userId>` or `ticker`) and channel, the latest snapshot
 * (already serialized JSON) with epoch, seq and sourceTs, plus the topic's latest upstream status.
 * Filled only from bus events; read by the hub (connect, refresh_data, collapse flush) and /api/dashboard.
 */
import { CHANNELS, CHANNEL_INDEX, type Channel } from '../schemas/channels.ts'
import type { StatusEvent, UpstreamEvent } from './bus.ts'

export { CHANNEL_INDEX }
export const CHANNEL_BY_INDEX: readonly Channel[] = CHANNELS
const emptySlots = (): Array<CachedSnapshot | undefined> => Array.from({ length: CHANNELS.length }, () => undefined)

export interface CachedSnapshot {
  readonly channel: Channel
  readonly epoch: number
  readonly seq: number
  /** when the exchange data was last known true (advanced by `fresh` events) */
  sourceTs: number
  /** JSON.stringify(data), produced once upstream */
  readonly json: string
}

interface TopicState {
  entries: Array<CachedSnapshot | undefined>
  /** the highest epoch accepted on this topic (any channel): the fence, kept across a `reset` */
  floor: number
  status: StatusEvent | null
  waiters: Array<() => void> | null
}

export type ApplyResult =
  | { kind: 'snapshot'; entry: CachedSnapshot }
  | { kind: 'status'; status: StatusEvent; changed: boolean }
  | { kind: 'fresh' }
  | { kind: 'reset' }
  | null

/**
 * The acceptance rule (fencing). An epoch is the generation of the producer run that made the snapshot (with
 * Redis: the lease generation, which only grows); seq orders the snapshots of one run. A snapshot replaces the
 * cached one only when it comes from the topic's current or a newer generation (`epoch >= floor`) and is newer
 * than what is cached: a newer epoch, or the same epoch with a higher seq. So a replay, a reordered message or
 * a burst from a fenced-off producer (an older generation) never overwrites newer data.
 */
export function acceptsSnapshot(
  cur: { epoch: number; seq: number } | undefined,
  floor: number,
  e: { epoch: number; seq: number },
): boolean {
  if (e.epoch < floor) return false
  if (!cur) return true
  return e.epoch > cur.epoch || (e.epoch === cur.epoch && e.seq > cur.seq)
}

export class SnapshotCache {
  private readonly topics = new Map<string, TopicState>()

  private state(topic: string): TopicState {
    let s = this.topics.get(topic)
    if (!s) this.topics.set(topic, (s = { entries: emptySlots(), floor: 0, status: null, waiters: null }))
    return s
  }

  /** apply one upstream event; returns what changed (null: a duplicate or out-of-date event) */
  apply(topic: string, e: UpstreamEvent): ApplyResult {
    const s = this.state(topic)
    let result: ApplyResult = null
    switch (e.kind) {
      case 'snapshot': {
        const i = CHANNEL_INDEX[e.channel]
        const cur = s.entries[i]
        if (!acceptsSnapshot(cur, s.floor, e)) {
          if (cur && e.epoch === cur.epoch && e.seq === cur.seq && e.sourceTs > cur.sourceTs) cur.sourceTs = e.sourceTs
          break
        }
        const entry: CachedSnapshot = { channel: e.channel, epoch: e.epoch, seq: e.seq, sourceTs: e.sourceTs, json: e.json }
        s.entries[i] = entry
        if (e.epoch > s.floor) s.floor = e.epoch
        result = { kind: 'snapshot', entry }
        break
      }
      case 'fresh':
        for (const ch of e.channels) {
          const cur = s.entries[CHANNEL_INDEX[ch]]
          if (cur && cur.epoch === e.epoch && e.sourceTs > cur.sourceTs) cur.sourceTs = e.sourceTs
        }
        result = { kind: 'fresh' }
        break
      case 'status': {
        const p = s.status
        const changed = !p || p.upstream !== e.upstream || p.reason !== e.reason || p.hasCredentials !== e.hasCredentials
        s.status = e
        result = { kind: 'status', status: e, changed }
        break
      }
      case 'reset':
        // the data is void, the fence is not: an older generation's straggler must not refill the cache
        s.entries = emptySlots()
        result = { kind: 'reset' }
        break
    }
    if (s.waiters && (s.status || s.entries.some(Boolean))) {
      const w = s.waiters
      s.waiters = null
      for (const fn of w) fn()
    }
    return result
  }

  get(topic: string, channel: Channel): CachedSnapshot | undefined {
    return this.topics.get(topic)?.entries[CHANNEL_INDEX[channel]]
  }

  status(topic: string): StatusEvent | null {
    return this.topics.get(topic)?.status ?? null
  }

  has(topic: string): boolean {
    const s = this.topics.get(topic)
    return !!s && (s.status !== null || s.entries.some(Boolean))
  }

  /** resolves when the topic holds a snapshot or a status, or after timeoutMs (whichever first) */
  whenReady(topic: string, timeoutMs: number): Promise<void> {
    if (this.has(topic) || timeoutMs <= 0) return Promise.resolve()
    const s = this.state(topic)
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      ;(s.waiters ??= []).push(done)
    })
  }

  drop(topic: string): void {
    const s = this.topics.get(topic)
    if (!s) return
    if (s.waiters) for (const fn of s.waiters) fn()
    this.topics.delete(topic)
  }

  get size(): number {
    return this.topics.size
  }
}

/**
 * The one data_update serialization: an envelope around the producer's JSON. Called once per update for a
 * broadcast (the resulting Buffer is written to every subscriber), and once per socket only for the
 * initial/refresh snapshots, whose `ts` must be the time they are sent.
 */
export function dataUpdateFrame(e: CachedSnapshot, ts: number, source: string): string {
  return `{"type":"data_update","channel":"${e.channel}","epoch":${e.epoch},"seq":${e.seq},"sourceTs":${e.sourceTs},"ts":${ts},"source":"${source}","data":${e.json}}`
}
