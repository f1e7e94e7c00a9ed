/**
 * Sharing of GET results: in-flight coalescing (identical requests with the same credentials share one upstream
 * call; each waiter keeps its own signal and deadline, the shared call is aborted only when every waiter gave
 * up) and the short-lived LRU caches of public data (ticker, candles).
 */
import { createHash } from 'node:crypto'
import type { LRUCache } from 'lru-cache'
import type { Metrics } from '../metrics.ts'
import type { Credentials } from './signing.ts'
import { LnmError } from './errors.ts'
import type { CallOptions } from './call-policy.ts'

interface Inflight {
  promise: Promise<unknown>
  waiters: number
  controller: AbortController
}

export class Coalescer {
  readonly inflight = new Map<string, Inflight>()

  constructor(private readonly metrics?: Metrics) {}

  /**
   * `key` names the request (URL and `credId`); `start` runs the one shared upstream call with the leader's
   * deadline and priority and a signal of its own.
   */
  run<T>(key: string, endpoint: string, opts: CallOptions | undefined, start: (shared: CallOptions) => Promise<T>): Promise<T> {
    const existing = this.inflight.get(key)
    if (existing) {
      this.metrics?.cacheHits.inc({ cache: 'inflight' })
      return this.join<T>(existing, endpoint, opts)
    }
    this.metrics?.cacheMisses.inc({ cache: 'inflight' })
    const controller = new AbortController()
    const entry: Inflight = { controller, waiters: 0, promise: Promise.resolve() }
    // the shared call keeps the leader's deadline and priority; it is aborted only when every waiter gave up
    entry.promise = start({
      signal: controller.signal,
      ...(opts?.deadlineMs !== undefined && { deadlineMs: opts.deadlineMs }),
      ...(opts?.priority !== undefined && { priority: opts.priority }),
    }).finally(() => {
      if (this.inflight.get(key) === entry) this.inflight.delete(key)
    })
    entry.promise.catch(() => {})
    this.inflight.set(key, entry)
    return this.join<T>(entry, endpoint, opts)
  }

  private join<T>(entry: Inflight, endpoint: string, opts?: CallOptions): Promise<T> {
    entry.waiters++
    const deadline = opts?.deadlineMs !== undefined ? Date.now() + opts.deadlineMs : undefined
    if (!opts?.signal && deadline === undefined) {
      return (entry.promise as Promise<T>).finally(() => {
        entry.waiters--
      })
    }
    // this waiter's end: its caller's signal or its own deadline, whichever comes first
    const deadlineSignal = deadline !== undefined ? AbortSignal.timeout(Math.max(0, deadline - Date.now())) : undefined
    const signal = opts?.signal && deadlineSignal ? AbortSignal.any([opts.signal, deadlineSignal]) : (opts?.signal ?? deadlineSignal!)
    return new Promise<T>((resolve, reject) => {
      let done = false
      const finish = (err: LnmError | null, value?: T) => {
        if (done) return
        done = true
        signal.removeEventListener('abort', onAbort)
        entry.waiters--
        if (err) {
          if (entry.waiters <= 0) entry.controller.abort(err)
          reject(err)
        } else resolve(value as T)
      }
      const onAbort = () =>
        finish(
          opts?.signal?.aborted
            ? new LnmError('timeout', endpoint, `lnm ${endpoint}: aborted by caller`, { code: 'ABORTED' })
            : new LnmError('timeout', endpoint, `lnm ${endpoint}: deadline of ${opts!.deadlineMs} ms exceeded`, { code: 'DEADLINE' }),
        )
      if (signal.aborted) return onAbort()
      signal.addEventListener('abort', onAbort, { once: true })
      ;(entry.promise as Promise<T>).then(
        (v) => finish(null, v),
        (e: LnmError) => finish(e),
      )
    })
  }
}

/** A hit of `cache`, or `load()` stored in it; counted as `cache_hits` / `cache_misses` under `name`. */
export async function cached<T extends NonNullable<unknown>>(
  metrics: Metrics | undefined,
  cache: LRUCache<string, T>,
  name: string,
  key: string,
  load: () => Promise<T>,
): Promise<T> {
  const hit = cache.get(key)
  if (hit !== undefined) {
    metrics?.cacheHits.inc({ cache: name })
    return hit
  }
  metrics?.cacheMisses.inc({ cache: name })
  const value = await load()
  cache.set(key, value)
  return value
}

/** the credentials part of a coalescing key: a hash of all three fields, "public" without */
export function credId(creds?: Credentials): string {
  if (!creds) return 'public'
  return createHash('sha256').update(`${creds.key}\0${creds.secret}\0${creds.passphrase}`).digest('base64url').slice(0, 22)
}
