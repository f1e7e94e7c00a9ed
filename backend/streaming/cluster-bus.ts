/**
 * The in-host bus of a gateway run as several processes on one machine (`WORKERS`, node:cluster), without Redis.
 *
 * Workers talk only to the primary, over the cluster's IPC channel:
 *   - pub/sub (`IpcPubSub`): a publish is delivered to the worker's own handlers at once and sent to the primary
 *     once as `{ topic, data: JSON }`; the primary (`ClusterRelay`) forwards that string, untouched, to every
 *     other worker subscribed to the topic, which parses it and delivers it. Subscriptions are reference-counted
 *     per topic in the worker, so the primary only hears the first subscribe and the last unsubscribe. The
 *     payloads are the same events the Redis bus carries.
 *   - ownership (`IpcLeases` ↔ `LeaseAuthority`): the primary is the lease authority of the machine. A worker's
 *     hub states demand (`want`/`unwant`); the authority grants each key (an account, or 'ticker') to one worker
 *     with demand, under a new **generation** (the fencing epoch, `max(previous + 1, now, floor + 1)`), and keeps
 *     it there while any worker has demand. A newcomer's demand makes the holder replay (a grant again, same
 *     generation); when no worker wants the key any more the holder's producer is told to stop. A worker that
 *     dies loses its demand at once and its keys are granted to another worker that wants them, under a higher
 *     generation, so every cache takes the new producer's data.
 * IPC between a worker and the primary is ordered, so a worker's subscribe always reaches the primary before its
 * demand, and the replay its demand triggers finds the subscription in place.
 */
import { TICKER_TOPIC, accountTopic, type Bus, type BusEvent, type BusHandler } from './bus.ts'
import { OwnedBus, type Ownership, type OwnershipEvent } from './ownership.ts'
import { silentLog, type Log } from './sources.ts'

/** worker → primary */
export type ToPrimary =
  | { lnm: 'sub'; topic: string }
  | { lnm: 'unsub'; topic: string }
  | { lnm: 'pub'; topic: string; data: string }
  | { lnm: 'want'; key: string; floor: number }
  | { lnm: 'unwant'; key: string }
  | { lnm: 'metrics'; id: number }
  /** one hit on a fixed-window counter of the machine (rate limits, login attempts) */
  | { lnm: 'hit'; id: number; key: string; windowMs: number }
  /** the worker's bus closes: its demand ends and the keys it holds go to other workers at once */
  | { lnm: 'leave' }

/** primary → worker */
export type ToWorker =
  | { lnm: 'msg'; topic: string; data: string }
  | { lnm: 'grant'; key: string; epoch: number }
  | { lnm: 'revoke'; key: string }
  | { lnm: 'metrics'; id: number; body: string; contentType: string; error?: string }
  | { lnm: 'hit'; id: number; count: number; ttlMs: number }
  | { lnm: 'shutdown' }

export const isLnmMessage = (m: unknown): m is { lnm: string } =>
  typeof m === 'object' && m !== null && typeof (m as { lnm?: unknown }).lnm === 'string'

const keyOfTopic = (topic: string): string | null =>
  topic === TICKER_TOPIC ? 'ticker' : topic.startsWith('account:') ? topic.slice(8) : null
export const topicOfKey = (key: string): string => (key === 'ticker' ? TICKER_TOPIC : accountTopic(key))

/** the worker's end of the IPC channel (process.send / process.on('message') in a cluster worker) */
export interface IpcPort {
  send(m: ToPrimary): void
  onMessage(handler: (m: ToWorker) => void): () => void
}

export function processPort(): IpcPort {
  return {
    send: (m) => {
      if (process.connected) process.send?.(m)
    },
    onMessage: (handler) => {
      const h = (m: unknown) => {
        if (isLnmMessage(m)) handler(m as ToWorker)
      }
      process.on('message', h)
      return () => process.off('message', h)
    },
  }
}

/** a worker's pub/sub: local delivery at once, everything else through the primary */
export class IpcPubSub implements Bus {
  private readonly topics = new Map<string, Set<BusHandler>>()
  /** the highest epoch delivered per key on this worker (the fence floor sent with demand) */
  readonly floors = new Map<string, number>()
  private closed = false

  constructor(
    private readonly port: IpcPort,
    private readonly onHandlerError: (err: unknown, topic: string) => void = () => {},
    private readonly log: Log = silentLog,
  ) {}

  publish(topic: string, event: BusEvent): void {
    if (this.closed) return
    this.deliver(topic, event)
    this.port.send({ lnm: 'pub', topic, data: JSON.stringify(event) })
  }

  subscribe(topic: string, handler: BusHandler): () => void {
    let set = this.topics.get(topic)
    if (!set) {
      this.topics.set(topic, (set = new Set()))
      if (!this.closed) this.port.send({ lnm: 'sub', topic })
    }
    set.add(handler)
    const s = set
    let done = false
    return () => {
      if (done) return
      done = true
      s.delete(handler)
      if (s.size === 0 && this.topics.get(topic) === s) {
        this.topics.delete(topic)
        if (!this.closed) this.port.send({ lnm: 'unsub', topic })
      }
    }
  }

  /** a message relayed by the primary */
  receive(topic: string, data: string): void {
    if (this.closed || !this.topics.has(topic)) return
    let event: BusEvent | null
    try {
      event = JSON.parse(data) as BusEvent | null
    } catch {
      this.log.warn({ topic }, 'cluster bus: unparsable message dropped')
      return
    }
    if (!event || typeof event.kind !== 'string') return
    this.deliver(topic, event)
  }

  get topicCount(): number {
    return this.topics.size
  }

  async close(): Promise<void> {
    this.closed = true
    this.topics.clear()
  }

  private deliver(topic: string, event: BusEvent): void {
    if (event.kind === 'snapshot' || event.kind === 'fresh') {
      const key = keyOfTopic(topic)
      if (key !== null && event.epoch > (this.floors.get(key) ?? 0)) this.floors.set(key, event.epoch)
    }
    const handlers = this.topics.get(topic)
    if (!handlers) return
    for (const h of [...handlers]) {
      try {
        h(event, topic)
      } catch (err) {
        this.onHandlerError(err, topic)
      }
    }
  }
}

/** a worker's ownership: demand to the primary, its grants and revocations to this worker's producers */
export class IpcLeases implements Ownership {
  private emit: (e: OwnershipEvent) => void = () => {}
  private readonly wanted = new Set<string>()
  /** keys this worker's producers run (granted, not revoked) */
  readonly holding = new Set<string>()
  private closed = false

  constructor(
    private readonly port: IpcPort,
    private readonly floors: Map<string, number>,
  ) {}

  attach(emit: (e: OwnershipEvent) => void): void {
    this.emit = emit
  }

  want(key: string): void {
    if (this.closed) return
    this.wanted.add(key)
    this.port.send({ lnm: 'want', key, floor: this.floors.get(key) ?? 0 })
  }

  unwant(key: string): void {
    if (this.closed || !this.wanted.delete(key)) return
    this.port.send({ lnm: 'unwant', key })
  }

  grant(key: string, epoch: number): void {
    if (this.closed) return
    this.holding.add(key)
    this.emit({ kind: 'watch', key, epoch })
  }

  revoke(key: string): void {
    if (!this.holding.delete(key)) return
    this.emit({ kind: 'unwatch', key })
  }

  /** the worker stops: its demand ends and its keys move to other workers (the primary also does it when the worker exits) */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.wanted.clear()
    this.port.send({ lnm: 'leave' })
  }
}

/** the worker's Bus: IpcPubSub + IpcLeases over one IPC port */
export class ClusterBus extends OwnedBus {
  declare readonly pubsub: IpcPubSub
  declare readonly ownership: IpcLeases
  private readonly off: () => void

  constructor(port: IpcPort = processPort(), opts: { log?: Log; onHandlerError?: (err: unknown, topic: string) => void } = {}) {
    const pubsub = new IpcPubSub(port, opts.onHandlerError, opts.log)
    const leases = new IpcLeases(port, pubsub.floors)
    super(pubsub, leases, opts.onHandlerError)
    this.off = port.onMessage((m) => {
      switch (m.lnm) {
        case 'msg':
          return pubsub.receive(m.topic, m.data)
        case 'grant':
          return leases.grant(m.key, m.epoch)
        case 'revoke':
          return leases.revoke(m.key)
        case 'metrics': // answered by the worker's metrics route, which waits for it
        case 'hit': // answered by ClusterAttempts, which waits for it
        case 'shutdown': // handled by backend/cluster.ts in the worker
          return
      }
    })
  }

  override async close(): Promise<void> {
    await super.close()
    this.off()
  }

  /** introspection (tests, diagnostics) */
  stats(): { holding: string[]; topics: number } {
    return { holding: [...this.ownership.holding], topics: this.pubsub.topicCount }
  }
}

// ------------------------------------------------------------------------------------------------ primary

interface Lease {
  /** workers whose hub wants the key */
  readonly demand: Set<number>
  holder: number | null
  gen: number
}

/**
 * The primary's lease authority: one producer per key for the whole machine. Pure (no processes): `send` delivers a
 * message to one worker, `now` is the clock of the generations.
 */
export class LeaseAuthority {
  private readonly leases = new Map<string, Lease>()

  constructor(
    private readonly send: (workerId: number, m: ToWorker) => void,
    private readonly now: () => number = Date.now,
    private readonly log: Log = silentLog,
  ) {}

  want(workerId: number, key: string, floor = 0): void {
    let l = this.leases.get(key)
    if (!l) this.leases.set(key, (l = { demand: new Set(), holder: null, gen: 0 }))
    l.demand.add(workerId)
    if (l.holder === null) this.grant(key, l, workerId, floor)
    // the holder's producer replays its latest state (for the newcomer's cache), under a higher generation only if
    // the asking worker has seen an epoch above the current one (as SYNC_LUA does with Redis)
    else if (floor > l.gen) this.grant(key, l, l.holder, floor)
    else this.send(l.holder, { lnm: 'grant', key, epoch: l.gen })
  }

  unwant(workerId: number, key: string): void {
    const l = this.leases.get(key)
    if (!l || !l.demand.delete(workerId)) return
    if (l.demand.size > 0) return
    if (l.holder !== null) this.send(l.holder, { lnm: 'revoke', key })
    // the entry stays (one small object per key ever watched): the next run's generation must be above this one's
    l.holder = null
  }

  /** a worker is gone: its demand ends and its keys go to another worker that wants them, at once */
  removeWorker(workerId: number): string[] {
    const moved: string[] = []
    for (const [key, l] of this.leases) {
      l.demand.delete(workerId)
      if (l.holder === workerId) {
        l.holder = null
        const next = l.demand.values().next()
        if (!next.done) {
          this.grant(key, l, next.value, 0)
          moved.push(key)
        }
      }
    }
    if (moved.length > 0)
      this.log.info({ worker: workerId, keys: moved.length }, 'cluster: a worker left, its keys were granted to other workers')
    return moved
  }

  holderOf(key: string): number | null {
    return this.leases.get(key)?.holder ?? null
  }

  generationOf(key: string): number {
    return this.leases.get(key)?.gen ?? 0
  }

  stats(): { held: number; byWorker: Record<number, number> } {
    const byWorker: Record<number, number> = {}
    let held = 0
    for (const l of this.leases.values()) {
      if (l.holder === null) continue
      held++
      byWorker[l.holder] = (byWorker[l.holder] ?? 0) + 1
    }
    return { held, byWorker }
  }

  private grant(key: string, l: Lease, workerId: number, floor: number): void {
    l.gen = Math.max(l.gen + 1, this.now(), floor + 1)
    l.holder = workerId
    this.send(workerId, { lnm: 'grant', key, epoch: l.gen })
  }
}

/** the primary's pub/sub relay: a worker's publish goes, as the same string, to every other subscribed worker */
export class ClusterRelay {
  private readonly subs = new Map<string, Set<number>>()

  constructor(private readonly send: (workerId: number, m: ToWorker) => void) {}

  subscribe(workerId: number, topic: string): void {
    let s = this.subs.get(topic)
    if (!s) this.subs.set(topic, (s = new Set()))
    s.add(workerId)
  }

  unsubscribe(workerId: number, topic: string): void {
    const s = this.subs.get(topic)
    if (!s) return
    s.delete(workerId)
    if (s.size === 0) this.subs.delete(topic)
  }

  publish(from: number, topic: string, data: string): void {
    const s = this.subs.get(topic)
    if (!s) return
    const m: ToWorker = { lnm: 'msg', topic, data }
    for (const id of s) if (id !== from) this.send(id, m)
  }

  removeWorker(workerId: number): void {
    for (const topic of [...this.subs.keys()]) this.unsubscribe(workerId, topic)
  }
}

/**
 * The primary's bus: a worker's pub/sub and lease messages go to the relay and the lease authority. Returns
 * false for the messages that are not the bus's (leave, hit, metrics): the caller answers those.
 */
export function routeBusMessage(relay: ClusterRelay, authority: LeaseAuthority, workerId: number, m: ToPrimary): boolean {
  switch (m.lnm) {
    case 'sub':
      relay.subscribe(workerId, m.topic)
      return true
    case 'unsub':
      relay.unsubscribe(workerId, m.topic)
      return true
    case 'pub':
      relay.publish(workerId, m.topic, m.data)
      return true
    case 'want':
      authority.want(workerId, m.key, m.floor)
      return true
    case 'unwant':
      authority.unwant(workerId, m.key)
      return true
    case 'leave':
    case 'hit':
    case 'metrics':
      return false
  }
}
