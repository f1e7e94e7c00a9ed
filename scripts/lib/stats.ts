/** Percentiles, a bounded sample store and the printed table. */

/** a bounded store of numeric samples: keeps every sample up to `cap`, then a uniform reservoir */
export class Samples {
  private buf: Float64Array
  private n = 0
  private seen = 0
  private maxSeen = -Infinity
  private sum = 0
  constructor(private readonly cap = 1_000_000) {
    this.buf = new Float64Array(Math.min(cap, 4096))
  }
  add(v: number): void {
    this.seen++
    this.sum += v
    if (v > this.maxSeen) this.maxSeen = v
    if (this.n < this.cap) {
      if (this.n === this.buf.length) {
        const next = new Float64Array(Math.min(this.cap, this.buf.length * 2))
        next.set(this.buf)
        this.buf = next
      }
      this.buf[this.n++] = v
    } else {
      const j = Math.floor(Math.random() * this.seen)
      if (j < this.cap) this.buf[j] = v
    }
  }
  get count(): number {
    return this.seen
  }
  get max(): number {
    return this.seen ? this.maxSeen : NaN
  }
  get mean(): number {
    return this.seen ? this.sum / this.seen : NaN
  }
  values(): Float64Array {
    return this.buf.subarray(0, this.n)
  }
  clear(): void {
    this.n = 0
    this.seen = 0
    this.sum = 0
    this.maxSeen = -Infinity
  }
}

export interface Summary {
  n: number
  mean: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
  min: number
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[idx]!
}

/** summary of many sample arrays merged (each may come from another process) */
export function summarize(parts: ArrayLike<number>[], exactMax?: number, exactCount?: number): Summary {
  let total = 0
  for (const p of parts) total += p.length
  const all = new Float64Array(total)
  let o = 0
  for (const p of parts) {
    all.set(p, o)
    o += p.length
  }
  all.sort()
  let sum = 0
  for (let i = 0; i < all.length; i++) sum += all[i]!
  return {
    n: exactCount ?? all.length,
    mean: all.length ? sum / all.length : NaN,
    p50: percentile(all, 50),
    p90: percentile(all, 90),
    p99: percentile(all, 99),
    p999: percentile(all, 99.9),
    max: exactMax ?? (all.length ? all[all.length - 1]! : NaN),
    min: all.length ? all[0]! : NaN,
  }
}

export const round = (x: number, d = 2): number => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x)

export function fmt(x: number | null | undefined, d = 1): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–'
  const abs = Math.abs(x)
  if (abs >= 100_000) return Math.round(x).toLocaleString('en-US')
  if (abs >= 1000) return x.toLocaleString('en-US', { maximumFractionDigits: 0 })
  return x.toFixed(d)
}

export const ratio = (a: number, b: number): number => (b > 0 && Number.isFinite(a) ? a / b : NaN)
export const fmtRatio = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(2)}×` : '–')

/** a plain-text table: first row is the header */
export function table(rows: string[][]): string {
  const widths: number[] = []
  for (const r of rows)
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length)
    })
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  const sep = widths.map((w) => '-'.repeat(w)).join('  ')
  return [line(rows[0]!), sep, ...rows.slice(1).map(line)].join('\n')
}

/** the same rows as a GitHub-flavoured markdown table */
export function markdownTable(rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|')
  return [
    `| ${rows[0]!.map(esc).join(' | ')} |`,
    `|${rows[0]!.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.slice(1).map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n')
}
