/**
 * Observer dashboards: a few WebSocket clients in the suite's own process that read EVERY frame (JSON.parse)
 * and judge it as the dashboard would (frontend/src/lib/frame-policy.ts), keeping their view across
 * reconnects. What they count is what "nothing lost / nothing wrong" means for a client:
 *  - staleShown: a data_update whose sourceTs was already older than STALE_AFTER_MS when it arrived;
 *  - regressions: a data_update the dashboard would have to refuse as older than what it shows
 *    (same epoch and a lower seq, or another epoch with an older sourceTs), exact replays excepted;
 *  - duplicates: the same (channel, epoch, seq) twice on one connection (counted once, not also as a regression);
 *  - close codes, reconnects, status reasons, and per channel the newest sourceTs seen (data or `fresh`).
 * Reconnects use the dashboard's full-jitter backoff; `urls` are tried in turn (a load balancer's failover).
 */
import WebSocket from 'ws'

type Channel = 'account' | 'positions' | 'ticker'
interface Shown {
  epoch: number
  seq: number
  sourceTs: number
}

export interface ObserverStats {
  connects: number
  dataUpdates: number
  freshFrames: number
  staleShown: number
  maxAgeMs: number
  regressions: number
  duplicates: number
  closes: Record<string, number>
  connectFailures: Record<string, number>
  statusReasons: Record<string, number>
  /** regressions and duplicates by the phase the suite was in when they arrived */
  byPhase: Record<string, { regressions: number; duplicates: number; staleShown: number }>
  examples: string[]
}

export interface ObserverOptions {
  urls: string[]
  token: string
  label: string
  staleAfterMs: number
  backoff?: { baseMs: number; capMs: number }
}

const now = () => Date.now()

export class Observer {
  readonly stats: ObserverStats = {
    connects: 0,
    dataUpdates: 0,
    freshFrames: 0,
    staleShown: 0,
    maxAgeMs: 0,
    regressions: 0,
    duplicates: 0,
    closes: {},
    connectFailures: {},
    statusReasons: {},
    byPhase: {},
    examples: [],
  }
  /** the suite's current phase (set from outside), for byPhase */
  phase = ''
  /** what the dashboard shows, per channel (kept across reconnects) */
  readonly shown = new Map<Channel, Shown>()
  /** newest sourceTs seen per channel, from data_update or fresh */
  readonly newestTs = new Map<Channel, number>()
  /** last status per scope */
  readonly status = new Map<string, { upstream: string; reason: string; at: number }>()
  ws: WebSocket | null = null
  ready = false
  private seenThisConn = new Set<string>()
  private attempt = 0
  private urlIndex = 0
  private stopped = false
  private timer: NodeJS.Timeout | null = null

  constructor(readonly o: ObserverOptions) {}

  start(): void {
    this.open()
  }

  get url(): string {
    return this.o.urls[this.urlIndex % this.o.urls.length]!
  }

  private note(s: string): void {
    if (this.stats.examples.length < 10) this.stats.examples.push(`${this.o.label}${this.phase ? ` [${this.phase}]` : ''}: ${s}`)
  }

  private bump(k: 'regressions' | 'duplicates' | 'staleShown'): void {
    this.stats[k]++
    const p = (this.stats.byPhase[this.phase || '-'] ??= { regressions: 0, duplicates: 0, staleShown: 0 })
    p[k]++
  }

  private open(): void {
    if (this.stopped) return
    this.timer = null
    let ws: WebSocket
    try {
      ws = new WebSocket(this.url, { perMessageDeflate: false, handshakeTimeout: 10_000 })
    } catch (e) {
      this.failed(`construct ${(e as Error).message}`)
      return
    }
    this.ws = ws
    this.seenThisConn = new Set()
    let wasReady = false
    ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', request_id: 'obs', token: this.o.token })))
    ws.on('message', (d: Buffer) => {
      let f: any
      try {
        f = JSON.parse(d.toString())
      } catch {
        this.note('a frame that is not JSON')
        return
      }
      if (f.type === 'connection') {
        this.ready = wasReady = true
        this.attempt = 0
        this.stats.connects++
        return
      }
      this.frame(f)
    })
    ws.on('unexpected-response', (_q, res) => {
      this.failed(`HTTP ${res.statusCode}`)
      ws.terminate()
    })
    ws.on('error', (e: NodeJS.ErrnoException) => {
      if (!wasReady) this.failed(`error ${e.code ?? e.message}`)
    })
    ws.on('close', (code) => {
      this.ready = false
      if (this.ws === ws) this.ws = null
      if (wasReady) {
        this.stats.closes[code] = (this.stats.closes[code] ?? 0) + 1
        this.schedule()
      } else if (!this.timer) this.schedule(true)
    })
  }

  private failed(reason: string): void {
    this.stats.connectFailures[reason] = (this.stats.connectFailures[reason] ?? 0) + 1
  }

  private schedule(nextUrl = false): void {
    if (this.stopped || this.timer) return
    if (nextUrl) this.urlIndex++
    const b = this.o.backoff ?? { baseMs: 500, capMs: 30_000 }
    const delay = Math.floor(Math.random() * Math.min(b.capMs, b.baseMs * 2 ** Math.min(this.attempt++, 30)))
    this.timer = setTimeout(() => this.open(), delay)
  }

  private frame(f: any): void {
    const t = now()
    if (f.type === 'data_update') {
      const ch = f.channel as Channel
      this.stats.dataUpdates++
      const age = t - Number(f.sourceTs)
      if (age > this.stats.maxAgeMs) this.stats.maxAgeMs = age
      if (age > this.o.staleAfterMs) {
        this.bump('staleShown')
        this.note(`${ch} data_update ${age} ms old`)
      }
      const id = `${ch}:${f.epoch}:${f.seq}`
      if (this.seenThisConn.has(id)) {
        this.bump('duplicates')
        this.note(`duplicate ${id}`)
        return
      }
      this.seenThisConn.add(id)
      const cur = this.shown.get(ch)
      const inc: Shown = { epoch: Number(f.epoch), seq: Number(f.seq), sourceTs: Number(f.sourceTs) }
      const replay = cur !== undefined && cur.epoch === inc.epoch && cur.seq === inc.seq
      if (cur && !replay && !isNewer(cur, inc)) {
        this.bump('regressions')
        this.note(`${ch} regression: shown e${cur.epoch}/s${cur.seq}@${cur.sourceTs}, got e${inc.epoch}/s${inc.seq}@${inc.sourceTs}`)
      } else if (!replay) this.shown.set(ch, inc)
      if (inc.sourceTs > (this.newestTs.get(ch) ?? 0)) this.newestTs.set(ch, inc.sourceTs)
    } else if (f.type === 'fresh') {
      this.stats.freshFrames++
      for (const c of f.channels ?? []) {
        const cur = this.shown.get(c.channel)
        if (cur && cur.epoch === c.epoch && cur.seq === c.seq && c.sourceTs > cur.sourceTs) cur.sourceTs = c.sourceTs
        if (c.sourceTs > (this.newestTs.get(c.channel) ?? 0)) this.newestTs.set(c.channel, c.sourceTs)
      }
    } else if (f.type === 'status') {
      const k = `${f.scope ?? 'account'} ${f.upstream} ${f.reason}`
      this.stats.statusReasons[k] = (this.stats.statusReasons[k] ?? 0) + 1
      this.status.set(f.scope ?? 'account', { upstream: f.upstream, reason: f.reason, at: t })
    }
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    try {
      this.ws?.close(1000)
    } catch {
      /* ignore */
    }
    this.ws = null
  }
}

/** the dashboard's rule (frontend/src/lib/frame-policy.ts isNewer) */
function isNewer(shown: Shown, incoming: Shown): boolean {
  if (incoming.epoch === shown.epoch) return incoming.seq > shown.seq
  if (incoming.sourceTs > shown.sourceTs) return true
  return incoming.epoch > shown.epoch && incoming.sourceTs === shown.sourceTs
}

/** the sum of many observers' stats */
export function sumStats(list: Observer[]): ObserverStats {
  const out: ObserverStats = {
    connects: 0,
    dataUpdates: 0,
    freshFrames: 0,
    staleShown: 0,
    maxAgeMs: 0,
    regressions: 0,
    duplicates: 0,
    closes: {},
    connectFailures: {},
    statusReasons: {},
    byPhase: {},
    examples: [],
  }
  for (const o of list) {
    const s = o.stats
    out.connects += s.connects
    out.dataUpdates += s.dataUpdates
    out.freshFrames += s.freshFrames
    out.staleShown += s.staleShown
    out.maxAgeMs = Math.max(out.maxAgeMs, s.maxAgeMs)
    out.regressions += s.regressions
    out.duplicates += s.duplicates
    for (const [k, v] of Object.entries(s.closes)) out.closes[k] = (out.closes[k] ?? 0) + v
    for (const [k, v] of Object.entries(s.connectFailures)) out.connectFailures[k] = (out.connectFailures[k] ?? 0) + v
    for (const [k, v] of Object.entries(s.statusReasons)) out.statusReasons[k] = (out.statusReasons[k] ?? 0) + v
    for (const [k, v] of Object.entries(s.byPhase)) {
      const p = (out.byPhase[k] ??= { regressions: 0, duplicates: 0, staleShown: 0 })
      p.regressions += v.regressions
      p.duplicates += v.duplicates
      p.staleShown += v.staleShown
    }
    for (const e of s.examples) if (out.examples.length < 10) out.examples.push(e)
  }
  return out
}
