/**
 * The one seam between upstream producers (pollers, ticker feed) and the hub.
 *
 * Producers publish on `account:<userId>` and `ticker`; the hub publishes demand and refresh requests on
 * `control`. Payloads are plain JSON-safe objects whose snapshot data is already serialized (`json`), so a
 * Redis implementation can forward them verbatim (PUBLISH topic JSON.stringify(event)) without touching
 * pollers or hub. The in-process bus dispatches synchronously.
 */
import type { Channel, UpstreamState } from '../schemas/ws-protocol.ts'

export const TICKER_TOPIC = 'ticker'
export const CONTROL_TOPIC = 'control'
export const accountTopic = (userId: string): string => `account:${userId}`

/** a channel's data changed: `json` is JSON.stringify(snapshot), done once by the producer */
export interface SnapshotEvent {
  kind: 'snapshot'
  channel: Channel
  epoch: number
  seq: number
  sourceTs: number
  json: string
}

/** a poll confirmed the data is unchanged at `sourceTs` (keeps freshness honest without a data_update) */
export interface FreshEvent {
  kind: 'fresh'
  channels: Channel[]
  epoch: number
  sourceTs: number
}

export interface StatusEvent {
  kind: 'status'
  scope: 'account' | 'ticker'
  upstream: UpstreamState
  lastSuccessTs: number | null
  reason: string
  /** account scope: false when the user has no stored exchange credentials */
  hasCredentials?: boolean
}

/** cached snapshots of the topic are void (credentials changed or deleted) */
export interface ResetEvent {
  kind: 'reset'
  reason: string
}

export type UpstreamEvent = SnapshotEvent | FreshEvent | StatusEvent | ResetEvent

/**
 * hub → producers. `key` is a userId, or 'ticker'.
 * watch/unwatch are edges of one node's interest (the hub already applied the grace period);
 * watch also asks the producer to replay its latest state so a fresh cache is filled at once.
 */
export interface ControlEvent {
  /** credentials: the user's stored exchange credentials changed or were deleted */
  kind: 'watch' | 'unwatch' | 'refresh' | 'credentials'
  key: string
  /**
   * watch only: the epoch the producer must publish under from now on (the Redis bus passes the lease's fencing
   * generation, see README "Epochs and fencing"). A running producer whose epoch is lower switches to it (seq
   * numbering continues) before it replays. Absent (in-process bus): the producer picks a local epoch.
   */
  epoch?: number
}

/**
 * Session changes every node must apply to its open sockets (published on SESSIONS_TOPIC): a token revoked at
 * logout, or a user whose sockets must close (account deleted, exchange credentials deleted).
 */
export type SessionEvent = { kind: 'revoke'; userId: string; tokenHash: string } | { kind: 'forbid'; userId: string; reason: string }

export const SESSIONS_TOPIC = 'sessions'

export type BusEvent = UpstreamEvent | ControlEvent | SessionEvent

const UPSTREAM_KINDS = new Set(['snapshot', 'fresh', 'status', 'reset'])
export const isUpstreamEvent = (e: BusEvent): e is UpstreamEvent => UPSTREAM_KINDS.has(e.kind)
export type BusHandler<E extends BusEvent = BusEvent> = (event: E, topic: string) => void

export interface Bus {
  publish(topic: string, event: BusEvent): void
  /** returns the unsubscribe function */
  subscribe(topic: string, handler: BusHandler): () => void
  close(): Promise<void>
}

/** synchronous, in-process fan-out; a handler that throws is isolated from the others */
export class InProcessBus implements Bus {
  private readonly topics = new Map<string, Set<BusHandler>>()
  constructor(private readonly onHandlerError: (err: unknown, topic: string) => void = () => {}) {}

  publish(topic: string, event: BusEvent): void {
    const handlers = this.topics.get(topic)
    if (!handlers) return
    for (const h of handlers) {
      try {
        h(event, topic)
      } catch (err) {
        this.onHandlerError(err, topic)
      }
    }
  }

  subscribe(topic: string, handler: BusHandler): () => void {
    let set = this.topics.get(topic)
    if (!set) this.topics.set(topic, (set = new Set()))
    set.add(handler)
    return () => {
      const s = this.topics.get(topic)
      if (!s) return
      s.delete(handler)
      if (s.size === 0) this.topics.delete(topic)
    }
  }

  /** number of topics with at least one subscriber (tests check nothing leaks) */
  get topicCount(): number {
    return this.topics.size
  }

  async close(): Promise<void> {
    this.topics.clear()
  }
}
