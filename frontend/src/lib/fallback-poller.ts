/**
 * The HTTP fallback: GET /api/dashboard once at once, then again every period (or after the server's
 * Retry-After, when longer) for as long as its owner says the socket does not carry the data. One request in
 * flight at most. It keeps no page state: the body and the outcome go to its owner through `PollerHost`.
 */
import type { DashboardResponse } from '../../../backend/schemas/ws-protocol.ts'

export type DashboardFetchResult =
  { kind: 'ok'; body: DashboardResponse } | { kind: 'error'; network: boolean; retryAfterMs?: number | undefined }

/** what one poll did: whether it worked and, when another is scheduled, when and after how long */
export interface PollOutcome {
  lastPollOk: boolean
  nextPollAt?: number
  pollWaitMs?: number
}

export interface PollerHost {
  /** GET /api/dashboard */
  fetchDashboard: () => Promise<DashboardFetchResult>
  now: () => number
  /** the client was stopped: drop any result */
  isStopped: () => boolean
  /** the period between polls, read before each result is applied */
  periodMs: () => number
  /** still needed after this poll: the socket is not authenticated, or it is silent */
  socketDown: () => boolean
  /** a body arrived */
  onBody: (body: DashboardResponse) => void
  /** a poll ended (after onBody) */
  onPolled: (outcome: PollOutcome) => void
}

export class FallbackPoller {
  private polling = false
  private inFlight = false
  private failedNetwork = false
  private timer: ReturnType<typeof setTimeout> | null = null

  constructor(private readonly host: PollerHost) {}

  /** polling repeatedly (not just a one-off read) */
  get active(): boolean {
    return this.polling
  }

  get busy(): boolean {
    return this.inFlight
  }

  /** the last poll failed on the network (not an HTTP error) */
  get lastFailedOnNetwork(): boolean {
    return this.failedNetwork
  }

  /** start polling repeatedly, with a first read at once; no-op when already polling */
  start(): void {
    if (this.polling) return
    this.polling = true
    void this.pollOnce()
  }

  /** stop polling; a read in flight still delivers its body */
  stop(): void {
    this.polling = false
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  /** one read now (replacing a scheduled one); it schedules the next only while polling */
  async pollOnce(): Promise<void> {
    if (this.host.isStopped() || this.inFlight) return
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.inFlight = true
    let result: DashboardFetchResult
    try {
      result = await this.host.fetchDashboard()
    } catch {
      result = { kind: 'error', network: true }
    } finally {
      this.inFlight = false
    }
    if (this.host.isStopped()) return
    let wait = this.host.periodMs()
    if (result.kind === 'ok') {
      this.failedNetwork = false
      this.host.onBody(result.body)
    } else {
      if (result.retryAfterMs) wait = Math.max(wait, result.retryAfterMs)
      this.failedNetwork = result.network
    }
    const lastPollOk = result.kind === 'ok'
    if (this.polling && this.host.socketDown()) {
      this.timer = setTimeout(() => void this.pollOnce(), wait)
      this.host.onPolled({ lastPollOk, nextPollAt: this.host.now() + wait, pollWaitMs: wait })
    } else {
      this.host.onPolled({ lastPollOk })
    }
  }
}
