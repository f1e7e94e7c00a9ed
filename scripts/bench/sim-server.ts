/**
 * The LN Markets simulator for the bench and stress runs, in its own process so its CPU is never counted
 * as the gateway's: rate limits raised (the load is ours, on loopback), the 1 s price walk disabled so the
 * only price changes are the driver's `POST /__sim/price` calls, accounts from SIM_ACCOUNTS_FILE.
 * Answers {op:'requests', sinceMs} over IPC with the upstream request count by path and by API key (signed
 * requests; admin routes excluded).
 * env: SIM_PORT (0 = any), SIM_ACCOUNTS_FILE. Tells its parent {ready, port, url, streamUrl}.
 */
import { loadAccountsFile, startSimulator } from '../../backend/simulator/index.ts'

const file = process.env.SIM_ACCOUNTS_FILE
const accounts = file ? loadAccountsFile(file) : undefined
const sim = await startSimulator({
  port: Number(process.env.SIM_PORT ?? 0),
  host: '127.0.0.1',
  ...(accounts !== undefined && { accounts }),
  admin: true,
  seed: 7,
  tickMs: 2_000_000_000,
  initialPrice: 100_000,
  rateLimit: { publicPerSec: 100_000, authPerSec: 100_000 },
  streamIdleMs: 3_600_000,
})

process.on('message', (m: any) => {
  if (m?.op === 'requests') {
    const log = sim.stats.log().filter((e) => m.sinceMs === undefined || e.ts >= m.sinceMs)
    const byPath: Record<string, number> = {}
    const byKey: Record<string, number> = {}
    for (const e of log) {
      byPath[`${e.method} ${e.path}`] = (byPath[`${e.method} ${e.path}`] ?? 0) + 1
      if (e.key) byKey[e.key] = (byKey[e.key] ?? 0) + 1
    }
    process.send?.({ id: m.id, total: log.length, byPath, byKey })
  } else if (m?.op === 'reset') {
    sim.stats.reset()
    process.send?.({ id: m.id })
  }
})
const stop = () => {
  void sim.close().finally(() => process.exit(0))
}
process.on('disconnect', stop)
process.on('SIGTERM', stop)
process.send?.({ ready: true, port: sim.port, url: sim.url, streamUrl: sim.streamUrl })
