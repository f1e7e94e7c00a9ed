/**
 * One poller per watched account (= user with stored credentials), whatever the number of sockets.
 * Started by a `watch` on the control topic, stopped by `unwatch` (the hub applies the grace period).
 * Polls are spread over the interval by a per-account phase; the interval stretches on rate limits and
 * failures back off; every outcome that changes the upstream state is published as a status event.
 */
import { ACCOUNT_CHANNELS, channelRow, type AccountChannel } from '../schemas/channels.ts'
import type { UpstreamState } from '../schemas/ws-protocol.ts'
import { CONTROL_TOPIC, TICKER_TOPIC, accountTopic, type Bus, type BusEvent, type StatusEvent } from './bus.ts'
import type { SnapshotByChannel } from '../schemas/ws-protocol.ts'
import {
  classify,
  nextEpoch,
  reasonOf,
  silentLog,
  type AccountDerivations,
  type AccountSource,
  type Derivation,
  type Credentials,
  type CredentialsLookup,
  type Failure,
  type Log,
} from './sources.ts'

export interface AccountPollersOptions {
  bus: Bus
  source: AccountSource
  /** the polling period while the account's private stream is healthy (REST is then the reconciler); default intervalMs */
  pushIntervalMs?: number
  /** a poller started / stopped / its credentials changed (the private stream manager follows) */
  onStart?: (userId: string) => void
  onStop?: (userId: string) => void
  onCredentials?: (userId: string) => void
  /** channels recomputed from others after each round (account.equity from positions and cross) */
  derive?: AccountDerivations
  credentials: CredentialsLookup
  intervalMs: number
  /** refresh_data may trigger a poll only if the last one started at least this long ago */
  refreshMinMs?: number
  /** the interval never stretches (rate limits) or backs off (failures) beyond this factor */
  maxBackoffFactor?: number
  /** a poll's budget is max(this, interval / 2); default 2000: the per-key throttle (5/s) spaces a poll's up to 5 calls over ~1.1 s */
  minPollDeadlineMs?: number
  metrics?: {
    activePollers: { set(v: number): void }
    pollsTotal: { inc(labels: { outcome: string }): void }
  }
  log?: Log
  now?: () => number
}

/** the account channels of the table, in table order: the per-channel arrays below are indexed alike */
const POLLED: readonly AccountChannel[] = ACCOUNT_CHANNELS

class AccountPoller {
  readonly topic: string
  epoch = nextEpoch()
  /** per account channel (POLLED order): seq, last JSON, its sourceTs */
  readonly seq = POLLED.map(() => 0)
  readonly last: Array<string | null> = POLLED.map(() => null)
  readonly lastTs = POLLED.map(() => 0)
  /** the latest fetched data per channel (before derivation) */
  readonly data: unknown[] = POLLED.map(() => undefined)
  /** polls started (cadence `poll`: every n-th) */
  polls = 0
  /** channels (bits by POLLED index) the next poll must fetch whatever their cadence */
  forced = 0
  /** channels (bits by POLLED index) an exchange push was applied to since the round in flight started */
  pushedDuringRound = 0
  /** the account's private stream is up: poll at pushIntervalMs */
  pushHealthy = false
  /** undefined: not loaded yet; null: the user has none */
  creds: Credentials | null | undefined = undefined
  timer: NodeJS.Timeout | null = null
  controller: AbortController | null = null
  /** bumped by a credentials change: results of older polls are dropped */
  gen = 0
  failures = 0
  /** the exchange came back while this poller's round was in flight: if that round failed, retry soon */
  recovering = false
  /** interval multiplier learned from rate limits (1 = configured interval) */
  factor = 1
  lastPollStart = 0
  lastSuccessTs: number | null = null
  status: StatusEvent | null = null
  stopped = false
  constructor(
    readonly userId: string,
    readonly phase: number,
  ) {
    this.topic = accountTopic(userId)
  }
}

/** FNV-1a + murmur3 finalizer: a stable phase per account so polls of different accounts do not fire together */
function phaseOf(key: string, intervalMs: number): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  // murmur3 finalizer: keys differing only in their last character would otherwise land in arithmetic progression
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return (h >>> 0) % intervalMs
}

export class AccountPollers {
  private readonly pollers = new Map<string, AccountPoller>()
  /** bits (by POLLED index) of the channels that are not `slow` */
  private readonly fastBits = POLLED.reduce((m, ch, i) => (channelRow(ch).cadence.kind === 'slow' ? m : m | (1 << i)), 0)
  private readonly o: Required<
    Omit<AccountPollersOptions, 'metrics' | 'derive' | 'pushIntervalMs' | 'onStart' | 'onStop' | 'onCredentials'>
  > &
    Pick<AccountPollersOptions, 'metrics' | 'derive' | 'pushIntervalMs' | 'onStart' | 'onStop' | 'onCredentials'>
  private unsubscribe: (() => void) | null = null

  constructor(opts: AccountPollersOptions) {
    this.o = {
      refreshMinMs: 3000,
      maxBackoffFactor: 8,
      minPollDeadlineMs: 2000,
      log: silentLog,
      now: Date.now,
      ...opts,
    }
    this.tick = this.tick.bind(this)
  }

  start(): void {
    if (this.unsubscribe) return
    const offControl = this.o.bus.subscribe(CONTROL_TOPIC, (e) => this.onControl(e))
    const offTicker = this.o.bus.subscribe(TICKER_TOPIC, (e) => this.onTickerEvent(e))
    this.unsubscribe = () => {
      offControl()
      offTicker()
    }
  }

  async stop(): Promise<void> {
    this.unsubscribe?.()
    this.unsubscribe = null
    for (const p of this.pollers.values()) {
      this.halt(p)
      this.o.onStop?.(p.userId)
    }
    this.pollers.clear()
    this.o.metrics?.activePollers.set(0)
  }

  get size(): number {
    return this.pollers.size
  }

  /** the user's stored credentials changed or were deleted: forget cached data, reload and poll now */
  credentialsChanged(userId: string): void {
    const p = this.pollers.get(userId)
    if (!p) return
    p.gen++
    p.controller?.abort()
    p.controller = null
    p.creds = undefined
    // never below the current one (a lease generation may be ahead of this clock)
    p.epoch = Math.max(nextEpoch(), p.epoch + 1)
    p.seq.fill(0)
    p.last.fill(null)
    p.data.fill(undefined)
    p.lastTs.fill(0)
    p.failures = 0
    p.factor = 1
    p.lastSuccessTs = null
    p.status = null
    p.pushHealthy = false
    this.o.bus.publish(p.topic, { kind: 'reset', reason: 'credentials_changed' })
    this.o.onCredentials?.(userId)
    void this.poll(p)
  }

  private onControl(e: BusEvent): void {
    if (e.kind !== 'watch' && e.kind !== 'unwatch' && e.kind !== 'refresh' && e.kind !== 'credentials') return
    if (e.key === 'ticker') return
    const p = this.pollers.get(e.key)
    switch (e.kind) {
      case 'watch':
        if (p) {
          // a lease generation above our epoch (fencing): publish under it from now on
          if (e.epoch !== undefined && e.epoch > p.epoch) return this.moveEpoch(p, e.epoch)
          return this.replay(p)
        }
        this.startPoller(e.key, e.epoch)
        return
      case 'unwatch':
        if (!p) return
        this.halt(p)
        this.pollers.delete(e.key)
        this.o.metrics?.activePollers.set(this.pollers.size)
        this.o.onStop?.(e.key)
        return
      case 'refresh':
        if (p) this.refresh(p)
        return
      case 'credentials':
        this.credentialsChanged(e.key)
        return
    }
  }

  /**
   * The shared ticker is down — its stream dropped and the REST probe that followed could not reach the
   * exchange: the exchange itself is unreachable, so every account is `down` now rather than at its next poll
   * (up to an interval later). The next successful poll of an account brings its status back to ok.
   */
  private onTickerEvent(e: BusEvent): void {
    if (e.kind !== 'status' || e.upstream !== 'down' || (e.reason !== 'upstream_unavailable' && e.reason !== 'upstream_timeout')) return
    for (const p of this.pollers.values()) {
      if (p.creds && p.status?.upstream !== 'down') this.setStatus(p, 'down', 'exchange_unreachable')
    }
  }

  /**
   * The exchange answers again after an outage (the exchange client's breaker closed): every poller that
   * backed off (failures, or `down`) polls within `spreadMs` — uniform jitter, so the accounts do not fire
   * together, and each key's calls still pass its own 5/s throttle — instead of at the end of a backoff of
   * up to 15 s. A round in flight that then fails is retried the same way. Rate-limited pollers are left to
   * their stretched interval. Returns how many were moved forward.
   */
  recover(spreadMs = Math.min(1000, Math.floor(this.o.intervalMs / 4))): number {
    let n = 0
    for (const p of this.pollers.values()) {
      if (p.stopped || !p.creds || (p.failures === 0 && p.status?.upstream !== 'down')) continue
      if (p.controller) {
        p.recovering = true
        continue
      }
      this.soon(p, spreadMs)
      n++
    }
    return n
  }

  private soon(p: AccountPoller, spreadMs: number): void {
    if (p.timer) clearTimeout(p.timer)
    p.timer = setTimeout(this.tick, Math.round(Math.random() * spreadMs), p)
    p.timer.unref()
  }

  private startPoller(userId: string, epoch?: number): void {
    const p = new AccountPoller(userId, phaseOf(userId, this.o.intervalMs))
    if (epoch !== undefined) p.epoch = epoch
    this.pollers.set(userId, p)
    this.o.metrics?.activePollers.set(this.pollers.size)
    this.o.onStart?.(userId)
    // the first subscriber needs data now; later polls fall on the account's phase
    void this.poll(p)
  }

  private halt(p: AccountPoller): void {
    p.stopped = true
    p.gen++
    if (p.timer) clearTimeout(p.timer)
    p.timer = null
    p.controller?.abort()
    p.controller = null
  }

  /**
   * A lease generation above our epoch (the lease was taken again after Redis came back, or this node took it
   * over): publish under it from now on. What we hold is NOT replayed under the new epoch: while Redis was away
   * another node's producer may have published newer data for this account, and a higher epoch carrying older
   * data would take clients back in time (rule 2 of README "Epochs and fencing" accepts any higher epoch).
   * Every channel is fetched again now and published as a new version (new epoch, next seq, the fetch's time);
   * caches keep showing what they have until then. The status carries no data: it is replayed.
   */
  private moveEpoch(p: AccountPoller, epoch: number): void {
    p.epoch = epoch
    // the next answers are new versions (snapshots), never a `fresh` for a version no cache holds under this epoch
    p.last.fill(null)
    if (p.status) this.o.bus.publish(p.topic, p.status)
    if (p.creds === null) return
    for (let i = 0; i < POLLED.length; i++) if (this.o.source[POLLED[i]!]) p.forced |= 1 << i
    if (!p.controller) void this.poll(p, true)
  }

  /** a new node-local cache wants the current state: publish it again (the cache drops duplicates) */
  private replay(p: AccountPoller): void {
    for (let i = 0; i < POLLED.length; i++) {
      const json = p.last[i]
      if (json !== null && json !== undefined)
        this.o.bus.publish(p.topic, { kind: 'snapshot', channel: POLLED[i]!, epoch: p.epoch, seq: p.seq[i]!, sourceTs: p.lastTs[i]!, json })
    }
    if (p.status) this.o.bus.publish(p.topic, p.status)
  }

  private refresh(p: AccountPoller): void {
    const now = this.o.now()
    if (p.controller || now - p.lastPollStart < this.o.refreshMinMs) return
    if (p.timer) clearTimeout(p.timer)
    p.timer = null
    if (p.creds === null) p.creds = undefined // re-read: they may have been stored since
    void this.poll(p)
  }

  private tick(p: AccountPoller): void {
    p.timer = null
    if (p.stopped) return
    if (p.controller) {
      // never pile up requests; a poll that outlived both its interval and its budget means the exchange
      // is not answering: say so now rather than when the client finally gives up
      const inFlight = this.o.now() - p.lastPollStart
      const limit = Math.max(this.intervalOf(p) * p.factor, this.deadlineOf(p))
      if (inFlight >= limit) this.setStatus(p, 'down', 'upstream_timeout')
      if (inFlight >= 2 * limit) p.controller.abort()
      this.schedule(p)
      return
    }
    void this.poll(p)
  }

  private schedule(p: AccountPoller, minDelay = 0): void {
    if (p.stopped) return
    if (p.timer) clearTimeout(p.timer)
    const base = this.intervalOf(p) * p.factor
    let delay: number
    if (p.failures > 0) {
      // exponential backoff with ±20 % jitter, capped (and never beyond 15 s, so recovery is seen quickly)
      const f = Math.min(2 ** (p.failures - 1), this.o.maxBackoffFactor)
      delay = Math.min(base * f, this.o.intervalMs * this.o.maxBackoffFactor, Math.max(base, 15_000)) * (0.8 + Math.random() * 0.4)
    } else {
      // next slot on this account's phase, at least half an interval away
      const off = (((this.o.now() - p.phase) % base) + base) % base
      delay = base - off
      if (delay < base / 2) delay += base
    }
    delay = Math.max(delay, minDelay)
    p.timer = setTimeout(this.tick, Math.round(delay), p)
    p.timer.unref()
  }

  private async poll(p: AccountPoller, targeted = false): Promise<void> {
    if (p.stopped || p.controller) return
    const gen = p.gen
    const controller = new AbortController()
    p.controller = controller
    p.lastPollStart = this.o.now()
    // armed now so a poll that never answers is noticed at the next slot (see tick)
    this.schedule(p)
    let minDelay = 0
    try {
      if (p.creds === undefined) {
        try {
          p.creds = await this.o.credentials(p.userId)
        } catch (err) {
          if (gen !== p.gen) return
          this.o.log.warn({ err, userId: p.userId }, 'credentials lookup failed')
          p.failures++
          this.setStatus(p, 'degraded', 'credentials_unavailable')
          this.o.metrics?.pollsTotal.inc({ outcome: 'failed' })
          return
        }
        if (gen !== p.gen) return
      }
      if (p.creds === null) {
        this.o.metrics?.pollsTotal.inc({ outcome: 'no_credentials' })
        this.setStatus(p, 'ok', 'no_credentials', false)
        return
      }
      // a poll (retries included) gets half its interval, and at least the time the client's per-key throttle
      // needs to space its three calls: a dead exchange shows up as `down` at the first poll after it died
      // a round of its own (slow channels, events) is off the poll schedule: it may take longer
      const opts = { signal: controller.signal, deadlineMs: targeted ? Math.max(this.deadlineOf(p), 5000) : this.deadlineOf(p) }
      // each channel's sourceTs is when its own answer arrived, not when the slower one did
      const stamp = <T>(pr: Promise<T>) => pr.then((value) => ({ value, at: this.o.now() }))
      const due = this.dueChannels(p, targeted)
      if (!targeted) p.polls++
      for (const i of due) p.forced &= ~(1 << i)
      p.pushedDuringRound = 0
      const creds = p.creds
      const results = await Promise.allSettled(due.map((i) => stamp(this.o.source[POLLED[i]!]!(creds, opts) as Promise<unknown>)))
      if (gen !== p.gen) return
      let ts = 0
      let failure: Failure | null = null
      let ok = 0
      let touched = 0
      for (let k = 0; k < results.length; k++) {
        const r = results[k]!
        const i = due[k]!
        if (r.status === 'rejected') {
          const f = classify(r.reason)
          // the most telling failure wins: rejected credentials > rate limit > anything else
          if (!failure || f.kind === 'credentials_rejected' || (f.kind === 'rate_limited' && failure.kind !== 'credentials_rejected'))
            failure = f
          continue
        }
        ok++
        if (p.pushedDuringRound & (1 << i)) {
          // an exchange push was applied while this answer was on its way: the answer may predate the event and
          // must not undo it; a round of its own right after this one reads the channel again
          p.forced |= 1 << i
          continue
        }
        p.data[i] = r.value.value
        p.lastTs[i] = r.value.at
        if (r.value.at > ts) ts = r.value.at
        touched |= 1 << i
      }
      this.publishChanges(p, touched)
      if (ok > 0) p.lastSuccessTs = ts
      if (!failure) {
        p.failures = 0
        p.factor = Math.max(1, p.factor * 0.8)
        this.o.metrics?.pollsTotal.inc({ outcome: 'ok' })
        this.setStatus(p, 'ok', 'ok')
        return
      }
      this.o.metrics?.pollsTotal.inc({ outcome: ok > 0 ? 'partial' : 'failed' })
      if (failure.kind === 'rate_limited') {
        // the exchange asked us to slow down: stretch this account's interval, honour Retry-After
        p.factor = Math.min(this.o.maxBackoffFactor, p.factor * 2)
        minDelay = failure.retryAfterMs ?? 0
        this.setStatus(p, 'degraded', 'rate_limited')
        return
      }
      p.failures++
      if (failure.kind === 'credentials_rejected') {
        p.failures = Math.max(p.failures, 4) // no point in hammering with rejected keys
        this.setStatus(p, 'down', 'credentials_rejected')
      } else if (ok > 0 || failure.kind === 'bad_response' || failure.kind === 'client_error') {
        this.setStatus(p, 'degraded', reasonOf(failure))
      } else {
        this.setStatus(p, 'down', reasonOf(failure))
      }
      if (failure.retryAfterMs) minDelay = failure.retryAfterMs
    } catch (err) {
      if (gen !== p.gen) return
      this.o.log.error({ err, userId: p.userId }, 'poller crashed')
      p.failures++
      this.setStatus(p, 'down', 'internal_error')
    } finally {
      if (gen === p.gen) {
        p.controller = null
        if (p.creds !== null) this.schedule(p, minDelay)
        else if (p.timer) {
          clearTimeout(p.timer)
          p.timer = null
        }
        // the exchange came back during this round and it still failed: once more soon, not after a backoff
        if (p.recovering) {
          p.recovering = false
          if (p.creds && p.failures > 0 && minDelay === 0) this.soon(p, Math.min(1000, Math.floor(this.o.intervalMs / 4)))
        }
        // a healthy account: slow channels that are due, and channels an event asked for during this round,
        // are fetched in a round of their own right away (never stacked onto a poll: bursts stay small)
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- stop() or a credentials event may clear p.creds during the awaits above
        if (p.creds && !p.stopped && p.failures === 0 && minDelay === 0) {
          p.forced |= this.slowDue(p)
          if (p.forced !== 0) setImmediate(() => void this.poll(p, true))
        }
      }
    }
  }

  /** bits (by POLLED index) of the `slow` channels due: never fetched, or their interval has passed */
  private slowDue(p: AccountPoller): number {
    let bits = 0
    const now = this.o.now()
    for (let i = 0; i < POLLED.length; i++) {
      const ch = POLLED[i]!
      const cadence = channelRow(ch).cadence
      if (cadence.kind !== 'slow' || !this.o.source[ch]) continue
      if (p.last[i] === null || now - p.lastTs[i]! >= cadence.minIntervalMs) bits |= 1 << i
    }
    return bits
  }

  /**
   * After a round: publish every channel whose data was fetched (`touched`, bits by POLLED index) or is
   * derived from one that was (account.equity from positions and cross). Changed → snapshot; fetched and
   * unchanged → one `fresh` event at the earlier of their answer times (never overstated).
   */
  private publishChanges(p: AccountPoller, touched: number): void {
    if (touched === 0) return
    const fresh: AccountChannel[] = []
    let latest: Partial<SnapshotByChannel> | null = null
    for (let i = 0; i < POLLED.length; i++) {
      const ch = POLLED[i]!
      const d = this.o.derive?.[ch] as Derivation<AccountChannel> | undefined
      const fetched = (touched & (1 << i)) !== 0
      if (!fetched && !(d && d.from.some((f) => touched & (1 << POLLED.indexOf(f))))) continue
      if (p.data[i] === undefined) continue
      if (d && !latest) {
        latest = {}
        for (let j = 0; j < POLLED.length; j++) if (p.data[j] !== undefined) (latest as Record<string, unknown>)[POLLED[j]!] = p.data[j]
      }
      const json = JSON.stringify(d ? d.apply(p.data[i] as never, latest!) : p.data[i])
      if (json === p.last[i]) {
        if (fetched) fresh.push(ch)
        continue
      }
      p.last[i] = json
      p.seq[i]!++
      this.o.bus.publish(p.topic, { kind: 'snapshot', channel: ch, epoch: p.epoch, seq: p.seq[i]!, sourceTs: p.lastTs[i]!, json })
    }
    if (fresh.length)
      this.o.bus.publish(p.topic, {
        kind: 'fresh',
        channels: fresh,
        epoch: p.epoch,
        sourceTs: Math.min(...fresh.map((ch) => p.lastTs[POLLED.indexOf(ch)]!)),
      })
  }

  /**
   * Indices (into POLLED) of the channels this poll fetches: by each channel's cadence in the table, plus
   * the forced ones (an exchange event, a reconnect); a targeted poll fetches only the forced ones.
   */
  private dueChannels(p: AccountPoller, targeted: boolean): number[] {
    const due: number[] = []
    for (let i = 0; i < POLLED.length; i++) {
      const ch = POLLED[i]!
      if (!this.o.source[ch]) continue
      if (p.forced & (1 << i)) {
        // a forced slow channel waits for a round of its own when faster ones are forced too
        if (!(targeted && channelRow(ch).cadence.kind === 'slow' && (p.forced & this.fastBits) !== 0)) due.push(i)
        continue
      }
      if (targeted) continue
      const cadence = channelRow(ch).cadence
      const never = p.last[i] === null
      // `slow` channels never ride on a poll: they get a round of their own (see poll's finally)
      if (cadence.kind === 'poll' && (never || p.polls % cadence.everyPolls === 0)) due.push(i)
    }
    return due
  }

  private intervalOf(p: AccountPoller): number {
    return p.pushHealthy && this.o.pushIntervalMs ? this.o.pushIntervalMs : this.o.intervalMs
  }

  // ------------------------------------------------------------------ exchange push (private streams)

  /**
   * The account's private stream went up or down: up → REST becomes the reconciler (pushIntervalMs) after a
   * full fetch (events may have been missed while it was down); down → back to intervalMs at once.
   */
  setPushHealthy(userId: string, healthy: boolean): void {
    const p = this.pollers.get(userId)
    if (!p || p.stopped) return
    const was = p.pushHealthy
    p.pushHealthy = healthy
    if (healthy) this.fetchNow(userId, POLLED)
    else if (was && !p.controller) this.schedule(p)
  }

  /**
   * The account's private stream is up and was alive at `at`, and no change event came: the data of its polled
   * channels (not the slow ones, which have their own schedule) is still true at `at`. Advances their sourceTs
   * and publishes one `fresh` event, as an unchanged poll would. Nothing is claimed for data not yet fetched,
   * or past what the stream saw.
   */
  confirmByPush(userId: string, at: number): void {
    const p = this.pollers.get(userId)
    if (!p || p.stopped || !p.pushHealthy || p.controller) return
    const fresh: AccountChannel[] = []
    for (let i = 0; i < POLLED.length; i++) {
      if (channelRow(POLLED[i]!).cadence.kind !== 'poll' || p.data[i] === undefined || p.last[i] === null || p.lastTs[i]! >= at) continue
      p.lastTs[i] = at
      fresh.push(POLLED[i]!)
    }
    if (fresh.length) this.o.bus.publish(p.topic, { kind: 'fresh', channels: fresh, epoch: p.epoch, sourceTs: at })
  }

  /** fetch these channels now, single-flight: coalesced into the round in flight's follow-up if there is one */
  fetchNow(userId: string, channels: readonly AccountChannel[]): void {
    const p = this.pollers.get(userId)
    if (!p || p.stopped || p.creds === null) return
    for (const ch of channels) p.forced |= 1 << POLLED.indexOf(ch)
    if (!p.controller) void this.poll(p, true)
  }

  /** apply an exchange payload to a channel's latest data at once (no REST); null from `fn` = nothing to apply */
  apply<C extends AccountChannel>(userId: string, channel: C, fn: (cur: SnapshotByChannel[C]) => SnapshotByChannel[C] | null): boolean {
    const p = this.pollers.get(userId)
    const i = POLLED.indexOf(channel)
    if (!p || p.stopped || p.data[i] === undefined) return false
    const next = fn(p.data[i] as SnapshotByChannel[C])
    if (next === null) return false
    p.data[i] = next
    p.lastTs[i] = this.o.now()
    if (p.controller) p.pushedDuringRound |= 1 << i
    this.publishChanges(p, 1 << i)
    return true
  }

  private deadlineOf(p: AccountPoller): number {
    return Math.max(this.o.minPollDeadlineMs, Math.round(this.intervalOf(p) * p.factor * 0.5))
  }

  private setStatus(p: AccountPoller, upstream: UpstreamState, reason: string, hasCredentials = true): void {
    const prev = p.status
    // only transitions travel; lastSuccessTs of a non-ok state is frozen anyway
    if (prev && prev.upstream === upstream && prev.reason === reason && prev.hasCredentials === hasCredentials) return
    const status: StatusEvent = { kind: 'status', scope: 'account', upstream, lastSuccessTs: p.lastSuccessTs, reason, hasCredentials }
    p.status = status
    this.o.bus.publish(p.topic, status)
  }
}
