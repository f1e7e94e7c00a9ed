/**
 * Cell 2: SIGTERM under N sockets whose clients reconnect at once (within 0–100 ms, then backing off).
 * Nothing lost means: every open socket is closed with 1001 (no other code, no silent drop) and the process
 * exits 0 within SHUTDOWN_DRAIN_MS + 2 s, whatever the reconnecting clients do meanwhile.
 */
import { LoadGen } from '../../lib/loadgen.ts'
import { sourceAddresses } from '../../lib/net.ts'
import { makeSimAccounts } from '../../lib/servers.ts'
import { provisionUsers } from '../../lib/gateway.ts'
import { Checks, GatewayProc, log, sleep, startChaosSim, type CellResult } from '../lib.ts'
import type { Ctx } from '../context.ts'

const DRAIN_MS = 2000

export async function sigtermDrain(ctx: Ctx): Promise<Omit<CellResult, 'id' | 'name' | 'seconds'>> {
  const checks = new Checks()
  const N = ctx.sigtermSockets
  const A = Math.min(10, Math.max(2, Math.ceil(N / 500)))
  const accounts = makeSimAccounts(A, 'chaost')
  const sim = await startChaosSim(ctx.dir, accounts)
  const gw = await GatewayProc.create({ apiUrl: sim.url, streamUrl: sim.streamUrl, env: { SHUTDOWN_DRAIN_MS: String(DRAIN_MS) } })
  let lg: LoadGen | null = null
  try {
    await gw.start()
    const users = await provisionUsers(gw.origin, accounts, 4)
    lg = await LoadGen.start(N > 2000 ? 2 : 1, false)
    const conn = await lg.connect({
      kind: 'gateway',
      url: gw.wsUrl,
      count: N,
      tokens: users.map((u) => u.token),
      localAddresses: sourceAddresses(Math.max(2, Math.ceil(N / 5000))),
      ratePerSec: 1000,
      concurrency: 64,
      timeoutMs: 30_000,
      rpcTimeoutMs: 300_000,
      retries: 3,
      reset: true,
      reconnect: { attempts: 3, baseMs: 100, capMs: 1000 },
    })
    await sleep(2000)
    const before = await lg.report()
    log(`cell 2: ${before.open}/${N} open; SIGTERM`)
    const exit = await gw.signal('SIGTERM', DRAIN_MS + 15_000)
    // let the reconnecting clients finish their attempts (3 tries, ≤ 1 s apart)
    await sleep(4000)
    const after = await lg.report()
    const closes1001 = after.closedByCode['1001'] ?? 0
    const other = Object.entries(after.closedByCode).filter(([k]) => k !== '1001')
    const otherN = other.reduce((a, [, v]) => a + v, 0)
    const figures = {
      sockets: N,
      connected: conn.connected,
      openAtSignal: before.open,
      exit,
      drainMs: DRAIN_MS,
      closedByCode: after.closedByCode,
      reconnects: after.reconnects,
      reconnectRefusals: after.retried,
      reconnectGaveUp: after.failures,
    }
    checks.ok(before.open === N, 'all sockets open before the signal', `${before.open}/${N}`)
    checks.ok(
      closes1001 >= before.open && otherN === 0,
      'every socket got 1001',
      `${closes1001} × 1001 for ${before.open} open; other codes ${otherN ? JSON.stringify(Object.fromEntries(other)) : 'none'}`,
    )
    checks.ok(
      exit !== null && exit.code === 0,
      'exit code 0',
      exit === null
        ? `still running ${DRAIN_MS + 15_000} ms after SIGTERM`
        : `code ${exit.code}${exit.signal ? ` signal ${exit.signal}` : ''}`,
    )
    checks.ok(
      exit !== null && exit.ms <= DRAIN_MS + 2000,
      'exit within SHUTDOWN_DRAIN_MS + 2 s',
      `${exit === null ? '> ' + (DRAIN_MS + 15_000) : exit.ms} ms (limit ${DRAIN_MS + 2000})`,
    )
    const refused = Object.entries(after.retried)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')
    const summary = `${before.open} sockets; ${closes1001} × 1001, ${otherN} other; exit ${exit === null ? 'none (still running)' : `${exit.code ?? exit.signal} after ${exit.ms} ms`}; reconnects refused: ${refused || 'none'}`
    return { held: checks.held, summary, checks: checks.list, figures }
  } finally {
    if (lg) await lg.stop()
    await gw.stop()
    gw.removeData()
    await sim.stop()
  }
}
