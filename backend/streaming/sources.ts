/**
 * The narrow upstream interfaces pollers depend on. The plugin adapts the LN Markets client to them;
 * unit tests pass fakes. Errors are classified by `kind` (LnmError's kinds), anything else is 'unavailable'.
 */
import type { LnmErrorKind } from '../exchange/errors.ts'
import type { AccountChannel } from '../schemas/channels.ts'
import type { SnapshotByChannel, TickerSnapshot } from '../schemas/ws-protocol.ts'

export interface Credentials {
  key: string
  secret: string
  passphrase: string
}

export interface FetchOptions {
  signal?: AbortSignal
  /** overall budget of the call, retries included */
  deadlineMs?: number
}

/** how one account channel's snapshot is fetched from the exchange */
export type Fetcher<C extends AccountChannel> = (creds: Credentials, opts?: FetchOptions) => Promise<SnapshotByChannel[C]>
/** one fetcher per account channel of the table: the app's source must have them all */
export type AccountFetchers = { [C in AccountChannel]: Fetcher<C> }
/** what pollers are given: a channel without a fetcher is simply not polled (tests pass partial fakes) */
export type AccountSource = Partial<AccountFetchers>

/** a channel recomputed after every round in which it or one of `from` was fetched */
export interface Derivation<C extends AccountChannel> {
  from: readonly AccountChannel[]
  apply(data: SnapshotByChannel[C], latest: Partial<SnapshotByChannel>): SnapshotByChannel[C]
}
export type AccountDerivations = { [C in AccountChannel]?: Derivation<C> }

export interface TickerSource {
  /** `ts`: when the data was true (exchange time when known) */
  fetchTicker(opts?: FetchOptions): Promise<{ data: TickerSnapshot; ts: number }>
}

/** partial live ticker (Stream v1 carries no bid/ask) */
export interface StreamTick {
  index: number | null
  lastPrice: number | null
  fundingRate: number | null
  fundingTime: string | null
  time: number
}

/** the shape of LnmStream the ticker feed uses */
export interface TickerStream {
  readonly isUp: boolean
  on(event: 'ticker', fn: (t: StreamTick) => void): unknown
  on(event: 'up' | 'down', fn: (...args: unknown[]) => void): unknown
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- EventEmitter.off's own listener type: unknown[] or never[] are rejected
  off(event: string, fn: (...args: any[]) => void): unknown
}

export type CredentialsLookup = (userId: string) => Promise<Credentials | null>

/** the exchange client's error kinds (a type-only import: streaming stays free of the client at run time) */
export type FailureKind = LnmErrorKind

export interface Failure {
  kind: FailureKind
  retryAfterMs?: number
}

const KINDS = new Set<string>([
  'credentials_rejected',
  'rate_limited',
  'unavailable',
  'bad_response',
  'timeout',
  'client_error',
  'circuit_open',
])

/**
 * LN Markets answers a signature whose timestamp is outside its window with a 401 too ("Your request is too old",
 * "…too far in the future", codes apiKeyTimestamp…). The client re-learns the clock and retries once; when that
 * fails as well (its /time call failing during an outage) the error still says credentials_rejected. The key is
 * not at fault: it is the clocks, so it is an upstream problem, never `credentials_rejected` (which also backs
 * the poller off as for a dead key).
 */
const TIMESTAMP_REJECTION = /timestamp|too far in the future|too old/i

export function classify(err: unknown): Failure {
  const e = err as { kind?: unknown; retryAfterMs?: unknown; code?: unknown; message?: unknown } | null
  let kind = e && typeof e.kind === 'string' && KINDS.has(e.kind) ? (e.kind as FailureKind) : 'unavailable'
  if (
    kind === 'credentials_rejected' &&
    TIMESTAMP_REJECTION.test(`${typeof e?.code === 'string' ? e.code : ''} ${typeof e?.message === 'string' ? e.message : ''}`)
  )
    kind = 'unavailable'
  const retryAfterMs = e && typeof e.retryAfterMs === 'number' && e.retryAfterMs > 0 ? e.retryAfterMs : undefined
  return retryAfterMs === undefined ? { kind } : { kind, retryAfterMs }
}

/** a short, human reason for status frames (never carries upstream messages, which could echo request data) */
export function reasonOf(f: Failure): string {
  switch (f.kind) {
    case 'credentials_rejected':
      return 'credentials_rejected'
    case 'rate_limited':
      return 'rate_limited'
    case 'timeout':
      return 'upstream_timeout'
    case 'circuit_open':
      return 'upstream_unavailable'
    case 'bad_response':
      return 'upstream_bad_response'
    case 'client_error':
      return 'upstream_client_error'
    case 'unavailable':
      return 'upstream_unavailable'
  }
}

export { silentLog, type Log } from '../logger.ts'

let lastEpoch = 0
/** epochs are wall-clock based and strictly increasing within a process, so a restarted producer never reuses one */
export function nextEpoch(now = Date.now()): number {
  lastEpoch = Math.max(now, lastEpoch + 1)
  return lastEpoch
}
