/**
 * The price driver: `POST {price}` to a simulator admin route at a fixed rate, each call answered before the
 * next is due or skipped (counted) when the previous is still in flight. Bounded in count and time.
 */
import { Pool } from 'undici'

export interface DriveResult {
  sent: number
  ok: number
  skipped: number
  errors: number
  wallMs: number
}

export class PriceDriver {
  private pool: Pool
  private timer: NodeJS.Timeout | null = null
  private price = 100_000
  private inflight = 0
  private stopAt = 0
  private res: DriveResult = { sent: 0, ok: 0, skipped: 0, errors: 0, wallMs: 0 }
  private done: (() => void) | null = null
  private t0 = 0

  constructor(
    private readonly origin: string,
    private readonly path = '/__sim/price',
  ) {
    this.pool = new Pool(origin, { connections: 4, pipelining: 1 })
  }

  /** run at `perSec` for `durationMs`; resolves when stopped or the time is up */
  run(perSec: number, durationMs: number): Promise<DriveResult> {
    this.stop()
    this.res = { sent: 0, ok: 0, skipped: 0, errors: 0, wallMs: 0 }
    const interval = 1000 / perSec
    const maxTicks = Math.ceil((perSec * durationMs) / 1000) + 1
    this.t0 = performance.now()
    this.stopAt = this.t0 + durationMs
    let n = 0
    return new Promise((resolve) => {
      this.done = () => {
        this.res.wallMs = performance.now() - this.t0
        resolve(this.res)
      }
      const step = () => {
        const now = performance.now()
        if (now >= this.stopAt || n >= maxTicks) {
          this.stop()
          return
        }
        const due = this.t0 + n * interval
        if (now >= due) {
          n++
          this.fire()
        }
        this.timer = setTimeout(step, Math.max(0, Math.min(this.t0 + n * interval - performance.now(), 50)))
      }
      step()
    })
  }

  private fire(): void {
    if (this.inflight >= 2) {
      this.res.skipped++
      return
    }
    // a small random walk on the 0.5 tick, never the same price twice in a row
    this.price = Math.round((this.price + (Math.random() < 0.5 ? -1 : 1) * (0.5 + Math.floor(Math.random() * 10) * 0.5)) * 2) / 2
    this.inflight++
    this.res.sent++
    this.pool
      .request({
        method: 'POST',
        path: this.path,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ price: this.price }),
      })
      .then(async (r) => {
        await r.body.dump()
        if (r.statusCode < 300) this.res.ok++
        else this.res.errors++
      })
      .catch(() => {
        this.res.errors++
      })
      .finally(() => {
        this.inflight--
      })
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const d = this.done
    this.done = null
    d?.()
  }

  async close(): Promise<void> {
    this.stop()
    await this.pool.close()
  }
}
