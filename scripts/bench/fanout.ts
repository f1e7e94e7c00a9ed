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
  name: 'gateway' | 'ws' | 'sio'
  kind: Kind
  url: string
  pids: () => number[]
  tokens?: string[]
  /** extra figures read from the server itself around the window (the gateway's /metrics) */
  probe?: () => Promise<Record<string, number>>
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
}

export interface FanoutResult {
  server: string
  n: number
  connected: number
  connectWallMs: number
  connectMs: Summary
  failures: Record<string, number>
  ticksPerSec: number
  offeredFramesPerSec: number
  deliveredFramesPerSec: number
  deliveryRatio: number
  serverCpuPercent: number
  framesPerCpuSecond: number
  /** frames per CPU-second above the server's idle CPU with the same connections (polling, timers) */
  framesPerMarginalCpuSecond: number
  clientCpuPercent: number
  machineCpuPercent: number
  idleServerCpuPercent: number
  rssBeforeBytes: number
  rssIdleBytes: number
  rssPerIdleConnBytes: number
  rssAfterBytes: number
  avgFrameBytes: number
  gaps: number
  latency: { sourceToClient: Summary; sendToClient: Summary; probeSourceToClient: Summary | null; probeSendToClient: Summary | null }
  closed: { closed: number; cleanCloses: number }
  serverProbe: Record<string, number>
  drive: { sent: number; ok: number; skipped: number; errors: number }
}

const cpuPct = (a: ProcSample, b: ProcSample) => ((b.cpuS - a.cpuS) / ((b.t - a.t) / 1000)) * 100

export async function fanoutRun(lg: LoadGen, t: Target, driver: PriceDriver, o: FanoutOptions, log: (s: string) => void = () => {}): Promise<FanoutResult> {
  const pids = t.pids()
  const before = procSampleAll(pids)
  log(`  ${t.name}: connecting ${o.n}…`)
  const conn = await lg.connect({
    kind: t.kind, url: t.url, count: o.n, tokens: t.tokens, authVia: 'message', localAddresses: o.localAddresses,
    ratePerSec: o.connectRatePerSec ?? 0, concurrency: o.concurrency ?? 48, timeoutMs: 30_000, reset: true,
  }, o.probeConnections)
  const connAgg = await lg.report()
  log(`  ${t.name}: ${conn.connected}/${o.n} connected in ${(conn.wallMs / 1000).toFixed(1)} s; idle ${o.settleMs} ms`)
  await sleep(Math.min(1000, o.settleMs / 3))
  const idleA = procSampleAll(pids)
  await sleep(o.settleMs - Math.min(1000, o.settleMs / 3))
  const idle = procSampleAll(pids)
  const idleCpu = cpuPct(idleA, idle)
  const drive = driver.run(o.ticksPerSec, o.warmupMs + o.windowMs + 60_000)
  await sleep(o.warmupMs)
  const probeA = t.probe ? await t.probe().catch(() => ({} as Record<string, number>)) : {}
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
  const probeB = t.probe ? await t.probe().catch(() => ({} as Record<string, number>)) : {}
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
    ticksPerSec: o.ticksPerSec,
    offeredFramesPerSec: offered,
    deliveredFramesPerSec: frames / windowS,
    deliveryRatio: offered > 0 ? frames / windowS / offered : NaN,
    serverCpuPercent: cpuPct(a, b),
    framesPerCpuSecond: cpuS > 0 ? frames / cpuS : NaN,
    framesPerMarginalCpuSecond: cpuS - (idleCpu / 100) * ((b.t - a.t) / 1000) > 0 ? frames / (cpuS - (idleCpu / 100) * ((b.t - a.t) / 1000)) : NaN,
    clientCpuPercent: cpuPct(la, lb),
    machineCpuPercent: systemCpuPercent(sa, sb),
    idleServerCpuPercent: idleCpu,
    rssBeforeBytes: before.rssBytes,
    rssIdleBytes: idle.rssBytes,
    rssPerIdleConnBytes: conn.connected > 0 ? (idle.rssBytes - before.rssBytes) / conn.connected : NaN,
    rssAfterBytes: after.rssBytes,
    avgFrameBytes: agg.frames > 0 ? agg.bytes / agg.frames : NaN,
    gaps: agg.gaps,
    latency: { sourceToClient: agg.latencySource, sendToClient: agg.latency, probeSourceToClient: agg.probeLatencySource, probeSendToClient: agg.probeLatency },
    closed,
    serverProbe,
    drive: { sent: d.sent, ok: d.ok, skipped: d.skipped, errors: d.errors },
  }
}
