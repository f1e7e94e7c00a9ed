/** Token buckets keyed by IP or API key: `perSec` tokens per second, burst of `perSec`. */
export interface Take {
  ok: boolean
  remaining: number
  /** epoch ms when the bucket is full again */ resetAt: number
  retryAfterS: number
}

export class TokenBuckets {
  private buckets = new Map<string, { tokens: number; at: number }>()
  constructor(
    private readonly perSec: number,
    private readonly now: () => number = Date.now,
  ) {}

  take(id: string): Take {
    const now = this.now()
    const cap = this.perSec
    const b = this.buckets.get(id) ?? { tokens: cap, at: now }
    b.tokens = Math.min(cap, b.tokens + ((now - b.at) / 1000) * cap)
    b.at = now
    this.buckets.set(id, b)
    if (this.buckets.size > 10_000) this.sweep(now)
    const msPerToken = 1000 / cap
    const ok = b.tokens >= 1
    if (ok) b.tokens -= 1
    // X-Ratelimit-Reset: when the bucket is full again; Retry-After: when the next request may pass
    const resetAt = now + Math.ceil((cap - b.tokens) * msPerToken)
    const waitMs = ok ? 0 : Math.ceil((1 - b.tokens) * msPerToken)
    return { ok, remaining: Math.floor(b.tokens), resetAt, retryAfterS: ok ? 0 : Math.max(1, Math.ceil(waitMs / 1000)) }
  }

  private sweep(now: number): void {
    for (const [k, b] of this.buckets) if (now - b.at > 60_000) this.buckets.delete(k)
  }
}
