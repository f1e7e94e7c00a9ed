/**
 * The freshness watchdog: does every socket on this node get the data it watches? For each topic this node's
 * open sockets watch (an account with credentials, the ticker), a channel whose cached data is older than
 * STALE_AFTER_MS (or still missing once the topic has been watched that long) makes the topic **starved**.
 *
 * - `report()` (read by /health/ready at request time): `degraded` while any topic is starved, with the count
 *   by reason: `upstream_down` (the producer says the exchange fails: the data is honestly old), `no_data`
 *   (a channel never arrived), `stale` (the producer says all is well, yet nothing fresh reaches this node:
 *   lost messages, a fenced cache, a producer on another node that went quiet).
 * - every `checkEveryMs` it updates the `streaming_starved_topics` gauge, logs each topic that starts or stops
 *   starving (with why), and repairs what it can: it asks for a replay (a `watch` again: the producer, local
 *   or on the lease holder's node, republishes its latest state); a topic still starved after
 *   `resetAfterChecks` checks while the exchange answers has its cached data and its fence forgotten, so
 *   whatever the current producer publishes next is taken.
 */
import type { Channel } from '../schemas/ws-protocol.ts'
import { CONTROL_TOPIC, type Bus } from './bus.ts'
import type { SnapshotCache } from './cache.ts'
import { silentLog, type Log } from './sources.ts'

export interface WatchedTopic {
  /** the control key: a userId, or 'ticker' */
  key: string
  topic: string
  channels: Channel[]
}

export type StarvedReason = 'upstream_down' | 'no_data' | 'stale'
const REASONS: readonly StarvedReason[] = ['upstream_down', 'no_data', 'stale']

export interface StarvedTopic extends WatchedTopic {
  reason: StarvedReason
  /** the starved channels */
  stale: Channel[]
  /** age of the oldest starved channel's data (null: a channel has none) */
  ageMs: number | null
}

export interface FreshnessReport {
  status: 'ok' | 'degraded'
  /** topics (accounts, ticker) whose sockets on this node are starved */
  starved: number
  reasons: Record<StarvedReason, number>
}

export interface FreshnessWatchdogOptions {
  watched(): WatchedTopic[]
  cache: SnapshotCache
  bus: Bus
  staleAfterMs: number
  /** default staleAfterMs / 4 (at least 250 ms) */
  checkEveryMs?: number
  /** default 3 */
  resetAfterChecks?: number
  metrics?: {
    starvedTopics: { set(labels: { reason: string }, v: number): void }
    selfRepairs: { inc(labels: { action: string }): void }
  }
  log?: Log
  now?: () => number
}

export class FreshnessWatchdog {
  private readonly o: Required<Omit<FreshnessWatchdogOptions, 'metrics'>> & Pick<FreshnessWatchdogOptions, 'metrics'>
  /** topic → when this node's sockets started watching it (a new topic waits for its first poll) */
  private readonly since = new Map<string, number>()
  /** topic → consecutive checks found starved */
  private readonly strikes = new Map<string, number>()
  private timer: NodeJS.Timeout | null = null

  constructor(opts: FreshnessWatchdogOptions) {
    this.o = { checkEveryMs: Math.max(250, Math.floor(opts.staleAfterMs / 4)), resetAfterChecks: 3, log: silentLog, now: Date.now, ...opts }
  }

  start(): void {
    if (this.timer) return
    this.timer = setInterval(() => {
      try {
        this.tick()
      } catch (err) {
        this.o.log.error({ err }, 'freshness watchdog failed')
      }
    }, this.o.checkEveryMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** the starved topics now */
  check(now = this.o.now()): StarvedTopic[] {
    const out: StarvedTopic[] = []
    const seen = new Set<string>()
    for (const w of this.o.watched()) {
      seen.add(w.topic)
      let since = this.since.get(w.topic)
      if (since === undefined) this.since.set(w.topic, (since = now))
      if (now - since <= this.o.staleAfterMs) continue
      const stale: Channel[] = []
      let ageMs: number | null = 0
      for (const ch of w.channels) {
        const e = this.o.cache.get(w.topic, ch)
        const age = e ? now - e.sourceTs : null
        if (age !== null && age <= this.o.staleAfterMs) continue
        stale.push(ch)
        ageMs = age === null || ageMs === null ? null : Math.max(ageMs, age)
      }
      if (stale.length === 0) continue
      const status = this.o.cache.status(w.topic)
      const reason: StarvedReason = status && status.upstream !== 'ok' ? 'upstream_down' : ageMs === null ? 'no_data' : 'stale'
      out.push({ ...w, reason, stale, ageMs })
    }
    for (const topic of this.since.keys()) if (!seen.has(topic)) this.since.delete(topic)
    return out
  }

  report(now = this.o.now()): FreshnessReport {
    const starved = this.check(now)
    const reasons = { upstream_down: 0, no_data: 0, stale: 0 }
    for (const s of starved) reasons[s.reason]++
    return { status: starved.length ? 'degraded' : 'ok', starved: starved.length, reasons }
  }

  /** one periodic pass: metrics, logs, repairs */
  tick(): StarvedTopic[] {
    const starved = this.check()
    const counts = { upstream_down: 0, no_data: 0, stale: 0 }
    for (const s of starved) counts[s.reason]++
    for (const reason of REASONS) this.o.metrics?.starvedTopics.set({ reason }, counts[reason])
    const now = new Set(starved.map((s) => s.topic))
    for (const topic of [...this.strikes.keys()]) {
      if (now.has(topic)) continue
      this.strikes.delete(topic)
      this.o.log.info({ topic }, 'freshness watchdog: fresh data reaches the sockets again')
    }
    for (const s of starved) {
      const n = (this.strikes.get(s.topic) ?? 0) + 1
      this.strikes.set(s.topic, n)
      if (n === 1) {
        this.o.log.warn(
          { topic: s.topic, channels: s.stale, reason: s.reason, ageMs: s.ageMs, staleAfterMs: this.o.staleAfterMs },
          `freshness watchdog: sockets on this node have had no fresh ${s.stale.join('/')} data for longer than STALE_AFTER_MS (${s.reason}); asking the producer for a replay`,
        )
      }
      // re-demand: the producer of the key (here, or on the node holding its lease) replays its latest state
      this.o.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: s.key })
      this.o.metrics?.selfRepairs.inc({ action: 'redemand' })
      if (s.reason !== 'upstream_down' && n % this.o.resetAfterChecks === 0) {
        // replays did not help while the exchange answers: forget the cache (and its fence) for this topic
        this.o.log.warn(
          { topic: s.topic, checks: n },
          'freshness watchdog: still starved after replays, resetting the cached data of the topic',
        )
        this.o.cache.drop(s.topic)
        this.o.metrics?.selfRepairs.inc({ action: 'reset' })
        this.o.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: s.key })
      }
    }
    return starved
  }
}
