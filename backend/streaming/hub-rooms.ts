/**
 * Hub part 2 of 4: interest. One room per user with sockets (or a recent dashboard request) on this node,
 * and the ticker as one more room that every socket subscribed to a market channel joins.
 *
 * A room's first member makes the hub publish `watch` on the control topic (after subscribing to the
 * room's bus topic, so a producer's synchronous replay lands in the cache); when the last member leaves,
 * the room is kept `graceMs` longer, then `unwatch` is published and its cached snapshots are dropped.
 * Account rooms are then deleted; the ticker room stays subscribed for the hub's lifetime.
 */
import { CONTROL_TOPIC, TICKER_TOPIC, accountTopic, type Bus, type BusEvent } from './bus.ts'
import type { SnapshotCache } from './cache.ts'
import type { Conn } from './hub-conn.ts'

export class Room {
  readonly conns = new Set<Conn>()
  keepUntil = 0
  lastRefreshAt = 0
  /** when a `fresh` frame last went to this room */
  lastFreshSent = 0
  /** a `watch` was published and no `unwatch` since */
  watched = false
  unsubscribe: () => void = () => {}
  /**
   * @param key the control-topic key: a userId, or 'ticker'
   * @param statusBit the pending-mask bit owed to a collapsed member when this room's status changes
   */
  constructor(
    readonly key: string,
    readonly topic: string,
    readonly statusBit: number,
  ) {}

  get userId(): string {
    return this.key
  }
}

export interface RoomsOptions {
  bus: Bus
  cache: SnapshotCache
  graceMs: number
  now: () => number
  accountStatusBit: number
  tickerStatusBit: number
}

export class Rooms {
  private readonly accounts = new Map<string, Room>()
  readonly ticker: Room
  private readonly onAccountBusEvent: (e: BusEvent, topic: string) => void

  constructor(
    private readonly o: RoomsOptions,
    /** every upstream event of a live room, account or ticker */
    private readonly onEvent: (room: Room, e: BusEvent) => void,
  ) {
    this.ticker = new Room('ticker', TICKER_TOPIC, o.tickerStatusBit)
    // one shared handler for all account rooms: it finds the room by topic
    this.onAccountBusEvent = (e, topic) => {
      const room = this.accounts.get(topic.slice(8))
      if (room) this.onEvent(room, e)
    }
  }

  start(): void {
    this.ticker.unsubscribe = this.o.bus.subscribe(TICKER_TOPIC, (e) => this.onEvent(this.ticker, e))
  }

  stop(): void {
    this.ticker.unsubscribe()
    this.ticker.unsubscribe = () => {}
    for (const room of [...this.accounts.values()]) this.drop(room)
  }

  get(userId: string): Room | undefined {
    return this.accounts.get(userId)
  }

  /** number of account rooms */
  get size(): number {
    return this.accounts.size
  }

  accountRooms(): IterableIterator<Room> {
    return this.accounts.values()
  }

  ensure(userId: string): Room {
    let room = this.accounts.get(userId)
    if (room) return room
    room = new Room(userId, accountTopic(userId), this.o.accountStatusBit)
    room.unsubscribe = this.o.bus.subscribe(room.topic, this.onAccountBusEvent)
    this.accounts.set(userId, room)
    // watch after subscribing: the producer may replay its state synchronously into the cache
    room.watched = true
    this.o.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: userId })
    return room
  }

  /** the account room of an OPEN socket */
  join(c: Conn, userId: string): Room {
    const room = this.ensure(userId)
    room.conns.add(c)
    c.room = room
    return room
  }

  addTicker(c: Conn): void {
    this.ticker.conns.add(c)
    this.watchTicker()
  }

  watchTicker(): void {
    if (this.ticker.watched) return
    this.ticker.watched = true
    this.o.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'ticker' })
  }

  removeTicker(c: Conn): void {
    this.release(this.ticker, c)
  }

  /** the socket leaves every room */
  leave(c: Conn): void {
    this.release(this.ticker, c)
    const room = c.room
    if (room) {
      c.room = null
      this.release(room, c)
    }
  }

  private release(room: Room, c: Conn): void {
    if (room.conns.delete(c) && room.conns.size === 0) room.keepUntil = Math.max(room.keepUntil, this.o.now() + this.o.graceMs)
  }

  /** keep the room (created if needed) and the ticker watched for at least the grace period */
  touch(userId: string, now: number): Room {
    const room = this.ensure(userId)
    room.keepUntil = Math.max(room.keepUntil, now + this.o.graceMs)
    this.ticker.keepUntil = Math.max(this.ticker.keepUntil, now + this.o.graceMs)
    this.watchTicker()
    return room
  }

  /** forget an account room at once: unsubscribe, drop its cache, unwatch */
  drop(room: Room): void {
    this.accounts.delete(room.userId)
    room.unsubscribe()
    this.o.cache.drop(room.topic)
    room.watched = false
    this.o.bus.publish(CONTROL_TOPIC, { kind: 'unwatch', key: room.userId })
  }

  /** rooms empty past their grace period are unwatched */
  expire(now: number): void {
    for (const room of this.accounts.values()) {
      if (room.conns.size === 0 && now >= room.keepUntil) this.drop(room)
    }
    const t = this.ticker
    if (t.watched && t.conns.size === 0 && now >= t.keepUntil) {
      t.watched = false
      this.o.cache.drop(TICKER_TOPIC)
      this.o.bus.publish(CONTROL_TOPIC, { kind: 'unwatch', key: 'ticker' })
    }
  }
}
