/**
 * Poll ownership, kept apart from pub/sub (`Bus`): which node's producers run a key (an account, or 'ticker').
 *
 * The hub states demand by publishing `watch`/`unwatch` on CONTROL_TOPIC; the producers of a node listen on
 * CONTROL_TOPIC. `OwnedBus` is the `Bus` both see: it hands the demand edges to an `Ownership` and delivers the
 * ownership's grants (`watch` with the fencing epoch) and revocations (`unwatch`) to this node's producers; every
 * other event — upstream events, sessions, and the `refresh`/`credentials` control events — is plain pub/sub on
 * the underlying bus, so `publish` means the same on every bus: every subscriber of the topic, on every node,
 * gets the event once.
 *
 * In one process no ownership is needed: InProcessBus delivers watch/unwatch straight to the producers (every
 * demand granted at once, no epoch: the producer picks a local one). Implementations for several processes:
 *   - `RedisLeases` (redis-bus.ts): leases in Redis, one producer per key across machines;
 *   - `IpcLeases` (cluster-bus.ts): the cluster primary is the lease authority for the workers of one machine.
 */
import { CONTROL_TOPIC, type Bus, type BusEvent, type BusHandler, type ControlEvent } from './bus.ts'

/** what a node's producers are told: run the key under `epoch` (watch; again = replay) or stop (unwatch) */
export type OwnershipEvent = { kind: 'watch'; key: string; epoch?: number } | { kind: 'unwatch'; key: string }

export interface Ownership {
  /**
   * this node's demand for `key` starts; sent again while it lasts, it asks the key's producer (wherever it runs)
   * to replay its latest state
   */
  want(key: string): void
  /** this node's demand for `key` ended (the hub already applied the grace period) */
  unwant(key: string): void
  /** where grants and revocations for this node's producers go (set once, by OwnedBus) */
  attach(emit: (e: OwnershipEvent) => void): void
  close(): Promise<void>
}

/** the Bus the hub and producers use: pub/sub from `pubsub`, watch/unwatch through `ownership` */
export class OwnedBus implements Bus {
  /** CONTROL_TOPIC handlers: this node's producers (and test recorders) */
  private readonly controlHandlers = new Set<BusHandler>()

  constructor(
    readonly pubsub: Bus,
    readonly ownership: Ownership,
    private readonly onHandlerError: (err: unknown, topic: string) => void = () => {},
  ) {
    ownership.attach((e) => this.toProducers(e))
  }

  publish(topic: string, event: BusEvent): void {
    if (topic === CONTROL_TOPIC && (event.kind === 'watch' || event.kind === 'unwatch')) {
      const key = event.key
      if (typeof key !== 'string') return
      if (event.kind === 'watch') this.ownership.want(key)
      else this.ownership.unwant(key)
      return
    }
    this.pubsub.publish(topic, event)
  }

  subscribe(topic: string, handler: BusHandler): () => void {
    if (topic !== CONTROL_TOPIC) return this.pubsub.subscribe(topic, handler)
    // refresh/credentials arrive through pub/sub (from every node); watch/unwatch only from the ownership
    const filtered: BusHandler = (e, t) => {
      if (e.kind !== 'watch' && e.kind !== 'unwatch') handler(e, t)
    }
    const off = this.pubsub.subscribe(CONTROL_TOPIC, filtered)
    this.controlHandlers.add(handler)
    return () => {
      off()
      this.controlHandlers.delete(handler)
    }
  }

  async close(): Promise<void> {
    await this.ownership.close()
    this.controlHandlers.clear()
    await this.pubsub.close()
  }

  private toProducers(e: OwnershipEvent): void {
    const event: ControlEvent =
      e.kind === 'watch' && e.epoch !== undefined ? { kind: 'watch', key: e.key, epoch: e.epoch } : { kind: e.kind, key: e.key }
    for (const h of [...this.controlHandlers]) {
      try {
        h(event, CONTROL_TOPIC)
      } catch (err) {
        this.onHandlerError(err, CONTROL_TOPIC)
      }
    }
  }
}
