/**
 * The `Bus` over Redis, for several gateway nodes: one producer per key (account or ticker) across the cluster,
 * every node's hub receives every upstream event of the topics it watches. Pollers and hub are unchanged: they
 * talk to this bus exactly as they talk to the in-process one.
 *
 * Upstream events (snapshot/fresh/status/reset on `account:<id>` and `ticker`) are delivered to this node's
 * handlers synchronously (as in-process) and PUBLISHed on `<prefix>:t:<topic>`; every node SUBSCRIBEs to the
 * topics its handlers listen to (reference-counted) and drops its own messages, so a local publish is delivered
 * once, never twice. Messages are `<nodeId> <JSON event>`.
 *
 * The class is two parts sharing the two connections (ownership.ts): `RedisPubSub` (publish/subscribe: every
 * topic, CONTROL_TOPIC's refresh/credentials included, is plain pub/sub) and `RedisLeases` (poll ownership:
 * demand, leases, generations, fallback); `RedisBus` is the OwnedBus of the two.
 *
 * Control: the hub's 'watch'/'unwatch' are this node's demand edges. They never reach the local producers
 * directly; instead, per key:
 *   - demand is a sorted set `<prefix>:demand:<key>` of nodeId → expiry (Redis server time), refreshed while the
 *     node watches, so a crashed node's demand expires on its own;
 *   - a lease `<prefix>:lease:<key>` (SET NX PX, renewed by its holder, compare-and-renew/delete in one Lua
 *     script that also reads the live demand) picks the node whose producer gets the 'watch'. The holder keeps
 *     its producer running while ANY node has demand (even if it has none itself) and gives it the 'unwatch'
 *     only when cluster-wide demand is gone; another node with demand takes the lease over when it expires
 *     (the holder crashed or stalled), and the 'watch' to its producer replays/refills every cache;
 *   - every acquisition takes a new **generation** `<prefix>:gen:<key>` (the fencing token, see SYNC_LUA): the
 *     producer's 'watch' carries it as the epoch to publish under, and caches refuse older epochs, so a stalled
 *     or fenced-off producer's late messages never overwrite the current one's (README "Epochs and fencing");
 *   - a node whose demand starts while another node holds the lease broadcasts `demand` on `<prefix>:ctl`: the
 *     holder confirms its lease (the generation may have moved) and hands its producer a 'watch' again, which
 *     replays the latest state (after the newcomer's topic subscription is active, so nothing is lost);
 *   - 'refresh' and 'credentials' are published on CONTROL_TOPIC like any event and reach every node's producers
 *     (only the one running a poller acts; idle producers ignore them).
 * One op per key runs at a time (a promise chain), and the renew tick every `renewEveryMs` syncs every key this
 * node wants or holds.
 *
 * Redis trouble never crashes the node: ioredis reconnects and resubscribes (then this node asks the holders to
 * replay, since pub/sub messages may have been lost). When a key's state could not be confirmed in Redis for a
 * whole lease TTL (Redis gone, or hung: a stall keeps the connection 'ready'), the node falls back to local
 * production for the keys it watches itself (data keeps flowing, at the cost of one poller per node) under an
 * epoch above everything it has seen, and stops producing for the keys it only held for others. Fallback
 * events are delivered on this node only, never PUBLISHed. Once Redis answers again, leases are re-acquired
 * under a generation above every fallback epoch (each sync sends the highest epoch the node has seen: a lower
 * generation is bumped), so every cache takes the holder's data again without a reset; a node that lost the
 * contention stops its producer and asks the holder for a replay.
 *
 * Bounded buffering: a PUBLISH is only sent while the connection is ready, and at most `maxInflightPublishes`
 * wait for Redis' answer (a hung Redis answers nothing): beyond that, events stay local and the keys concerned
 * are replayed once the backlog drains. Lease syncs are one per key at a time and time out after a renew
 * period (`commandTimeout`); what a stall left in the socket reaches the other nodes on resume, where the
 * fence drops whatever an older generation produced.
 *
 * close() releases every lease and demand entry (other nodes take over at once); kill() (tests) drops the
 * connections without releasing, like a crash.
 */
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis, RedisOptions } from 'ioredis'
import { TICKER_TOPIC, accountTopic, type Bus, type BusEvent, type BusHandler } from './bus.ts'
import { OwnedBus, type Ownership, type OwnershipEvent } from './ownership.ts'
import { silentLog, type Log } from './sources.ts'
import { redisClass } from './ioredis.ts'

export interface RedisBusOptions {
  /** redis:// or rediss:// URL (without the `prefix` query parameter: see bus-factory) */
  url?: string
  /** extra ioredis options (tests) */
  redis?: RedisOptions
  /** namespace of every key and channel; several clusters (or test runs) can share one Redis */
  prefix?: string
  /** unique per process; default host:pid:random */
  nodeId?: string
  /** lease (and demand entry) lifetime; a crashed holder is replaced within about leaseTtlMs + renewEveryMs */
  leaseTtlMs?: number
  /** renew/sync period, default leaseTtlMs / 3 */
  renewEveryMs?: number
  /**
   * at most this many PUBLISHes awaiting Redis' answer; beyond it upstream events are not sent to Redis (local
   * delivery goes on) and the keys concerned are replayed once the backlog has drained. Default 1000.
   */
  maxInflightPublishes?: number
  log?: Log
  onHandlerError?: (err: unknown, topic: string) => void
  now?: () => number
}

type SyncState = 'acquired' | 'held' | 'released' | 'none' | 'other'
/** demand: another node asked for a replay (sync first: the generation may have been bumped) */
type Edge = 'watch' | 'unwatch' | 'tick' | 'demand'

interface KeyState {
  readonly key: string
  readonly topic: string
  /** this node's hub watches the key */
  local: boolean
  /** this node's producer has been given 'watch' (and not 'unwatch' since) */
  holder: boolean
  /** holder without a lease confirmed by Redis (Redis unreachable): its events stay on this node */
  fallback: boolean
  /** the key's lease generation as Redis last told us (ours when holder; 0: never heard) */
  gen: number
  /** the highest epoch delivered on the key's topic on this node (from any producer): sent to Redis as the fence */
  floor: number
  /** this node's cache may have missed events (reconnect, self-check): ask the holder for a replay at the next sync */
  wantsReplay: boolean
  /** when Redis last confirmed this node's view of the key (local clock, request send time) */
  okAt: number
  pending: number
  chain: Promise<void>
}

interface TopicSub {
  readonly handlers: Set<BusHandler>
  /** resolves once Redis confirmed the SUBSCRIBE (never rejects) */
  ready: Promise<void>
}

/**
 * KEYS[1] lease, KEYS[2] demand, KEYS[3] generation; ARGV: nodeId, leaseTtlMs, mode ('1' this node wants the
 * key, '-1' it does not), demandTtlMs, floor (the highest epoch this node has seen on the key's topic).
 * Returns { state, liveDemand, generation }.
 *
 * The generation is the fencing token: every acquisition sets it to max(previous + 1, Redis time in ms,
 * floor + 1), so it only grows (even across a Redis restart that lost it, as long as Redis' clock does not go
 * back) and always exceeds every epoch the acquiring node has seen. A node that has seen an epoch above the
 * current generation (it produced in fallback while Redis was away) bumps it the same way; the holder notices
 * at its next renewal and moves its producer to the new generation.
 */
const SYNC_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me = ARGV[1]
local ttl = tonumber(ARGV[2])
local floor = tonumber(ARGV[5])
local gen = tonumber(redis.call('GET', KEYS[3]) or '0')
local function bump()
  local g = gen + 1
  if now > g then g = now end
  if floor + 1 > g then g = floor + 1 end
  redis.call('SET', KEYS[3], string.format('%.0f', g), 'PX', 604800000)
  return g
end
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), me)
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]) * 2)
else
  redis.call('ZREM', KEYS[2], me)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local demand = redis.call('ZCARD', KEYS[2])
local holder = redis.call('GET', KEYS[1])
if holder == me then
  if demand == 0 then
    redis.call('DEL', KEYS[1])
    return {'released', 0}
  end
  redis.call('PEXPIRE', KEYS[1], ttl)
  if gen == 0 or floor > gen then
    gen = bump()
  else
    redis.call('PEXPIRE', KEYS[3], 604800000)
  end
  return {'held', demand, gen}
end
if not holder then
  if ARGV[3] == '1' then
    redis.call('SET', KEYS[1], me, 'PX', ttl)
    return {'acquired', demand, bump()}
  end
  return {'none', demand, gen}
end
if floor > gen then gen = bump() end
return {'other', demand, gen}
`

/** KEYS[1] lease, KEYS[2] demand; ARGV[1] nodeId. Returns 1 when the lease was ours. */
const RELEASE_LUA = `
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`

type CtlKind = 'demand' | 'check' | 'released'
interface CtlMessage {
  k: CtlKind
  key: string
}

type ScriptedRedis = Redis & {
  lnmSync(
    lease: string,
    demand: string,
    gen: string,
    me: string,
    ttl: number,
    mode: string,
    demandTtl: number,
    floor: number,
  ): Promise<[SyncState, number, number]>
  lnmRelease(lease: string, demand: string, me: string): Promise<number>
}

const topicOfKey = (key: string): string => (key === 'ticker' ? TICKER_TOPIC : accountTopic(key))
const keyOfTopic = (topic: string): string | null =>
  topic === TICKER_TOPIC ? 'ticker' : topic.startsWith('account:') ? topic.slice(8) : null

/** what the pub/sub half needs from the ownership half (they share the node's view of each key) */
interface PubSubHooks {
  /** events of this topic stay on this node (its producer runs in fallback) */
  localOnly(topic: string): boolean
  /** an upstream event was delivered on this node (the fence floor) */
  delivered(topic: string, event: BusEvent): void
  /** the publish backlog drained: these keys' events were kept off Redis, their producers replay */
  drained(keys: string[]): void
  /** the subscriber reconnected: resubscribe the ownership's channels, then ask for replays */
  resubscribe(): Promise<void>
  reconnected(): void
}

/**
 * Pub/sub over Redis: upstream events delivered locally at once and PUBLISHed as `<nodeId> <JSON>` on
 * `<prefix>:t:<topic>`; SUBSCRIBEs reference-counted per topic; own messages dropped; bounded in-flight publishes.
 */
export class RedisPubSub implements Bus {
  private readonly topics = new Map<string, TopicSub>()
  private readonly topicChannelPrefix: string
  private readonly maxInflight: number
  /** PUBLISHes sent and not yet answered */
  private inflight = 0
  /** keys whose events were kept off Redis by the in-flight cap: replayed once the backlog has drained */
  private readonly skipped = new Set<string>()
  /** upstream events not sent to Redis because of the cap (tests, diagnostics) */
  droppedPublishes = 0
  closed = false
  private subWasReady = false
  private pubDown = false
  private subDown = false
  hooks: PubSubHooks = {
    localOnly: () => false,
    delivered: () => {},
    drained: () => {},
    resubscribe: async () => {},
    reconnected: () => {},
  }

  constructor(
    readonly nodeId: string,
    prefix: string,
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly log: Log,
    private readonly onHandlerError: (err: unknown, topic: string) => void,
    maxInflightPublishes: number,
  ) {
    this.topicChannelPrefix = `${prefix}:t:`
    this.maxInflight = Math.max(1, maxInflightPublishes)
    this.pub.on('error', (err: Error) => {
      if (!this.pubDown)
        this.log.warn({ err: { message: err.message }, node: this.nodeId }, 'redis bus: publisher connection error (reconnecting)')
      this.pubDown = true
    })
    this.pub.on('ready', () => {
      if (this.pubDown) this.log.info({ node: this.nodeId }, 'redis bus: publisher reconnected')
      this.pubDown = false
    })
    this.sub.on('error', (err: Error) => {
      if (!this.subDown)
        this.log.warn({ err: { message: err.message }, node: this.nodeId }, 'redis bus: subscriber connection error (reconnecting)')
      this.subDown = true
    })
    this.sub.on('ready', () => {
      if (this.subDown) this.log.info({ node: this.nodeId }, 'redis bus: subscriber reconnected')
      this.subDown = false
      if (this.subWasReady) this.afterReconnect()
      this.subWasReady = true
    })
    this.sub.on('message', (channel: string, message: string) => this.onMessage(channel, message))
  }

  publish(topic: string, event: BusEvent): void {
    if (this.closed) return
    this.deliver(topic, event)
    // a fallback producer's events stay on this node: they must never reach (and outrank) another node's cache
    if (this.hooks.localOnly(topic)) return
    if (this.pub.status !== 'ready') return // never queue upstream data: it would arrive late and stale
    const key = keyOfTopic(topic)
    if (this.inflight >= this.maxInflight) {
      // Redis does not answer (a stall): bound what waits in the socket; the holder replays once it drains
      if (this.droppedPublishes++ === 0 || this.skipped.size === 0)
        this.log.warn(
          { node: this.nodeId, inflight: this.inflight },
          'redis bus: Redis does not answer, upstream events kept off it until it does',
        )
      if (key !== null) this.skipped.add(key)
      return
    }
    this.inflight++
    this.pub
      .publish(this.topicChannelPrefix + topic, `${this.nodeId} ${JSON.stringify(event)}`)
      .catch((err: unknown) => {
        this.log.debug({ err, topic }, 'redis bus: publish failed')
      })
      .finally(() => {
        this.inflight--
        if (this.inflight === 0 && this.skipped.size > 0) {
          const keys = [...this.skipped]
          this.skipped.clear()
          this.hooks.drained(keys)
        }
      })
  }

  subscribe(topic: string, handler: BusHandler): () => void {
    let s = this.topics.get(topic)
    if (!s) {
      const channel = this.topicChannelPrefix + topic
      s = { handlers: new Set(), ready: Promise.resolve() }
      s.ready = this.closed
        ? Promise.resolve()
        : this.sub.subscribe(channel).then(
            () => {},
            (err: unknown) => this.log.warn({ err, topic }, 'redis bus: subscribe failed (retried on reconnect)'),
          )
      this.topics.set(topic, s)
    }
    s.handlers.add(handler)
    const sub = s
    let done = false
    return () => {
      if (done) return
      done = true
      sub.handlers.delete(handler)
      if (sub.handlers.size === 0 && this.topics.get(topic) === sub) {
        this.topics.delete(topic)
        if (!this.closed) this.sub.unsubscribe(this.topicChannelPrefix + topic).catch(() => {})
      }
    }
  }

  /** the connections are closed by RedisBus (shared with the leases) */
  async close(): Promise<void> {
    this.closed = true
    this.topics.clear()
  }

  get topicCount(): number {
    return this.topics.size
  }

  /** resolves once this node's Redis subscription to `topic` is active */
  subscribed(topic: string): Promise<void> {
    return this.topics.get(topic)?.ready ?? Promise.resolve()
  }

  /** resolves once every current topic subscription is active */
  allSubscribed(): Promise<void> {
    return Promise.all([...this.topics.values()].map((s) => s.ready)).then(() => {})
  }

  private deliver(topic: string, event: BusEvent): void {
    this.hooks.delivered(topic, event)
    const handlers = this.topics.get(topic)?.handlers
    if (!handlers) return
    for (const h of handlers) {
      try {
        h(event, topic)
      } catch (err) {
        this.onHandlerError(err, topic)
      }
    }
  }

  private onMessage(channel: string, message: string): void {
    if (this.closed || !channel.startsWith(this.topicChannelPrefix)) return
    const sp = message.indexOf(' ')
    if (sp <= 0) return
    if (message.slice(0, sp) === this.nodeId) return // our own publish: already delivered locally
    let event: BusEvent | null
    try {
      event = JSON.parse(message.slice(sp + 1)) as BusEvent | null
    } catch {
      this.log.warn({ channel }, 'redis bus: unparsable message dropped')
      return
    }
    if (!event || typeof event.kind !== 'string') return
    this.deliver(channel.slice(this.topicChannelPrefix.length), event)
  }

  /**
   * After a reconnect: subscribe again to everything (ioredis resubscribes what it had confirmed; this also
   * covers subscriptions issued while disconnected), then, since pub/sub messages may have been lost, the
   * leases ask the holders of what we watch for a replay.
   */
  private afterReconnect(): void {
    const channels = [...this.topics.keys()].map((t) => this.topicChannelPrefix + t)
    Promise.all([channels.length > 0 ? this.sub.subscribe(...channels) : undefined, this.hooks.resubscribe()]).then(
      () => {
        if (!this.closed) this.hooks.reconnected()
      },
      (err: unknown) => this.log.warn({ err, node: this.nodeId }, 'redis bus: resubscribe failed'),
    )
  }
}

/** Poll ownership over Redis: demand, leases, fencing generations, fallback (the class comment above) */
export class RedisLeases implements Ownership {
  private readonly keys = new Map<string, KeyState>()
  private readonly ctlChannel: string
  private timer: NodeJS.Timeout | null = null
  private closed = false
  private emit: (e: OwnershipEvent) => void = () => {}
  readonly ready: Promise<void>

  constructor(
    readonly nodeId: string,
    private readonly prefix: string,
    private readonly pub: ScriptedRedis,
    private readonly sub: Redis,
    private readonly pubsub: RedisPubSub,
    readonly leaseTtlMs: number,
    readonly renewEveryMs: number,
    private readonly log: Log,
    private readonly now: () => number,
  ) {
    this.ctlChannel = `${prefix}:ctl`
    this.sub.on('message', (channel: string, message: string) => {
      if (channel === this.ctlChannel) this.onMessage(message)
    })
    pubsub.hooks = {
      localOnly: (topic) => {
        const key = keyOfTopic(topic)
        return key !== null && (this.keys.get(key)?.fallback ?? false)
      },
      delivered: (topic, event) => {
        if (event.kind !== 'snapshot' && event.kind !== 'fresh') return
        const key = keyOfTopic(topic)
        const k = key === null ? undefined : this.keys.get(key)
        if (k && event.epoch > k.floor) k.floor = event.epoch
      },
      drained: (keys) => {
        for (const key of keys) {
          const k = this.keys.get(key)
          if (k?.holder && !k.fallback) this.control('watch', key, k.gen || undefined)
        }
      },
      resubscribe: () => this.sub.subscribe(this.ctlChannel).then(() => {}),
      reconnected: () => this.afterReconnect(),
    }
    this.ready = this.sub.subscribe(this.ctlChannel).then(
      () => {},
      (err: unknown) => this.log.warn({ err, node: this.nodeId }, 'redis bus: control subscription failed (retried on reconnect)'),
    )
    this.timer = setInterval(() => this.tick(), this.renewEveryMs)
    this.timer.unref()
  }

  attach(emit: (e: OwnershipEvent) => void): void {
    this.emit = emit
  }

  want(key: string): void {
    if (this.closed) return
    const k = this.state(key)
    k.local = true
    this.enqueue(k, 'watch')
  }

  unwant(key: string): void {
    if (this.closed) return
    const k = this.keys.get(key)
    if (!k || !k.local) return
    k.local = false
    this.enqueue(k, 'unwatch')
  }

  /** releases every lease and demand entry (other nodes take over at once) */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    // let the hub's last unwatch edges settle, then give up every lease and demand entry we still have
    await this.settle(Math.max(1000, this.leaseTtlMs))
    const keys = [...this.keys.values()]
    this.keys.clear()
    if (keys.length > 0 && this.pub.status === 'ready') {
      await Promise.allSettled(
        keys.map(async (k) => {
          const held = await this.pub.lnmRelease(this.leaseKey(k.key), this.demandKey(k.key), this.nodeId)
          if (held === 1) await this.sendCtl('released', k.key)
        }),
      )
    }
  }

  /** tests: vanish like a crashed node (no release) */
  kill(): void {
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    this.keys.clear()
  }

  stats(): { watching: string[]; holding: string[]; fallback: string[] } {
    const ks = [...this.keys.values()]
    return {
      watching: ks.filter((k) => k.local).map((k) => k.key),
      holding: ks.filter((k) => k.holder).map((k) => k.key),
      fallback: ks.filter((k) => k.fallback).map((k) => k.key),
    }
  }

  isHolder(key: string): boolean {
    return this.keys.get(key)?.holder ?? false
  }

  /** resolves when every queued per-key op has finished (or after timeoutMs) */
  async settle(timeoutMs = 5000): Promise<void> {
    const deadline = this.now() + timeoutMs
    while (this.now() < deadline) {
      const busy = [...this.keys.values()].filter((k) => k.pending > 0)
      if (busy.length === 0) return
      await Promise.race([
        Promise.allSettled(busy.map((k) => k.chain)),
        sleep(Math.max(1, deadline - this.now()), undefined, { ref: false }),
      ])
    }
  }

  /** to this node's producers */
  private control(kind: 'watch' | 'unwatch', key: string, epoch?: number): void {
    this.emit(kind === 'watch' ? (epoch === undefined ? { kind, key } : { kind, key, epoch }) : { kind, key })
  }

  private state(key: string): KeyState {
    let k = this.keys.get(key)
    if (!k) {
      k = {
        key,
        topic: topicOfKey(key),
        local: false,
        holder: false,
        fallback: false,
        gen: 0,
        floor: 0,
        wantsReplay: false,
        okAt: this.now(),
        pending: 0,
        chain: Promise.resolve(),
      }
      this.keys.set(key, k)
    }
    return k
  }

  private enqueue(k: KeyState, edge: Edge): void {
    if (this.closed && edge !== 'unwatch') return
    k.pending++
    k.chain = k.chain
      .then(() => this.sync(k, edge))
      .catch((err: unknown) => this.log.error({ err, key: k.key }, 'redis bus: sync failed'))
      .finally(() => {
        k.pending--
        if (k.pending === 0 && !k.local && !k.holder && this.keys.get(k.key) === k) this.keys.delete(k.key)
      })
  }

  private async sync(k: KeyState, edge: Edge): Promise<void> {
    if (edge === 'watch') {
      // the replay the holder sends must find our topic subscription active
      await Promise.race([this.pubsub.subscribed(k.topic), sleep(this.renewEveryMs, undefined, { ref: false })])
    }
    if (this.closed && edge !== 'unwatch') return
    const sent = this.now()
    let state: SyncState
    let gen: number
    try {
      ;[state, , gen] = await this.pub.lnmSync(
        this.leaseKey(k.key),
        this.demandKey(k.key),
        this.genKey(k.key),
        this.nodeId,
        this.leaseTtlMs,
        k.local ? '1' : '-1',
        this.leaseTtlMs,
        k.floor,
      )
    } catch (err) {
      this.log.debug({ err, key: k.key }, 'redis bus: lease sync failed')
      if (edge === 'unwatch' && k.holder && !k.local && (this.closed || this.pub.status !== 'ready')) {
        // cannot tell whether others still need it; they fall back to their own producers if Redis is gone
        this.demote(k)
      }
      return
    }
    k.okAt = sent
    const prevGen = k.gen
    k.gen = gen
    if (this.closed && edge !== 'unwatch') return
    switch (state) {
      case 'acquired':
      case 'held': {
        const wasFallback = k.fallback
        if (wasFallback)
          this.log.info({ key: k.key, node: this.nodeId, generation: gen }, 'redis bus: lease confirmed, back to cluster mode')
        k.fallback = false
        if (!k.holder) {
          k.holder = true
          this.log.debug({ key: k.key, node: this.nodeId, generation: gen }, 'redis bus: lease acquired, producer starts')
          this.control('watch', k.key, gen)
        } else if (edge === 'watch' || edge === 'demand' || wasFallback || gen !== prevGen) {
          // a new generation (fencing): the producer moves to it and replays under it; otherwise a replay for a
          // fresh cache (our hub's, or another node's that asked)
          if (gen !== prevGen)
            this.log.info(
              { key: k.key, node: this.nodeId, generation: gen, previous: prevGen },
              'redis bus: new lease generation, producer moves to it',
            )
          this.control('watch', k.key, gen)
        }
        return
      }
      case 'released':
      case 'none':
        if (k.holder) this.demote(k)
        return
      case 'other':
        if (k.holder) {
          // someone else produces this key now (we stalled, or both ran while Redis was away). No cache reset:
          // the holder's generation (bumped above anything we produced, see SYNC_LUA) replaces our data
          this.log.info(
            { key: k.key, node: this.nodeId, fallback: k.fallback, generation: gen },
            'redis bus: lease held elsewhere, producer stops',
          )
          this.demote(k)
          if (k.local) await this.sendCtl('demand', k.key)
        } else if ((edge === 'watch' || gen !== prevGen || k.wantsReplay) && k.local) {
          k.wantsReplay = false
          await this.sendCtl('demand', k.key)
        } else if (edge === 'unwatch') {
          await this.sendCtl('check', k.key)
        }
        return
    }
  }

  private demote(k: KeyState): void {
    k.holder = false
    k.fallback = false
    this.control('unwatch', k.key)
  }

  private tick(): void {
    if (this.closed) return
    const now = this.now()
    for (const k of this.keys.values()) {
      if (k.pending === 0) this.enqueue(k, 'tick')
      if (now - k.okAt <= this.leaseTtlMs) continue
      // Redis has not confirmed anything about this key for a whole lease TTL
      if (k.local && !k.holder) {
        // an epoch above everything this node has seen, so its own cache takes the local data; its events stay
        // on this node, and the generation taken once Redis answers again is above it (SYNC_LUA's floor)
        const epoch = Math.max(now, k.floor + 1, k.gen + 1)
        this.log.warn({ key: k.key, node: this.nodeId, epoch }, 'redis bus: Redis unreachable, producing locally until it is back')
        k.holder = true
        k.fallback = true
        this.control('watch', k.key, epoch)
      } else if (!k.local && k.holder) {
        this.log.warn({ key: k.key, node: this.nodeId }, 'redis bus: Redis unreachable, stop producing for other nodes')
        this.demote(k)
      }
    }
  }

  // ------------------------------------------------------------------ Redis → this node

  private onMessage(message: string): void {
    if (this.closed) return
    const sp = message.indexOf(' ')
    if (sp <= 0) return
    if (message.slice(0, sp) === this.nodeId) return // our own message
    let m: CtlMessage | null
    try {
      m = JSON.parse(message.slice(sp + 1)) as CtlMessage | null
    } catch {
      this.log.warn({ channel: this.ctlChannel }, 'redis bus: unparsable message dropped')
      return
    }
    if (!m || typeof m.key !== 'string') return
    const k = this.keys.get(m.key)
    switch (m.k) {
      case 'demand':
        // a node started watching, or came back from fallback: confirm the lease (its generation may have been
        // bumped above what that node produced meanwhile), then our producer replays under it
        if (k?.holder && k.pending < 2) this.enqueue(k, 'demand')
        return
      case 'check':
        if (k?.holder && k.pending === 0) this.enqueue(k, 'tick')
        return
      case 'released':
        if (k?.local && !k.holder && k.pending === 0) this.enqueue(k, 'tick')
        return
    }
  }

  /** pub/sub messages may have been lost while the subscriber was away: ask the holders of what we watch for a replay */
  private afterReconnect(): void {
    if (this.closed) return
    for (const k of this.keys.values()) {
      if (!k.local || k.holder) continue
      // sent now if the publisher is up, and by the next sync otherwise
      k.wantsReplay = true
      if (k.pending === 0) this.enqueue(k, 'tick')
    }
  }

  private async sendCtl(kind: CtlKind, key: string): Promise<void> {
    if (this.pub.status !== 'ready') return
    try {
      await this.pub.publish(this.ctlChannel, `${this.nodeId} ${JSON.stringify({ k: kind, key } satisfies CtlMessage)}`)
    } catch (err) {
      this.log.debug({ err, kind, key }, 'redis bus: control publish failed')
    }
  }

  private leaseKey(key: string): string {
    return `${this.prefix}:lease:${key}`
  }

  private demandKey(key: string): string {
    return `${this.prefix}:demand:${key}`
  }

  private genKey(key: string): string {
    return `${this.prefix}:gen:${key}`
  }
}

/** the Redis Bus: pub/sub (RedisPubSub) and poll ownership (RedisLeases) on two shared connections */
export class RedisBus extends OwnedBus {
  readonly nodeId: string
  readonly prefix: string
  readonly leaseTtlMs: number
  readonly renewEveryMs: number
  declare readonly pubsub: RedisPubSub
  declare readonly ownership: RedisLeases
  private readonly pubConn: ScriptedRedis
  private readonly subConn: Redis
  private readonly ready: Promise<void>
  private closing = false

  constructor(opts: RedisBusOptions = {}) {
    const nodeId = (opts.nodeId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`).replace(/\s/g, '_')
    const prefix = opts.prefix ?? 'lnm-gw'
    const leaseTtlMs = Math.max(200, opts.leaseTtlMs ?? 5000)
    const renewEveryMs = Math.max(50, Math.min(opts.renewEveryMs ?? Math.floor(leaseTtlMs / 3), Math.floor(leaseTtlMs / 2)))
    const log = opts.log ?? silentLog
    const onHandlerError = opts.onHandlerError ?? ((err: unknown, topic: string) => log.error({ err, topic }, 'bus handler failed'))
    const base: RedisOptions = {
      retryStrategy: (times) => Math.min(100 * times, 2000),
      connectionName: `lnm-gw:${nodeId}`,
      ...opts.redis,
    }
    const url = opts.url ?? 'redis://127.0.0.1:6379'
    // publisher: a command that cannot be answered within a renew period is reported as failed (the tick retries)
    const Redis = redisClass()
    const pub = new Redis(url, {
      commandTimeout: Math.max(500, renewEveryMs),
      maxRetriesPerRequest: 2,
      enableAutoPipelining: true,
      ...base,
    }) as ScriptedRedis
    // subscriber: (un)subscribe commands wait for the connection however long it takes, never time out
    const sub = new Redis(url, { maxRetriesPerRequest: null, autoResubscribe: true, ...base })
    pub.defineCommand('lnmSync', { numberOfKeys: 3, lua: SYNC_LUA })
    pub.defineCommand('lnmRelease', { numberOfKeys: 2, lua: RELEASE_LUA })
    const pubsub = new RedisPubSub(nodeId, prefix, pub, sub, log, onHandlerError, opts.maxInflightPublishes ?? 1000)
    const leases = new RedisLeases(nodeId, prefix, pub, sub, pubsub, leaseTtlMs, renewEveryMs, log, opts.now ?? Date.now)
    super(pubsub, leases, onHandlerError)
    this.nodeId = nodeId
    this.prefix = prefix
    this.leaseTtlMs = leaseTtlMs
    this.renewEveryMs = renewEveryMs
    this.pubConn = pub
    this.subConn = sub
    this.ready = Promise.all([
      leases.ready,
      pub.ping().then(
        () => {},
        () => {},
      ),
    ]).then(() => {})
  }

  /** resolves once both connections answered (or failed): the subscriptions made so far are active and publishes go out */
  whenReady(): Promise<void> {
    return this.ready.then(() => this.pubsub.allSubscribed())
  }

  /** close() releases every lease and demand entry (other nodes take over at once) */
  override async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    await super.close()
    await Promise.allSettled([quit(this.subConn), quit(this.pubConn)])
  }

  /** tests: vanish like a crashed node (no release: leases and demand expire on their own) */
  kill(): void {
    this.closing = true
    this.ownership.kill()
    void this.pubsub.close()
    this.subConn.disconnect()
    this.pubConn.disconnect()
  }

  get droppedPublishes(): number {
    return this.pubsub.droppedPublishes
  }

  /** introspection (tests, diagnostics) */
  stats(): { nodeId: string; watching: string[]; holding: string[]; fallback: string[]; topics: number; connected: boolean } {
    return {
      nodeId: this.nodeId,
      ...this.ownership.stats(),
      topics: this.pubsub.topicCount,
      connected: this.pubConn.status === 'ready' && this.subConn.status === 'ready',
    }
  }

  /** resolves once this node's Redis subscription to `topic` is active (tests; the leases await it before asking for a replay) */
  subscribed(topic: string): Promise<void> {
    return this.pubsub.subscribed(topic)
  }

  isHolder(key: string): boolean {
    return this.ownership.isHolder(key)
  }

  settle(timeoutMs?: number): Promise<void> {
    return this.ownership.settle(timeoutMs)
  }
}

async function quit(r: Redis): Promise<void> {
  if (r.status === 'end') return
  try {
    await Promise.race([
      r.quit(),
      sleep(1000, undefined, { ref: false }).then(() => {
        throw new Error('quit timeout')
      }),
    ])
  } catch {
    r.disconnect()
  }
}
