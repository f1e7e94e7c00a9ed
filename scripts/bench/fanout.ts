/**
 * One fan-out run: N clients on one server, the price driver ticking the simulator at a fixed rate, the
 * server's CPU and RSS read from /proc around a measurement window, frames and latencies counted by the
 * load generators. Shared by `npm run bench`, `npm run stress` and the smoke test.
 */
import type { LoadGen, Kind, Aggregate } from '../lib/loadgen.ts'
import type { PriceDriver } from '../lib/ticker.ts'
import { procSampleAll, sleep, systemCpu, systemCpuPercent, type ProcSample } from '../lib/proc.ts'
import { round, type Summary } from '../lib/stats.ts'

export interface Target {
  /** gateway-workers: the gateway as `WORKERS=<n>` processes behind one port */
  name: 'gateway' | 'gateway-workers' | 'ws' | 'sio'
  kind: Kind
  url: string
  pids: () => number[]
  tokens?: string[]
  /** extra figures read from the server itself around the window (the gateway's /metrics) */
  probe?: () => Promise<Record<string, number>>
  /** a full GC in the server before each RSS reading (through its inspector); false when unavailable */
  gc?: () => Promise<boolean>
}

export interface FanoutOptions {
  n: number
  ticksPerSec: number
  warmupMs: number
  windowMs: number
  settleMs: number
  probeConnections: number
  localAddresses: string[]
  connectRatePerSec?: number
  concurrency?: number
  /** a second window at a rate every server sustains, for the latency figures (queueing under saturation is not "added latency") */
  latency?: { ticksPerSec: number; windowMs: number; warmupMs: number }
}

export interface FanoutResult {
  server: string
  n: number
  connected: number
  connectWallMs: number
  connectMs: Summary
  failures: Record<string, number>
  /** first attempts refused with a retryable answer, then retried */
  retried: Record<string, number>
  connectedAfterRetry: number
  ticksPerSec: number
  offeredFramesPerSec: number
  deliveredFramesPerSec: number
  deliveryRatio: number
  serverCpuPercent: number
  /** user / system split of serverCpuPercent (system time is mostly the writes) */
  serverUserCpuPercent: number
  serverSysCpuPercent: number
  framesPerCpuSecond: number
  /** frames per CPU-second above the server's idle CPU with the same connections (polling, timers) */
  framesPerMarginalCpuSecond: number
  clientCpuPercent: number
  machineCpuPercent: number
  idleServerCpuPercent: number
  rssBeforeBytes: number
  rssIdleBytes: number
  rssPerIdleConnBytes: number
  /** both RSS readings were taken right after a full GC of the server */
  rssMeasuredAfterGc: boolean
  rssAfterBytes: number
  avgFrameBytes: number
  gaps: number
  /** how long frames kept arriving after the driver stopped (≈ the backlog the window built up) */
  backlogDrainMs: number
  /** from the latency window when there is one, else from the throughput window */
  latency: {
    ticksPerSec: number
    sourceToClient: Summary
    sendToClient: Summary
    probeSourceToClient: Summary | null
    probeSendToClient: Summary | null
  }
  /** latency during the throughput window (includes queueing when the machine saturates) */
  latencyAtThroughputRate: { sourceToClient: Summary; probeSourceToClient: Summary | null }
  closed: { closed: number; cleanCloses: number }
  serverProbe: Record<string, number>
  drive: { sent: number; ok: number; skipped: number; errors: number }
}

const cpuPct = (a: ProcSample, b: ProcSample) => ((b.cpuS - a.cpuS) / ((b.t - a.t) / 1000)) * 100

export async function fanoutRun(
  lg: LoadGen,
  t: Target,
  driver: PriceDriver,
  o: FanoutOptions,
  log: (s: string) => void = () => {},
): Promise<FanoutResult> {
  const pids = t.pids()
  const gcBefore = t.gc ? await t.gc() : false
  if (gcBefore) await sleep(300)
  const before = procSampleAll(pids)
  log(`  ${t.name}: connecting ${o.n}…`)
  const conn = await lg.connect(
    {
      kind: t.kind,
      url: t.url,
      count: o.n,
      ...(t.tokens !== undefined && { tokens: t.tokens }),
      authVia: 'message',
      localAddresses: o.localAddresses,
      // paced, so the probe's sockets are opened interleaved with the bulk ones and sit throughout the server's
      // send order (unpaced, the light probe process would open all of its sockets first, at the head of it)
      ratePerSec: o.connectRatePerSec ?? Math.min(2000, Math.max(200, Math.round(o.n / 3))),
      concurrency: o.concurrency ?? 48,
      timeoutMs: 30_000,
      reset: true,
      retries: 3,
    },
    o.probeConnections,
  )
  const connAgg = await lg.report()
  log(`  ${t.name}: ${conn.connected}/${o.n} connected in ${(conn.wallMs / 1000).toFixed(1)} s; idle ${o.settleMs} ms`)
  await sleep(Math.min(1000, o.settleMs / 3))
  const idleA = procSampleAll(pids)
  await sleep(o.settleMs - Math.min(1000, o.settleMs / 3))
  const idleCpuEnd = procSampleAll(pids)
  const gcIdle = gcBefore && t.gc ? await t.gc() : false
  if (gcIdle) await sleep(300)
  const idle = gcIdle ? procSampleAll(pids) : idleCpuEnd
  const idleCpu = cpuPct(idleA, idleCpuEnd)
  // the server's own broadcast timing, read while it is idle (an overloaded gateway may answer /metrics with 503)
  const probeA = t.probe ? await t.probe().catch((): Record<string, number> => ({})) : {}
  const drive = driver.run(o.ticksPerSec, o.warmupMs + o.windowMs + 60_000)
  await sleep(o.warmupMs)
  await lg.measure()
  const a = procSampleAll(pids)
  const la = procSampleAll(lg.pids)
  const sa = systemCpu()
  await sleep(o.windowMs)
  const b = procSampleAll(pids)
  const lb = procSampleAll(lg.pids)
  const sb = systemCpu()
  const agg: Aggregate = await lg.pause()
  driver.stop()
  const d = await drive
  // frames still queued when the driver stopped (a server or the machine that could not keep up) drain first
  const drainMs = await lg.waitQuiet(Math.max(300, Math.min(1500, 2000 / o.ticksPerSec)), 15_000)
  const probeB = t.probe ? await t.probe().catch((): Record<string, number> => ({})) : {}
  let latAgg: Aggregate = agg
  if (o.latency) {
    log(`  ${t.name}: latency window, ${o.latency.ticksPerSec} ticks/s`)
    const lat = driver.run(o.latency.ticksPerSec, o.latency.warmupMs + o.latency.windowMs + 60_000)
    await sleep(o.latency.warmupMs)
    await lg.measure()
    await sleep(o.latency.windowMs)
    latAgg = await lg.pause()
    driver.stop()
    await lat
  }
  const serverProbe: Record<string, number> = {}
  for (const k of Object.keys(probeB)) serverProbe[k] = (probeB[k] ?? 0) - (probeA[k] ?? 0)
  const closed = await lg.closeAll(10_000)
  const after = procSampleAll(pids)
  // frames are counted between each load generator's measure and pause: divide by that window
  const windowS = agg.windowMs > 0 ? agg.windowMs / 1000 : (b.t - a.t) / 1000
  const frames = agg.dataFrames.ticker ?? 0
  const cpuS = b.cpuS - a.cpuS
  const offered = o.ticksPerSec * o.n
  return {
    server: t.name,
    n: o.n,
    connected: conn.connected,
    connectWallMs: round(conn.wallMs, 0),
    connectMs: connAgg.connect,
    failures: connAgg.failures,
    retried: connAgg.retried,
    connectedAfterRetry: connAgg.connectedAfterRetry,
    ticksPerSec: o.ticksPerSec,
    offeredFramesPerSec: offered,
    deliveredFramesPerSec: frames / windowS,
    deliveryRatio: offered > 0 ? frames / windowS / offered : NaN,
    serverCpuPercent: cpuPct(a, b),
    serverUserCpuPercent: ((b.userS - a.userS) / ((b.t - a.t) / 1000)) * 100,
    serverSysCpuPercent: ((b.sysS - a.sysS) / ((b.t - a.t) / 1000)) * 100,
    framesPerCpuSecond: cpuS > 0 ? frames / cpuS : NaN,
    framesPerMarginalCpuSecond:
      cpuS - (idleCpu / 100) * ((b.t - a.t) / 1000) > 0 ? frames / (cpuS - (idleCpu / 100) * ((b.t - a.t) / 1000)) : NaN,
    clientCpuPercent: cpuPct(la, lb),
    machineCpuPercent: systemCpuPercent(sa, sb),
    idleServerCpuPercent: idleCpu,
    rssBeforeBytes: before.rssBytes,
    rssIdleBytes: idle.rssBytes,
    rssPerIdleConnBytes: conn.connected > 0 ? (idle.rssBytes - before.rssBytes) / conn.connected : NaN,
    rssMeasuredAfterGc: gcBefore && gcIdle,
    rssAfterBytes: after.rssBytes,
    avgFrameBytes: agg.frames > 0 ? agg.bytes / agg.frames : NaN,
    gaps: agg.gaps + (latAgg === agg ? 0 : latAgg.gaps),
    backlogDrainMs: round(drainMs, 0),
    latency: {
      ticksPerSec: o.latency?.ticksPerSec ?? o.ticksPerSec,
      sourceToClient: latAgg.latencySource,
      sendToClient: latAgg.latency,
      probeSourceToClient: latAgg.probeLatencySource,
      probeSendToClient: latAgg.probeLatency,
    },
    latencyAtThroughputRate: { sourceToClient: agg.latencySource, probeSourceToClient: agg.probeLatencySource },
    closed,
    serverProbe,
    drive: { sent: d.sent, ok: d.ok, skipped: d.skipped, errors: d.errors },
  }
}
