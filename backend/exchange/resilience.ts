/**
 * Building blocks of the exchange client: backoff, an abortable sleep, a spacing throttle
 * and a per-origin circuit breaker. All timers are cleared on abort.
 */
import { setTimeout as delay } from 'node:timers/promises'

/** Full-jitter exponential backoff: uniform in [0, min(cap, base·2^attempt)]. */
export function fullJitterBackoff(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** attempt)
  return Math.floor(random() * ceiling)
}

/** Retry-After header (delta-seconds only, like the official SDK) → ms, or undefined. */
export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value
  if (v === undefined) return undefined
  const n = Number(v.trim())
  if (!Number.isFinite(n) || n < 0) return undefined
  return Math.min(Math.round(n * 1000), 3_600_000)
}

export class AbortedError extends Error {
  constructor(readonly reason: unknown) {
    super('aborted')
  }
}

/** Waits `ms`; rejects with AbortedError (carrying the signal's reason) when `signal` aborts first. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(Math.max(0, ms), undefined, { signal })
  } catch (e) {
    if (signal?.aborted) throw new AbortedError(signal.reason)
    throw e
  }
}

/**
 * One admitted request: report when it really left (written on a socket) and when it finished (exactly once).
 * Spaced mode: the bucket's next grant waits for one of the two, so every slot must be reported.
 */
export interface ThrottleSlot {
  sent(at: number): void
  done(at: number): void
}

export interface ThrottleOptions {
  /** extra spacing on top of 1000/perSec (default 5 %) */
  margin?: number
  /**
   * 'spaced' (default): starts evenly spaced, concurrent requests allowed.
   * 'serial': one request at a time and the next starts a full interval after the previous one FINISHED,
   * so the server sees ≥ interval between arrivals whatever the network jitter (for 1/s buckets of size 1).
   */
  mode?: 'spaced' | 'serial'
}

/**
 * 'high' (default): the calls a dashboard waits for (polls of account, positions, cross);
 * 'low': bulk reads that can wait (history pages). A low call takes a slot only when no high call is
 * waiting for one, so a history load never delays a poll; the bucket's rate is the same for both.
 */
export type ThrottlePriority = 'high' | 'low'

interface Waiter {
  low: boolean
  resolve(slot: ThrottleSlot | null): void
  reject(e: unknown): void
  cleanup(): void
}

/**
 * Client-side throttle shared by every caller of one client instance: callers wait their turn instead of
 * getting 429s. `acquire()` resolves with a slot, or with `null` when the call's deadline would pass first;
 * it rejects with AbortedError when the signal aborts.
 */
export class Throttle {
  readonly intervalMs: number
  readonly mode: 'spaced' | 'serial'
  private next = 0
  private lastGrant = -Infinity
  // serial mode
  private busy = false
  private lastStart = -Infinity
  private lastDone = -Infinity
  private readonly queue: Waiter[] = []
  private timer: NodeJS.Timeout | null = null
  /** nothing is granted before this time (a server Retry-After for the whole bucket) */
  private blockedUntil = 0
  /** spaced mode: low-priority callers wait their turn on this chain, one at a time, for a free slot */
  private lowChain: Promise<void> = Promise.resolve()
  /**
   * spaced mode: settles when the last granted request is on the wire (or ended without being sent); null when
   * it already is. A granted request can still wait for a connection in the HTTP pool: the next grant waits for
   * it, then keeps a full interval after its real send, so queued requests of one key never leave together.
   */
  private unsent: Promise<void> | null = null

  constructor(perSec: number, opts: ThrottleOptions = {}) {
    this.intervalMs = perSec > 0 ? (1000 / perSec) * (1 + (opts.margin ?? 0.05)) : 0
    this.mode = opts.mode ?? 'spaced'
  }

  /** spaced mode: book the next start; ms to wait, or null when it would be after `deadline` (nothing booked) */
  reserve(now: number, deadline?: number): number | null {
    const at = Math.max(now, this.next)
    if (deadline !== undefined && at > deadline) return null
    this.next = at + this.intervalMs
    return at - now
  }

  /** how long a new request would have to wait at least (for errors) */
  pending(now: number): number {
    if (this.mode === 'spaced') return Math.max(0, this.next - now, this.blockedUntil - now)
    return Math.max(0, this.earliest() - now, this.busy ? this.intervalMs : 0)
  }

  /**
   * The server said "Retry-After": grant nothing before `until` (epoch ms), to every caller of this bucket,
   * including the ones already waiting for a slot. Never shortens an earlier block.
   */
  blockUntil(until: number): void {
    if (until <= this.blockedUntil) return
    this.blockedUntil = until
    if (this.mode === 'spaced') this.next = Math.max(this.next, until)
    else if (this.timer) {
      clearTimeout(this.timer)
      this.timer = null
      this.pump()
    }
  }

  /** ms left of a Retry-After block */
  blockedFor(now: number): number {
    return Math.max(0, this.blockedUntil - now)
  }

  /**
   * Spaced mode, low priority: wait (behind earlier low callers) until the bucket has no booked start ahead,
   * i.e. no high-priority caller is waiting; false when the deadline would pass first.
   */
  private async lowTurn(deadline: number | undefined, signal: AbortSignal): Promise<{ ok: boolean; release: () => void }> {
    const prev = this.lowChain
    let release!: () => void
    this.lowChain = new Promise<void>((r) => (release = r))
    try {
      // behind the earlier low callers (each books its slot, or gives up, before releasing the next)
      if (!(await settledBefore(prev, deadline, signal))) return { ok: false, release }
      for (;;) {
        if (signal.aborted) throw new AbortedError(signal.reason)
        // the last grant still waits for a connection: it goes first
        if (this.unsent) {
          if (!(await settledBefore(this.unsent, deadline, signal))) return { ok: false, release }
          continue
        }
        const now = Date.now()
        const freeAt = Math.max(this.next, this.blockedUntil, this.lastGrant + this.intervalMs)
        if (freeAt <= now) return { ok: true, release }
        if (deadline !== undefined && freeAt > deadline) return { ok: false, release }
        await sleep(freeAt - now, signal)
      }
    } catch (e) {
      release()
      throw e
    }
  }

  async acquire(deadline: number | undefined, signal: AbortSignal, priority: ThrottlePriority = 'high'): Promise<ThrottleSlot | null> {
    if (this.mode === 'spaced') {
      let wait: number | null
      if (priority === 'low') {
        const turn = await this.lowTurn(deadline, signal)
        // booked (or given up) before the next low caller looks
        wait = turn.ok ? this.reserve(Date.now(), deadline) : null
        turn.release()
      } else {
        wait = this.reserve(Date.now(), deadline)
      }
      if (wait === null) return null
      if (wait > 0) await sleep(wait, signal)
      // timers that fire late after a busy event loop would release several booked slots together:
      // also keep a full interval after the previous real grant; and a Retry-After block that arrived
      // while this caller was waiting holds it too
      for (;;) {
        if (this.unsent) {
          if (!(await settledBefore(this.unsent, deadline, signal))) return null
          continue
        }
        const now2 = Date.now()
        const blocked = this.blockedUntil - now2
        if (blocked > 0) {
          if (deadline !== undefined && this.blockedUntil > deadline) return null
          this.next = Math.max(this.next, this.blockedUntil + this.intervalMs)
          await sleep(blocked, signal)
          continue
        }
        const gap = this.lastGrant + this.intervalMs - now2
        if (gap <= 0) break
        if (deadline !== undefined && Date.now() + gap > deadline) return null
        this.next = Math.max(this.next, this.lastGrant + 2 * this.intervalMs)
        await sleep(gap, signal)
      }
      const grantedAt = Date.now()
      this.lastGrant = grantedAt
      let onWire!: () => void
      const unsent = new Promise<void>((r) => (onWire = r))
      this.unsent = unsent
      let settled = false
      const settle = () => {
        if (settled) return
        settled = true
        if (this.unsent === unsent) this.unsent = null
        onWire()
      }
      return {
        sent: (at) => {
          // left later than granted: keep a full interval after the real send
          if (at > grantedAt) {
            this.lastGrant = Math.max(this.lastGrant, at)
            this.next = Math.max(this.next, at + this.intervalMs)
          }
          settle()
        },
        // ended without being sent (aborted while waiting for a connection, refused locally): nothing to space from
        done: settle,
      }
    }
    if (signal.aborted) throw new AbortedError(signal.reason)
    return new Promise<ThrottleSlot | null>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const onAbort = () => {
        remove()
        reject(new AbortedError(signal.reason))
      }
      const remove = () => {
        const i = this.queue.indexOf(w)
        if (i >= 0) this.queue.splice(i, 1)
        w.cleanup()
      }
      const w: Waiter = {
        low: priority === 'low',
        resolve,
        reject,
        cleanup: () => {
          if (timer) clearTimeout(timer)
          signal.removeEventListener('abort', onAbort)
        },
      }
      if (deadline !== undefined) {
        timer = setTimeout(
          () => {
            remove()
            resolve(null)
          },
          Math.max(0, deadline - Date.now()),
        )
      }
      signal.addEventListener('abort', onAbort, { once: true })
      // a high-priority caller goes before every low one waiting
      const firstLow = w.low ? -1 : this.queue.findIndex((x) => x.low)
      if (firstLow < 0) this.queue.push(w)
      else this.queue.splice(firstLow, 0, w)
      this.pump()
    })
  }

  private earliest(): number {
    return Math.max(this.lastStart + this.intervalMs, this.lastDone + this.intervalMs, this.blockedUntil)
  }

  private pump() {
    if (this.busy || this.queue.length === 0 || this.timer) return
    const now = Date.now()
    const at = this.earliest()
    if (at > now) {
      this.timer = setTimeout(() => {
        this.timer = null
        this.pump()
      }, at - now)
      return
    }
    const w = this.queue.shift()!
    w.cleanup()
    this.busy = true
    this.lastStart = now
    let finished = false
    w.resolve({
      sent: () => {},
      done: (doneAt) => {
        if (finished) return
        finished = true
        this.busy = false
        this.lastDone = doneAt
        this.pump()
      },
    })
  }
}

/**
 * Waits for `p` (the previous low caller's turn, or the last grant reaching the wire); false when `deadline`
 * (epoch ms) comes first; rejects with AbortedError when `signal` aborts.
 */
function settledBefore(p: Promise<void>, deadline: number | undefined, signal: AbortSignal): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const done = (fn: () => void) => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      fn()
    }
    const onAbort = () => done(() => reject(new AbortedError(signal.reason)))
    const timer = deadline !== undefined ? setTimeout(() => done(() => resolve(false)), Math.max(0, deadline - Date.now())) : undefined
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    void p.then(() => done(() => resolve(true)))
  })
}

export type BreakerState = 'closed' | 'half_open' | 'open'
export const BREAKER_GAUGE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 }

/**
 * Consecutive-failure circuit breaker. Open after `failureThreshold` failures in a row; after `openMs` one
 * probe is let through (half-open); its success closes the circuit, its failure re-opens it.
 */
export class CircuitBreaker {
  state: BreakerState = 'closed'
  private failures = 0
  private openedAt = 0
  private probeInFlight = false

  constructor(
    readonly failureThreshold: number,
    readonly openMs: number,
    private readonly onChange: (s: BreakerState) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** ms until a probe is allowed, 0 when a request may go now */
  blockedFor(): number {
    if (this.state === 'closed') return 0
    if (this.state === 'open') {
      const left = this.openedAt + this.openMs - this.now()
      return left > 0 ? left : 0
    }
    return this.probeInFlight ? Math.max(1, this.openMs) : 0
  }

  /** Ask to start one call. 'go' = closed, 'probe' = the single half-open probe, 'reject' = circuit open. */
  acquire(): 'go' | 'probe' | 'reject' {
    if (this.state === 'closed') return 'go'
    if (this.state === 'open') {
      if (this.now() - this.openedAt < this.openMs) return 'reject'
      this.set('half_open')
    }
    if (this.probeInFlight) return 'reject'
    this.probeInFlight = true
    return 'probe'
  }

  /**
   * An active health probe while the circuit is not closed: take the single probe slot now, before `openMs`
   * has passed (the caller then sends one cheap request and reports it like any probe). false when the
   * circuit is closed or a probe is already in flight.
   */
  probeNow(): boolean {
    if (this.state === 'closed' || this.probeInFlight) return false
    if (this.state === 'open') this.set('half_open')
    this.probeInFlight = true
    return true
  }

  success(): void {
    this.failures = 0
    this.probeInFlight = false
    if (this.state !== 'closed') this.set('closed')
  }

  failure(): void {
    this.probeInFlight = false
    this.failures++
    if (this.state === 'half_open' || (this.state === 'closed' && this.failures >= this.failureThreshold)) {
      this.openedAt = this.now()
      this.set('open')
    }
  }

  /** the request ended without telling anything about the upstream (caller aborted) */
  release(): void {
    this.probeInFlight = false
  }

  private set(s: BreakerState) {
    this.state = s
    this.onChange(s)
  }
}
