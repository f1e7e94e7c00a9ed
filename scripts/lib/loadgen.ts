/**
 * The parent side of the load generators: W forked worker processes (scripts/lib/loadgen-worker.ts),
 * plus an optional light "probe" worker whose few sockets are opened interleaved with the bulk ones.
 * The probe's receive timestamps are not delayed by thousands of other sockets in its own event loop,
 * so its latency figures are the honest ones; the bulk workers' figures are reported alongside.
 */
import type { ChildProcess } from 'node:child_process'
import { forkTs, rpc, stopChild, waitMessage } from './proc.ts'
import { summarize, type Summary } from './stats.ts'

export type Kind = 'gateway' | 'ws' | 'sio'

export interface WorkerReport {
  open: number
  frames: number
  bytes: number
  dataFrames: Record<string, number>
  otherFrames: number
  statusFrames: number
  errorFrames: number
  gaps: number
  gapEvents: number
  dupes: number
  closedByCode: Record<string, number>
  unexpectedCloses: number
  failures: Record<string, number>
  retried: Record<string, number>
  connectedAfterRetry: number
  reconnects?: { started: number; done: number; failed: number; lastDoneAt: number }
  latTs: Float64Array
  latTsCount: number
  latTsMax: number
  latSource: Float64Array
  latSourceCount: number
  latSourceMax: number
  connectMs: Float64Array
  firstFrameAt: number
  lastFrameAt: number
  windowMs: number
}

export interface Aggregate {
  /** the measurement window as the load generators saw it (mean over processes), ms */
  windowMs: number
  open: number
  frames: number
  bytes: number
  dataFrames: Record<string, number>
  statusFrames: number
  errorFrames: number
  gaps: number
  gapEvents: number
  dupes: number
  closedByCode: Record<string, number>
  unexpectedCloses: number
  failures: Record<string, number>
  /** first attempts refused with a retryable answer (the connection was then retried) */
  retried: Record<string, number>
  connectedAfterRetry: number
  /** server-dropped sockets that reconnected (ConnectSpec.reconnect), gave up, and when the last came back (wall ms) */
  reconnects: { started: number; done: number; failed: number; lastDoneAt: number }
  latency: Summary
  latencySource: Summary
  probeLatency: Summary | null
  probeLatencySource: Summary | null
  connect: Summary
}

export interface ConnectSpec {
  kind: Kind
  url: string
  count: number
  tokens?: string[]
  authVia?: 'message' | 'header'
  localAddresses?: string[]
  /** total connections per second across all workers (0 = unpaced) */
  ratePerSec?: number
  concurrency?: number
  timeoutMs?: number
  /** forget connect times and failures of earlier connects */
  reset?: boolean
  /** retries after a retryable refusal (503, 1013, timeout), with backoff */
  retries?: number
  /** how long the whole connect may take (default: 60 s + twice the paced ramp) */
  rpcTimeoutMs?: number
  /** reconnect sockets the server drops, with the dashboard's full-jitter backoff (loadgen-worker.ts) */
  reconnect?: { attempts: number; baseMs: number; capMs: number }
}

export class LoadGen {
  private constructor(
    readonly bulk: ChildProcess[],
    readonly probe: ChildProcess | null,
  ) {}

  static async start(workers: number, withProbe: boolean, maxOldSpaceMb = 2048): Promise<LoadGen> {
    const spawnOne = async () => {
      const c = forkTs('scripts/lib/loadgen-worker.ts', [], { nodeArgs: [`--max-old-space-size=${maxOldSpaceMb}`] })
      c.stderr?.on('data', (d: Buffer) => process.stderr.write(`[loadgen ${c.pid}] ${d.toString()}`))
      await waitMessage(c, (m) => m && m.ready === true, 20_000, 'load generator start')
      return c
    }
    const bulk = await Promise.all(Array.from({ length: Math.max(1, workers) }, spawnOne))
    const probe = withProbe ? await spawnOne() : null
    return new LoadGen(bulk, probe)
  }

  get pids(): number[] {
    return [...this.bulk, ...(this.probe ? [this.probe] : [])].map((c) => c.pid as number)
  }

  private get all(): ChildProcess[] {
    return this.probe ? [...this.bulk, this.probe] : this.bulk
  }

  /**
   * Opens `spec.count` connections: `probeCount` of them on the probe worker, the rest spread evenly over
   * the bulk workers, all paced to finish together so probe sockets sit throughout the server's fan-out order.
   */
  async connect(spec: ConnectSpec, probeCount = 0): Promise<{ connected: number; wallMs: number }> {
    const probeN = this.probe ? Math.min(probeCount, spec.count) : 0
    const bulkN = spec.count - probeN
    const per = this.bulk.map((_, i) => Math.floor(bulkN / this.bulk.length) + (i < bulkN % this.bulk.length ? 1 : 0))
    const shares: Array<[ChildProcess, number, number]> = []
    let offset = 0
    this.bulk.forEach((c, i) => {
      shares.push([c, per[i]!, offset])
      offset += per[i]!
    })
    if (this.probe && probeN > 0) shares.push([this.probe, probeN, offset])
    const t0 = performance.now()
    const total = spec.ratePerSec ?? 0
    const timeout = spec.rpcTimeoutMs ?? 60_000 + (total > 0 ? (spec.count / total) * 1000 * 2 : spec.count * 20)
    const res = await Promise.all(
      shares
        .filter(([, n]) => n > 0)
        .map(([c, n, off]) =>
          rpc(
            c,
            {
              op: 'connect',
              kind: spec.kind,
              url: spec.url,
              count: n,
              offset: off,
              tokens: spec.tokens,
              authVia: spec.authVia ?? 'message',
              localAddresses: spec.localAddresses,
              concurrency: spec.concurrency ?? 64,
              timeoutMs: spec.timeoutMs ?? 20_000,
              ratePerSec: total > 0 ? (total * n) / spec.count : 0,
              reset: spec.reset ?? false,
              retries: spec.retries ?? 0,
              reconnect: spec.reconnect,
            },
            timeout,
          ),
        ),
    )
    return { connected: res.reduce((a, r) => a + (r.connected as number), 0), wallMs: performance.now() - t0 }
  }

  async measure(): Promise<number> {
    const r = await Promise.all(this.all.map((c) => rpc(c, { op: 'measure' }, 30_000)))
    return r.reduce((a, x) => a + (x.open as number), 0)
  }

  /** stop counting and collect */
  async pause(): Promise<Aggregate> {
    const bulk = await Promise.all(this.bulk.map((c) => rpc<WorkerReport>(c, { op: 'pause' }, 60_000)))
    const probe = this.probe ? await rpc<WorkerReport>(this.probe, { op: 'pause' }, 60_000) : null
    return aggregate(bulk, probe)
  }

  async report(): Promise<Aggregate> {
    const bulk = await Promise.all(this.bulk.map((c) => rpc<WorkerReport>(c, { op: 'report' }, 60_000)))
    const probe = this.probe ? await rpc<WorkerReport>(this.probe, { op: 'report' }, 60_000) : null
    return aggregate(bulk, probe)
  }

  /** wait until no data frame has arrived for `quietMs` in any process (a backlog drained); returns the wait */
  async waitQuiet(quietMs: number, maxMs: number): Promise<number> {
    const t0 = performance.now()
    while (performance.now() - t0 < maxMs) {
      const r = await Promise.all(this.all.map((c) => rpc(c, { op: 'idleFor' }, 10_000)))
      if (r.every((x) => (x.idleMs as number) >= quietMs)) break
      await new Promise((res) => setTimeout(res, 200))
    }
    return performance.now() - t0
  }

  async sendAll(data: string): Promise<number> {
    const r = await Promise.all(this.all.map((c) => rpc(c, { op: 'send', data }, 60_000)))
    return r.reduce((a, x) => a + (x.sent as number), 0)
  }

  async closeAll(timeoutMs = 10_000): Promise<{ closed: number; cleanCloses: number }> {
    const r = await Promise.all(this.all.map((c) => rpc(c, { op: 'close', timeoutMs }, timeoutMs + 30_000)))
    return { closed: r.reduce((a, x) => a + (x.closed as number), 0), cleanCloses: r.reduce((a, x) => a + (x.cleanCloses as number), 0) }
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((c) => stopChild(c, 2000)))
  }
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v
}

export function aggregate(bulk: WorkerReport[], probe: WorkerReport | null): Aggregate {
  const all = probe ? [...bulk, probe] : bulk
  const out: Aggregate = {
    windowMs: all.reduce((a, r) => a + r.windowMs, 0) / Math.max(1, all.length),
    open: 0,
    frames: 0,
    bytes: 0,
    dataFrames: {},
    statusFrames: 0,
    errorFrames: 0,
    gaps: 0,
    gapEvents: 0,
    dupes: 0,
    closedByCode: {},
    unexpectedCloses: 0,
    failures: {},
    retried: {},
    connectedAfterRetry: 0,
    reconnects: { started: 0, done: 0, failed: 0, lastDoneAt: 0 },
    latency: summarize(
      all.map((r) => r.latTs),
      Math.max(...all.map((r) => r.latTsMax).filter(Number.isFinite), -Infinity),
      all.reduce((a, r) => a + r.latTsCount, 0),
    ),
    latencySource: summarize(
      all.map((r) => r.latSource),
      Math.max(...all.map((r) => r.latSourceMax).filter(Number.isFinite), -Infinity),
      all.reduce((a, r) => a + r.latSourceCount, 0),
    ),
    probeLatency: probe && probe.latTs.length ? summarize([probe.latTs], probe.latTsMax, probe.latTsCount) : null,
    probeLatencySource: probe && probe.latSource.length ? summarize([probe.latSource], probe.latSourceMax, probe.latSourceCount) : null,
    connect: summarize(all.map((r) => r.connectMs)),
  }
  for (const r of all) {
    out.connectedAfterRetry += r.connectedAfterRetry
    if (r.reconnects) {
      out.reconnects.started += r.reconnects.started
      out.reconnects.done += r.reconnects.done
      out.reconnects.failed += r.reconnects.failed
      out.reconnects.lastDoneAt = Math.max(out.reconnects.lastDoneAt, r.reconnects.lastDoneAt)
    }
    out.open += r.open
    out.frames += r.frames
    out.bytes += r.bytes
    out.statusFrames += r.statusFrames
    out.errorFrames += r.errorFrames
    out.gaps += r.gaps
    out.gapEvents += r.gapEvents
    out.dupes += r.dupes
    out.unexpectedCloses += r.unexpectedCloses
    addCounts(out.dataFrames, r.dataFrames)
    addCounts(out.closedByCode, r.closedByCode)
    addCounts(out.failures, r.failures)
    addCounts(out.retried, r.retried)
  }
  if (!Number.isFinite(out.latency.max)) out.latency.max = NaN
  if (!Number.isFinite(out.latencySource.max)) out.latencySource.max = NaN
  return out
}
