/**
 * The exchange's clock as seen from here: signed requests carry `Date.now() + offsetMs`, where the offset is
 * learned from `GET /time` lazily before the first signed call, refreshed in the background every `refreshMs`,
 * and re-learned (blocking) after a timestamp-related 401. A failing `/time` keeps the previous offset and is
 * retried a minute later rather than before every signed call.
 */
import type { LnmError } from './errors.ts'
import type { Log } from '../logger.ts'

const CLOCK_RETRY_AFTER_FAILURE_MS = 60_000

export class ServerClock {
  /** server time − local time (ms) */
  offsetMs = 0
  private clockSyncedAt = 0
  private clockSync: Promise<void> | null = null

  /** `time` asks the exchange (GET /time) and reports back through `learn()` */
  constructor(
    private readonly time: (opts: { deadlineMs?: number; signal: AbortSignal }) => Promise<unknown>,
    private readonly clockRefreshMs: number,
    private readonly logger?: Log,
  ) {}

  /** A /time answer: `serverMs` read between `t0` (sent) and `t1` (headers received). */
  learn(serverMs: number, t0: number, t1: number): number {
    this.offsetMs = Math.round(serverMs - (t0 + t1) / 2)
    this.clockSyncedAt = t1
    return this.offsetMs
  }

  /** the exchange rejected our timestamp: the next `ensure()` re-learns the offset and blocks until it has */
  invalidate(): void {
    this.clockSyncedAt = 0
  }

  /** Learn the offset before the first signed call; refresh in the background when it is old. */
  async ensure(deadline: number | undefined, signal: AbortSignal): Promise<void> {
    const age = Date.now() - this.clockSyncedAt
    if (this.clockSyncedAt !== 0 && age < this.clockRefreshMs) return
    if (!this.clockSync) {
      const deadlineMs = deadline !== undefined ? Math.max(1, deadline - Date.now()) : undefined
      this.clockSync = this.time({ ...(deadlineMs !== undefined && { deadlineMs }), signal })
        .then(() => undefined)
        .catch((e: unknown) => {
          this.logger?.warn({ kind: (e as LnmError).kind, code: (e as LnmError).code }, 'lnm clock sync failed; keeping previous offset')
          // do not block (or add a /time call to) every signed request while /time is failing: retry in a minute
          this.clockSyncedAt = Date.now() - this.clockRefreshMs + CLOCK_RETRY_AFTER_FAILURE_MS
        })
        .finally(() => {
          this.clockSync = null
        })
    }
    // first sync (or re-learn after a rejection) blocks; a periodic refresh does not
    if (this.clockSyncedAt === 0) await this.clockSync
  }
}
