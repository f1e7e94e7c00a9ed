/**
 * Admission of /ws upgrades before the handshake, for what the hub cannot see: who is asking.
 *
 * - **Origin**: a browser always sends `Origin` on a WebSocket upgrade, and cookies or not, a page on another
 *   site must not open a socket to the gateway (cross-site WebSocket hijacking). Allowed: the gateway's own
 *   host (same origin) and the configured origins. A client without `Origin` (not a browser) is allowed.
 * - **Upgrades per address**: a fixed window per client address (after TRUST_PROXY), so one address cannot
 *   churn handshakes. In memory, per node: it must keep working while Redis is down.
 * - **Unauthenticated sockets**: a socket that has not authenticated yet costs a slot but proves nothing.
 *   They have their own small budget, per address and in all, apart from MAX_CONNECTIONS (which counts
 *   authenticated sockets), so sockets that never authenticate cannot lock real users out. A socket leaves
 *   the budget when it authenticates (the hub says so) or closes.
 */
import { LRUCache } from 'lru-cache'
import { countBound } from '../bounded-lru.ts'

export interface UpgradeGateOptions {
  /** origins allowed besides the gateway's own host, e.g. `https://dash.example.com` */
  allowedOrigins: readonly string[]
  /** unauthenticated sockets per client address */
  unauthPerAddress: number
  /** unauthenticated sockets in all */
  unauthMax: number
  /** upgrade requests per client address per minute (0 = no limit) */
  upgradesPerMinute: number
  now?: () => number
}

export type UnauthRefusal = 'unauth_per_address' | 'unauth_global'

interface Window {
  n: number
  resetAt: number
}

interface Closable {
  once(event: 'close', fn: () => void): unknown
}

const WINDOW_MS = 60_000

export class UpgradeGate {
  private readonly allowed: Set<string>
  private readonly pending = new Map<string, number>()
  private pendingTotal = 0
  private readonly owner = new WeakMap<object, string>()
  private readonly windows = new LRUCache<string, Window>(countBound(100_000))
  private readonly now: () => number

  constructor(private readonly o: UpgradeGateOptions) {
    this.allowed = new Set(o.allowedOrigins.map((x) => normaliseOrigin(x)).filter((x): x is string => x !== null))
    this.now = o.now ?? Date.now
  }

  /** same host as the request (its Host, or X-Forwarded-Host behind a trusted proxy), or a configured origin */
  originAllowed(origin: string | undefined, host: string | undefined): boolean {
    if (origin === undefined) return true
    const norm = normaliseOrigin(origin)
    if (norm === null) return false
    if (this.allowed.has(norm)) return true
    if (!host) return false
    return new URL(norm).host === host.toLowerCase()
  }

  /** counts this upgrade; the seconds to wait when over the limit, else 0 */
  rateLimited(address: string): number {
    if (this.o.upgradesPerMinute <= 0) return 0
    const now = this.now()
    let w = this.windows.get(address)
    if (!w || now >= w.resetAt) {
      w = { n: 0, resetAt: now + WINDOW_MS }
      this.windows.set(address, w)
    }
    w.n++
    return w.n > this.o.upgradesPerMinute ? Math.max(1, Math.ceil((w.resetAt - now) / 1000)) : 0
  }

  /** may one more unauthenticated socket from this address be admitted? */
  unauthRefusal(address: string): UnauthRefusal | null {
    if ((this.pending.get(address) ?? 0) >= this.o.unauthPerAddress) return 'unauth_per_address'
    if (this.pendingTotal >= this.o.unauthMax) return 'unauth_global'
    return null
  }

  /** an unauthenticated socket was admitted: it counts until `release` (authenticated) or its close */
  track(socket: Closable & object, address: string): void {
    this.owner.set(socket, address)
    this.pending.set(address, (this.pending.get(address) ?? 0) + 1)
    this.pendingTotal++
    socket.once('close', () => this.release(socket))
  }

  release(socket: object): void {
    const address = this.owner.get(socket)
    if (address === undefined) return
    this.owner.delete(socket)
    this.pendingTotal--
    const n = (this.pending.get(address) ?? 1) - 1
    if (n <= 0) this.pending.delete(address)
    else this.pending.set(address, n)
  }

  stats(): { unauthenticated: number; addresses: number } {
    return { unauthenticated: this.pendingTotal, addresses: this.pending.size }
  }
}

/** `scheme://host[:port]` in lower case, default ports dropped; null when it is not an http(s) origin */
function normaliseOrigin(origin: string): string | null {
  if (!URL.canParse(origin)) return null
  const u = new URL(origin)
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null
  return `${u.protocol}//${u.host}`
}
