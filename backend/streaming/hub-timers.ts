/**
 * Hub part 4 of 4: the shared timers. No per-socket timer exists; three shared ones drive everything:
 * - the sweep (every 20–250 ms): auth deadlines, slow consumers, closing sockets past their grace; once a
 *   second, token expiry and room expiry;
 * - the heartbeat (every `heartbeatMs`): ping; a socket that answered nothing for a whole period is dropped;
 * - the drain at shutdown: 1001 to every socket, spread over a window, then stragglers are terminated.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { CloseCode } from '../schemas/ws-protocol.ts'
import { State, type Connections } from './hub-conn.ts'
import type { Fanout } from './hub-fanout.ts'
import type { Rooms } from './hub-rooms.ts'
import type { Log } from './sources.ts'
import type { Metrics } from '../metrics.ts'

export interface TimersOptions {
  authTimeoutMs: number
  heartbeatMs: number
  slowConsumerGraceMs: number
  closeGraceMs: number
  metrics: Metrics
  log: Log
  now: () => number
}

export class HubTimers {
  private sweepTimer: NodeJS.Timeout | null = null
  private heartbeatTimer: NodeJS.Timeout | null = null
  private nextSlowSweep = 0

  constructor(
    private readonly o: TimersOptions,
    private readonly conns: Connections,
    private readonly fanout: Fanout,
    private readonly rooms: Rooms,
  ) {
    this.sweep = this.sweep.bind(this)
    this.heartbeat = this.heartbeat.bind(this)
  }

  get running(): boolean {
    return this.sweepTimer !== null
  }

  start(): void {
    if (this.sweepTimer) return
    const sweepMs = Math.max(20, Math.min(250, Math.floor(this.o.authTimeoutMs / 4), Math.floor(this.o.slowConsumerGraceMs / 2)))
    this.sweepTimer = setInterval(this.sweep, sweepMs)
    this.sweepTimer.unref()
    this.heartbeatTimer = setInterval(this.heartbeat, this.o.heartbeatMs)
    this.heartbeatTimer.unref()
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer)
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer)
    this.sweepTimer = this.heartbeatTimer = null
  }

  private sweep(): void {
    try {
      this.sweepOnce()
    } catch (err) {
      this.o.log.error({ err }, 'hub sweep failed')
    }
  }

  private sweepOnce(): void {
    const now = this.o.now()
    for (const c of this.conns.pendingAuth) {
      if (now < c.deadline) continue
      this.o.metrics.authFailures.inc({ reason: 'ws_timeout' })
      this.conns.close(c, CloseCode.AUTH_TIMEOUT, 'authentication timeout')
    }
    for (const c of this.fanout.slow) this.fanout.checkSlow(c, now)
    for (const c of this.conns.closing) if (now >= c.deadline) c.ws.terminate()
    if (now < this.nextSlowSweep) return
    this.nextSlowSweep = now + 1000
    for (const c of this.conns.all) {
      if (c.state === State.OPEN && c.expMs <= now) this.conns.close(c, CloseCode.TOKEN_EXPIRED, 'token expired')
    }
    this.rooms.expire(now)
  }

  private heartbeat(): void {
    try {
      this.heartbeatOnce()
    } catch (err) {
      this.o.log.error({ err }, 'hub heartbeat failed')
    }
  }

  private heartbeatOnce(): void {
    for (const c of this.conns.all) {
      if (c.state >= State.CLOSING) continue
      if (!c.alive) {
        // no pong (nor any frame) for a whole heartbeat period: the peer is gone
        this.conns.terminateDead(c)
        continue
      }
      c.alive = false
      try {
        c.ws.ping()
      } catch {
        /* socket already closing */
      }
    }
  }

  /** shutdown: close the open sockets with 1001 spread over `windowMs`, terminate stragglers */
  async drain(windowMs: number): Promise<void> {
    const list = [...this.conns.all].filter((c) => c.state < State.CLOSING)
    if (list.length > 0) {
      const slices = Math.max(1, Math.min(list.length, Math.ceil(windowMs / 50)))
      const per = Math.ceil(list.length / slices)
      const step = windowMs / slices
      for (let i = 0; i < slices; i++) {
        for (const c of list.slice(i * per, (i + 1) * per)) this.conns.close(c, CloseCode.GOING_AWAY, 'server shutting down')
        if (i < slices - 1) await sleep(step, undefined, { ref: false })
      }
    }
    const deadline = Date.now() + Math.min(this.o.closeGraceMs, 1000)
    while (this.conns.all.size > 0 && Date.now() < deadline) await sleep(20, undefined, { ref: false })
    for (const c of this.conns.all) c.ws.terminate()
  }
}
