/**
 * npm run bench — every figure measured side by side in one run on this machine, printed as a ratio to its
 * reference (CONTRACT §8), written to bench/results/<date>.json with the machine's description.
 *
 * Processes (separate, so each server's CPU is its own): the LN Markets simulator (scripts/bench/sim-server.ts),
 * the gateway (backend/server.ts, live mode against the simulator), the bare-ws and Socket.IO references
 * (fresh per run, fed by the same Stream v1 ticker as the gateway), 2 bulk load-generator processes + 1 probe,
 * autocannon in its own process. All on loopback; every phase bounded in time.
 *
 * Options: --quick (tiny N, for the smoke test) --n 1000,10000 --frames-per-sec 50000 --window 10 (s)
 *          --accounts 20 --dashboards-per-account 100 --economy-window 20 (s) --dashboard-duration 6 (s) --fanout-accounts 5 --phases fanout,economy,dashboard,push
 *          --push-accounts 5 --push-window 60 (s) --push-trades 10 (phase `push`, scripts/bench/push.ts; `--phases push` runs it alone, ≈ 2.5 min)
 *          --no-gateway (references only) --database-url postgres://… (instead of the embedded PGlite) --out <file> --no-gc --cpu-prof (writes a CPU profile of the gateway into bench/results/)
 *          --gateway-node-flags='--max-semi-space-size=4 --max-old-space-size=256' (extra node flags for the gateway, space-separated: A/B runs of V8 settings)
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { boolArg, intArg, numArg, parseArgs } from '../lib/args.ts'
import { describeMachine, machineLine } from '../lib/machine.ts'
import { LoadGen } from '../lib/loadgen.ts'
import { sourceAddresses } from '../lib/net.ts'
import { forkTs, inspectorUrl, procSampleAll, remoteGc, ROOT, rpc, sleep, stopChild, waitMessage } from '../lib/proc.ts'
import { makeSimAccounts, startRef, startSim } from '../lib/servers.ts'
import { PriceDriver } from '../lib/ticker.ts'
import { fmt, fmtRatio, markdownTable, ratio, round, table } from '../lib/stats.ts'
import { metrics, promValue, provisionUsers, startGateway, type BenchUser, type Gateway } from '../lib/gateway.ts'
import { fanoutRun, type FanoutResult, type Target } from './fanout.ts'
import { pushRun } from './push.ts'
import { createRunDatabase, type RunDatabase } from '../lib/pg-database.ts'

const args = parseArgs()
const quick = boolArg(args, 'quick')
const Ns = (args.get('n') ?? (quick ? '150' : '10000,1000'))
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => n > 0)
  .sort((a, b) => b - a)
const framesPerSec = numArg(args, 'frames-per-sec', quick ? 3000 : 50_000, 1)
/** the latency window's rate: one every server sustains on this machine (10 ticks/s at 1k, 1 at 10k) */
const latencyFramesPerSec = numArg(args, 'latency-frames-per-sec', quick ? 1000 : 10_000, 1)
const latencyWindowMs = numArg(args, 'latency-window', quick ? 2 : 10, 1, 120) * 1000
const windowMs = numArg(args, 'window', quick ? 2 : 10, 1, 120) * 1000
const warmupMs = quick ? 1000 : 2000
const settleMs = quick ? 600 : 3000
const accountsN = intArg(args, 'accounts', quick ? 3 : 20, 1, 2000)
const perAccount = intArg(args, 'dashboards-per-account', quick ? 4 : 100, 2, 1000)
const fanoutAccounts = intArg(args, 'fanout-accounts', quick ? 2 : 5, 1, 2000)
const economyWindowMs = numArg(args, 'economy-window', quick ? 4 : 20, 1, 300) * 1000
const dashDurationS = intArg(args, 'dashboard-duration', quick ? 2 : 6, 1, 60)
const phases = new Set((args.get('phases') ?? 'fanout,economy,dashboard,push').split(','))
const withGateway = !boolArg(args, 'no-gateway')
/** phase `push` starts gateways of its own: the shared one only for the other phases */
const withMainGateway = withGateway && [...phases].some((p) => p !== 'push')
// K + 1 private streams start at once (the node's start burst is 6)
const pushK = intArg(args, 'push-accounts', quick ? 2 : 5, 1, 5)
const pushWindowMs = numArg(args, 'push-window', quick ? 10 : 60, 5, 120) * 1000
const pushTrades = intArg(args, 'push-trades', quick ? 3 : 10, 1, 100)
const cpuProf = boolArg(args, 'cpu-prof')
/** extra node flags for the gateway process (space-separated, each starting with --), recorded in the results */
const gatewayNodeFlags = (args.get('gateway-node-flags') ?? '').split(/\s+/).filter((f) => f.startsWith('--'))
/** servers start with an inspector on a loopback port so a full GC precedes each RSS reading (--no-gc: not) */
const withGc = !boolArg(args, 'no-gc')
/**
 * At every N, the gateway again as `WORKERS=<n>` processes on one port (node:cluster, in-host bus, one
 * PostgreSQL database: a throw-away one on the local server unless --database-url is given); 1 = not run.
 */
const gatewayWorkers = intArg(args, 'gateway-workers', quick ? 1 : 2, 1, 16)
const started = new Date()
const resultsDir = join(ROOT, 'bench/results')
const outFile = args.get('out') ?? join(resultsDir, `${started.toISOString().replace(/[:.]/g, '-')}.json`)
const deadline = Date.now() + (quick ? 120_000 : gatewayWorkers > 1 ? 720_000 : 570_000)

const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`)
const budgetLeft = () => deadline - Date.now()

async function main(): Promise<void> {
  const machine = describeMachine()
  log(`bench on ${machineLine(machine)}`)
  const dir = mkdtempSync(join(tmpdir(), 'lnm-bench-run-'))
  const accounts = makeSimAccounts(accountsN)
  // phase push: accounts of its own (K with push, K polling only), watched by its own gateways
  const pushAccounts = makeSimAccounts(2 * pushK + 1, 'push')
  const sim = await startSim(dir, [...accounts, ...pushAccounts])
  log(`simulator pid ${sim.pid} on :${sim.port}`)
  const driver = new PriceDriver(`http://127.0.0.1:${sim.port}`)
  let gw: Gateway | null = null
  let users: BenchUser[] = []
  let gwInspector: string | null = null
  const profDir = join(resultsDir, 'profiles')
  if (withMainGateway) {
    if (cpuProf) mkdirSync(profDir, { recursive: true })
    gw = await startGateway({
      apiUrl: sim.url,
      streamUrl: sim.streamUrl,
      env: {
        POLL_INTERVAL_MS: '1000',
        TICKER_INTERVAL_MS: '600000',
        ...(args.get('database-url') ? { DATABASE_URL: args.get('database-url') as string } : {}),
      },
      nodeArgs: [
        ...gatewayNodeFlags,
        ...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []),
        ...(withGc ? ['--inspect=127.0.0.1:0'] : []),
      ],
    })
    log(`gateway pid ${gw.pids().join(',')} on :${gw.port}`)
    gwInspector = withGc ? inspectorUrl(gw.output()) : null
    users = await provisionUsers(gw.origin, accounts)
    log(`${users.length} users registered, logged in, credentials stored`)
  }
  const tokens = users.map((u) => u.token)
  /** fan-out dashboards spread over a few accounts: their pollers' CPU is part of the gateway's, kept small and constant */
  const fanoutTokens = tokens.slice(0, Math.min(fanoutAccounts, tokens.length))
  const lg = await LoadGen.start(2, true)
  const localAddresses = sourceAddresses(8)

  const result: Record<string, any> = {
    kind: 'lnm-gateway bench',
    startedAt: started.toISOString(),
    machine,
    settings: {
      Ns,
      framesPerSec,
      windowMs,
      latencyFramesPerSec,
      latencyWindowMs,
      fanoutAccounts,
      warmupMs,
      settleMs,
      accounts: accountsN,
      dashboardsPerAccount: perAccount,
      economyWindowMs,
      quick,
      gatewayEnv: { POLL_INTERVAL_MS: 1000, TICKER_INTERVAL_MS: 600000, NODE_ENV: 'production', LOG_LEVEL: 'warn' },
      gatewayNodeFlags,
      gatewayWorkers,
      loadGenerators: { bulk: 2, probe: 1 },
      push: {
        accounts: pushK,
        windowMs: pushWindowMs,
        trades: pushTrades,
        gatewayEnv: { POLL_INTERVAL_MS: 5000, PUSH_RECONCILE_MS: 30000 },
      },
    },
    fanout: [] as FanoutResult[],
  }

  try {
    // ---------------------------------------------------------------- fan-out, latency, RSS
    if (phases.has('fanout')) {
      for (const n of Ns) {
        const ticks = Math.max(1, Math.min(200, Math.round(framesPerSec / n)))
        const probeConns = Math.min(100, Math.max(10, Math.round(n / 100)))
        const latTicks = Math.max(1, Math.min(200, Math.round(latencyFramesPerSec / n)))
        const opts = {
          n,
          ticksPerSec: ticks,
          warmupMs,
          windowMs,
          settleMs,
          probeConnections: probeConns,
          localAddresses,
          latency: { ticksPerSec: latTicks, windowMs: latencyWindowMs, warmupMs: quick ? 500 : 1500 },
        }
        log(`fan-out N=${n}: ${ticks} ticks/s (${(ticks * n).toLocaleString('en-US')} frames/s offered), ${windowMs / 1000} s window`)
        const order: Array<Target['name']> = withGateway ? ['gateway', 'ws', 'sio'] : ['ws', 'sio']
        if (withGateway && gatewayWorkers > 1) order.splice(1, 0, 'gateway-workers')
        for (const name of order) {
          if (budgetLeft() < 60_000) {
            log('time budget nearly spent: skipping the rest of fan-out')
            break
          }
          let target: Target
          let stop = async () => {}
          if (name === 'gateway' && gw) {
            const g = gw
            target = {
              name,
              kind: 'gateway',
              url: g.wsUrl,
              pids: g.pids,
              tokens: fanoutTokens,
              ...(withGc && { gc: () => remoteGc(gwInspector) }),
              probe: async () => {
                const m = await metrics(g.origin)
                return {
                  fanoutSeconds: promValue(m, 'lnm_gateway_fanout_duration_seconds_sum'),
                  fanouts: promValue(m, 'lnm_gateway_fanout_duration_seconds_count'),
                }
              },
            }
          } else if (name === 'gateway-workers') {
            let db: RunDatabase
            try {
              db = await createRunDatabase({
                given: args.get('database-url'),
                prefix: 'lnm_bench',
                why: `the gateway with WORKERS=${gatewayWorkers} shares one PostgreSQL database`,
              })
            } catch (e) {
              log(`  gateway WORKERS=${gatewayWorkers}: not run — ${(e as Error).message}`)
              result.gatewayWorkersSkipped = (e as Error).message
              continue
            }
            const cg = await startGateway({
              apiUrl: sim.url,
              streamUrl: sim.streamUrl,
              workers: gatewayWorkers,
              env: { POLL_INTERVAL_MS: '1000', TICKER_INTERVAL_MS: '600000', DATABASE_URL: db.url },
              nodeArgs: gatewayNodeFlags,
            }).catch(async (e: unknown) => {
              await db.drop()
              throw e
            })
            log(`  gateway WORKERS=${gatewayWorkers}: pids ${cg.pids().join(',')} on :${cg.port}`)
            const cgUsers = await provisionUsers(cg.origin, accounts.slice(0, fanoutAccounts))
            target = {
              name,
              kind: 'gateway',
              url: cg.wsUrl,
              pids: cg.pids,
              tokens: cgUsers.map((u) => u.token),
            }
            stop = async () => {
              result.gatewayWorkersOutputTail = cg.output().slice(-2000)
              await cg.stop()
              await db.drop()
            }
          } else {
            const ref = await startRef(name as 'ws' | 'sio', sim.streamUrl, withGc)
            await sleep(300)
            const refInspector = withGc ? inspectorUrl(ref.output()) : null
            target = {
              name,
              kind: name,
              url: ref.url,
              pids: () => [ref.pid],
              ...(withGc && { gc: () => remoteGc(refInspector) }),
              probe: async () => {
                const st = await rpc(ref.proc, { op: 'stats' }, 10_000)
                return { fanoutSeconds: st.fanoutSeconds as number, fanouts: st.fanouts as number }
              },
            }
            stop = () => stopChild(ref.proc)
          }
          try {
            const r = await fanoutRun(lg, target, driver, opts, log)
            result.fanout.push(r)
            log(
              `  ${name}: ${fmt(r.deliveredFramesPerSec, 0)} frames/s delivered (${(r.deliveryRatio * 100).toFixed(1)} %), server CPU ${r.serverCpuPercent.toFixed(1)} %, ` +
                `${fmt(r.framesPerCpuSecond, 0)} frames/CPU-s, p99 ${fmt(r.latency.probeSourceToClient?.p99 ?? r.latency.sourceToClient.p99, 1)} ms, ` +
                `RSS/conn ${fmt(r.rssPerIdleConnBytes / 1024, 2)} KiB`,
            )
          } finally {
            await stop()
          }
          await sleep(quick ? 200 : 1000)
        }
      }
    }

    // ---------------------------------------------------------------- upstream economy
    if (phases.has('economy') && gw && budgetLeft() > economyWindowMs * 2 + 30_000) {
      log(`upstream economy: ${accountsN} accounts, 1 then ${perAccount} dashboards per account, ${economyWindowMs / 1000} s windows`)
      // wait out the poller grace of the fan-out runs so only these dashboards drive polling
      await sleep(quick ? 500 : 2000)
      const window = async (label: string) => {
        await sleep(quick ? 1500 : 3000)
        await rpc(sim.proc, { op: 'reset' }, 10_000)
        const t0 = Date.now()
        await sleep(economyWindowMs)
        const r = await rpc(sim.proc, { op: 'requests' }, 10_000)
        const perMin = (r.total as number) / ((Date.now() - t0) / 60_000)
        log(`  ${label}: ${r.total} exchange requests in ${((Date.now() - t0) / 1000).toFixed(1)} s = ${perMin.toFixed(1)}/min`)
        return { total: r.total as number, perMinute: perMin, byPath: r.byPath as Record<string, number> }
      }
      const c1 = await lg.connect({
        kind: 'gateway',
        url: gw.wsUrl,
        count: accountsN,
        tokens,
        localAddresses,
        concurrency: 32,
        reset: true,
        retries: 3,
      })
      const one = await window(`1 dashboard/account (${c1.connected} sockets)`)
      const c2 = await lg.connect(
        { kind: 'gateway', url: gw.wsUrl, count: accountsN * (perAccount - 1), tokens, localAddresses, concurrency: 48, retries: 3 },
        0,
      )
      const many = await window(`${perAccount} dashboards/account (${c1.connected + c2.connected} sockets)`)
      await lg.closeAll(10_000)
      result.economy = {
        accounts: accountsN,
        pollIntervalMs: 1000,
        windowMs: economyWindowMs,
        one: { dashboards: c1.connected, ...one },
        many: { dashboardsPerAccount: perAccount, dashboards: c1.connected + c2.connected, ...many },
        ratio: ratio(many.perMinute, one.perMinute),
      }
    }

    // ---------------------------------------------------------------- /api/dashboard throughput
    if (phases.has('dashboard') && gw && budgetLeft() > dashDurationS * 4000 + 20_000) {
      log(`/api/dashboard: autocannon ${dashDurationS} s per case, 32 connections`)
      const token = tokens[0]
      // a fresh ticker (no tick for 30 s would flip it to stale, and the ETag with it, mid-run)
      await driver.run(2, 700)
      await sleep(300)
      const first = await fetch(`${gw.origin}/api/dashboard`, { headers: { authorization: `Bearer ${token}` } })
      const body = Buffer.from(await first.arrayBuffer())
      const etag = first.headers.get('etag') ?? ''
      const bodyFile = join(dir, 'dashboard.json')
      writeFileSync(bodyFile, body)
      const ac = forkTs('scripts/bench/autocannon-worker.ts')
      await waitMessage(ac, (m) => m?.ready, 20_000, 'autocannon worker')
      const refHttp = forkTs('scripts/bench/ref-http.ts', [], {
        env: { PORT: '0', BODY_FILE: bodyFile, ETAG: etag || '"ref"', JWT_SECRET: gw.env.JWT_SECRET },
      })
      const refReady = await waitMessage<any>(refHttp, (m) => m?.ready, 20_000, 'http reference')
      const run = async (label: string, url: string, headers: Record<string, string>, pids: number[]) => {
        const a = procSampleAll(pids)
        const r = await rpc(
          ac,
          { op: 'run', opts: { url, connections: 32, duration: dashDurationS, headers } },
          dashDurationS * 1000 + 30_000,
        )
        const b = procSampleAll(pids)
        const cpu = ((b.cpuS - a.cpuS) / ((b.t - a.t) / 1000)) * 100
        log(
          `  ${label}: ${fmt(r.rps, 0)} req/s, p99 ${r.latency.p99} ms, codes ${JSON.stringify(r.statusCodes)}, server CPU ${cpu.toFixed(0)} %`,
        )
        return { ...r, serverCpuPercent: cpu }
      }
      const auth = { authorization: `Bearer ${token}` }
      // JIT warm-up of both servers' request paths (not counted)
      await rpc(ac, { op: 'run', opts: { url: `${gw.origin}/api/dashboard`, connections: 8, duration: 2, headers: auth } }, 40_000)
      await rpc(
        ac,
        { op: 'run', opts: { url: `http://127.0.0.1:${refReady.port}/api/dashboard`, connections: 8, duration: 2, headers: auth } },
        40_000,
      )
      // the If-None-Match case first, right after the ETag was read, while the snapshots are surely unchanged
      const g304 = await run('gateway, If-None-Match', `${gw.origin}/api/dashboard`, { ...auth, 'if-none-match': etag }, gw.pids())
      const g200 = await run('gateway, no If-None-Match', `${gw.origin}/api/dashboard`, auth, gw.pids())
      const refOrigin = `http://127.0.0.1:${refReady.port}`
      const r200 = await run('bare Fastify + same JWT check, same body', `${refOrigin}/api/dashboard`, auth, [refHttp.pid as number])
      const r304 = await run(
        'bare Fastify + same JWT check, If-None-Match',
        `${refOrigin}/api/dashboard`,
        { ...auth, 'if-none-match': etag || '"ref"' },
        [refHttp.pid as number],
      )
      await stopChild(ac)
      await stopChild(refHttp)
      result.dashboard = {
        bodyBytes: body.length,
        etag: etag !== '',
        connections: 32,
        durationS: dashDurationS,
        gateway200: g200,
        gateway304: g304,
        reference200: r200,
        reference304: r304,
      }
    }
    // ---------------------------------------------------------------- exchange push vs polling
    if (phases.has('push') && withGateway && budgetLeft() > pushWindowMs + 110_000) {
      log(
        `exchange push: ${pushK} accounts with a private stream vs ${pushK} polling only, ${pushWindowMs / 1000} s window, ${pushTrades} trades on one more pushed account`,
      )
      result.push = await pushRun(
        { sim, accounts: pushAccounts, k: pushK, settleMs: quick ? 6000 : 45_000, windowMs: pushWindowMs, trades: pushTrades },
        log,
      )
    } else if (phases.has('push') && withGateway) log('time budget nearly spent: skipping the push phase')
  } finally {
    driver.stop()
    await driver.close()
    await lg.stop()
    if (gw) {
      result.gatewayOutputTail = gw.output().slice(-2000)
      await gw.stop()
    }
    await stopChild(sim.proc)
    rmSync(dir, { recursive: true, force: true })
  }

  result.finishedAt = new Date().toISOString()
  result.loadAvgAtEnd = (await import('node:os')).loadavg().map((x) => round(x, 2))
  result.durationS = round((Date.now() - started.getTime()) / 1000, 1)
  const rows = summaryRows(result)
  result.targets = targets(result)
  result.table = rows
  const text = table(rows)
  result.markdown =
    markdownTable(rows) +
    '\n\n' +
    markdownTable([['target', 'measured', 'met'], ...result.targets.map((t: any) => [t.target, t.measured, t.met ? 'yes' : '**no**'])])
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(outFile, JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n')
  process.stdout.write(`\nlnm-gateway bench — ${machineLine(machine)}\n${started.toISOString()}, ${result.durationS} s\n\n${text}\n\n`)
  if (result.targets.length)
    process.stdout.write(
      table([['target', 'measured', 'met'], ...result.targets.map((t: any) => [t.target, t.measured, t.met ? 'yes' : 'NO'])]) + '\n\n',
    )
  if (boolArg(args, 'markdown')) process.stdout.write(result.markdown + '\n\n')
  process.stdout.write(`written: ${outFile}\n`)
}

function fr(result: Record<string, any>, server: string, n: number): FanoutResult | undefined {
  return (result.fanout as FanoutResult[]).find((r) => r.server === server && r.n === n)
}

const lat = (r: FanoutResult | undefined) => r?.latency.probeSourceToClient ?? r?.latency.sourceToClient
/** p99 during the throughput window (the saturating rate) */
const satP99 = (r: FanoutResult | undefined) =>
  (r?.latencyAtThroughputRate.probeSourceToClient ?? r?.latencyAtThroughputRate.sourceToClient)?.p99 ?? NaN

function summaryRows(result: Record<string, any>): string[][] {
  const rows: string[][] = [['figure', 'gateway', 'bare ws', 'Socket.IO', 'gw / ws', 'gw / Socket.IO']]
  const row3 = (label: string, f: (r: FanoutResult | undefined) => number, d = 1, n: number) => {
    const g = f(fr(result, 'gateway', n)),
      w = f(fr(result, 'ws', n)),
      s = f(fr(result, 'sio', n))
    rows.push([label, fmt(g, d), fmt(w, d), fmt(s, d), fmtRatio(ratio(g, w)), fmtRatio(ratio(g, s))])
  }
  const lower = (label: string, f: (r: FanoutResult | undefined) => number, d: number, n: number) => {
    // for costs (latency, memory) the ratio is still gateway ÷ reference: below 1 is better
    row3(label, f, d, n)
  }
  for (const n of phases.has('fanout') ? Ns : []) {
    const k = n >= 1000 ? `${n / 1000}k` : String(n)
    row3(`fan-out N=${k}: frames/s delivered`, (r) => r?.deliveredFramesPerSec ?? NaN, 0, n)
    row3(`fan-out N=${k}: delivered / offered %`, (r) => (r ? r.deliveryRatio * 100 : NaN), 1, n)
    row3(`fan-out N=${k}: backlog drain after stop, ms`, (r) => r?.backlogDrainMs ?? NaN, 0, n)
    row3(`fan-out N=${k}: server CPU % of a core`, (r) => r?.serverCpuPercent ?? NaN, 1, n)
    row3(`fan-out N=${k}:   of which system (kernel) %`, (r) => r?.serverSysCpuPercent ?? NaN, 1, n)
    row3(`fan-out N=${k}: frames per CPU-second`, (r) => r?.framesPerCpuSecond ?? NaN, 0, n)
    row3(`fan-out N=${k}: frames per CPU-s above idle`, (r) => r?.framesPerMarginalCpuSecond ?? NaN, 0, n)
    row3(
      `fan-out N=${k}: broadcast loop ms per tick`,
      (r) => (r && r.serverProbe.fanouts! > 0 ? (r.serverProbe.fanoutSeconds! / r.serverProbe.fanouts!) * 1000 : NaN),
      2,
      n,
    )
    lower(
      `latency N=${k} at ${fr(result, 'ws', n)?.latency.ticksPerSec ?? fr(result, 'gateway', n)?.latency.ticksPerSec ?? '?'} ticks/s: p50 ms`,
      (r) => lat(r)?.p50 ?? NaN,
      2,
      n,
    )
    lower(`latency N=${k}: p99 ms`, (r) => lat(r)?.p99 ?? NaN, 2, n)
    lower(`latency N=${k}: max ms`, (r) => lat(r)?.max ?? NaN, 2, n)
    lower(`latency N=${k}: p99 ms, all sockets`, (r) => r?.latency.sourceToClient.p99 ?? NaN, 2, n)
    lower(
      `latency N=${k}: p99 ms at the fan-out rate`,
      (r) => r?.latencyAtThroughputRate.probeSourceToClient?.p99 ?? r?.latencyAtThroughputRate.sourceToClient.p99 ?? NaN,
      1,
      n,
    )
  }
  const nMax = Ns[0]
  for (const n of phases.has('fanout') ? Ns : []) {
    const cw = fr(result, 'gateway-workers', n)
    if (!cw) continue
    const k = n >= 1000 ? `${n / 1000}k` : String(n)
    const w = fr(result, 'ws', n)
    const label = `gateway WORKERS=${gatewayWorkers}`
    const vsWs = (label2: string, g: number, r: number, d: number) =>
      rows.push([label2, fmt(g, d), fmt(r, d), '', fmtRatio(ratio(g, r)), ''])
    vsWs(`fan-out N=${k}, ${label}: frames/s delivered`, cw.deliveredFramesPerSec, w?.deliveredFramesPerSec ?? NaN, 0)
    vsWs(`fan-out N=${k}, ${label}: server CPU % (all processes)`, cw.serverCpuPercent, w?.serverCpuPercent ?? NaN, 1)
    vsWs(`fan-out N=${k}, ${label}: frames per CPU-second`, cw.framesPerCpuSecond, w?.framesPerCpuSecond ?? NaN, 0)
    vsWs(`latency N=${k}, ${label} (ws: one process): p50 ms`, lat(cw)?.p50 ?? NaN, lat(w)?.p50 ?? NaN, 2)
    vsWs(`latency N=${k}, ${label} (ws: one process): p99 ms`, lat(cw)?.p99 ?? NaN, lat(w)?.p99 ?? NaN, 2)
    vsWs(`latency N=${k}, ${label}: p99 ms at the fan-out rate`, satP99(cw), satP99(w), 1)
  }
  if (nMax && phases.has('fanout'))
    lower(
      `RSS per idle connection KiB (N=${nMax >= 1000 ? `${nMax / 1000}k` : nMax})`,
      (r) => (r ? r.rssPerIdleConnBytes / 1024 : NaN),
      2,
      nMax,
    )
  const e = result.economy
  if (e) {
    rows.push(['upstream req/min, 1 dashboard/account', fmt(e.one.perMinute, 1), '', '', '', ''])
    rows.push([
      `upstream req/min, ${e.many.dashboardsPerAccount} dashboards/account`,
      fmt(e.many.perMinute, 1),
      '',
      '',
      `${fmtRatio(e.ratio)} of 1/account`,
      '',
    ])
  }
  const p = result.push
  if (p) {
    rows.push([
      'upstream REST req/min per watched account, private stream healthy',
      fmt(p.push.perAccountPerMinute, 1),
      '',
      '',
      `${fmtRatio(p.ratio)} of polling`,
      '',
    ])
    rows.push(['upstream REST req/min per watched account, polling only', fmt(p.polling.perAccountPerMinute, 1), '', '', '', ''])
    rows.push([
      `exchange event → dashboard data_update, p50 / p99 ms (n=${p.latency.n})`,
      `${fmt(p.latency.p50, 0)} / ${fmt(p.latency.p99, 0)}`,
      '',
      '',
      '',
      '',
    ])
  }
  const d = result.dashboard
  if (d) {
    rows.push([
      '/api/dashboard req/s, 200 (vs bare Fastify + same JWT check)',
      fmt(d.gateway200.rps, 0),
      fmt(d.reference200.rps, 0),
      '',
      fmtRatio(ratio(d.gateway200.rps, d.reference200.rps)),
      '',
    ])
    rows.push([
      '/api/dashboard req/s, If-None-Match → 304',
      fmt(d.gateway304.rps, 0),
      fmt(d.reference304.rps, 0),
      '',
      fmtRatio(ratio(d.gateway304.rps, d.reference304.rps)),
      '',
    ])
    rows.push(['/api/dashboard 304 ÷ 200 (gateway)', fmtRatio(ratio(d.gateway304.rps, d.gateway200.rps)), '', '', '', ''])
  }
  return rows
}

const fmtRatio3 = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(3)}×` : '–')

/** issue 11's targets (ratios in one run; the WORKERS figure from the cluster run at the largest N) */
function targets(result: Record<string, any>): Array<{ target: string; measured: string; met: boolean; value: number }> {
  const out: Array<{ target: string; measured: string; met: boolean; value: number }> = []
  for (const n of Ns) {
    const g = fr(result, 'gateway', n),
      w = fr(result, 'ws', n),
      s = fr(result, 'sio', n)
    if (g && w) {
      const v = ratio(g.framesPerCpuSecond, w.framesPerCpuSecond)
      out.push({ target: `fan-out N=${n} ≥ 1.2× bare ws (frames per CPU-s)`, measured: fmtRatio3(v), met: v >= 1.2, value: v })
      const dv = ratio(g.deliveredFramesPerSec, w.deliveredFramesPerSec)
      out.push({ target: `fan-out N=${n}: frames/s delivered ≥ 1× bare ws`, measured: fmtRatio3(dv), met: dv >= 0.995, value: dv })
    }
    if (g && s) {
      const v = ratio(g.framesPerCpuSecond, s.framesPerCpuSecond)
      out.push({ target: `fan-out N=${n} ≥ 1.5× Socket.IO (frames per CPU-s)`, measured: fmtRatio3(v), met: v >= 1.5, value: v })
    }
  }
  const small = Ns.find((n) => n <= 1000)
  if (small !== undefined) {
    const g = fr(result, 'gateway', small),
      w = fr(result, 'ws', small)
    const pg = satP99(g)
    const pw = satP99(w)
    const v = ratio(pg, pw)
    if (Number.isFinite(v))
      out.push({
        target: `p99 at the saturating fan-out rate, N=${small} ≤ 0.5× bare ws`,
        measured: `${fmtRatio3(v)} (${fmt(pg, 1)} vs ${fmt(pw, 1)} ms)`,
        met: v <= 0.5,
        value: v,
      })
    const pc = satP99(fr(result, 'gateway-workers', small))
    const vc = ratio(pc, pw)
    if (Number.isFinite(vc))
      out.push({
        target: `same, gateway WORKERS=${gatewayWorkers} (bare ws: one process) ≤ 0.5×`,
        measured: `${fmtRatio3(vc)} (${fmt(pc, 1)} vs ${fmt(pw, 1)} ms)`,
        met: vc <= 0.5,
        value: vc,
      })
  }
  if (result.economy)
    out.push({
      target: `upstream, ${result.economy.many.dashboardsPerAccount}/account ≤ 1.05× 1/account`,
      measured: fmtRatio3(result.economy.ratio),
      met: result.economy.ratio <= 1.05,
      value: result.economy.ratio,
    })
  const big = Ns.find((n) => n >= 10_000) ?? Ns[0]!
  const g = fr(result, 'gateway', big)
  if (g) {
    const p99 = lat(g)?.p99 ?? NaN
    const pw = lat(fr(result, 'ws', big))?.p99 ?? NaN
    out.push({
      target: `gateway-added p99 at N=${big} (one process) vs bare ws`,
      measured: `${fmt(p99, 1)} vs ${fmt(pw, 1)} ms = ${fmtRatio3(ratio(p99, pw))}`,
      met: ratio(p99, pw) <= 0.5,
      value: ratio(p99, pw),
    })
    const cw = fr(result, 'gateway-workers', big)
    if (cw) {
      const c99 = lat(cw)?.p99 ?? NaN
      out.push({
        target: `gateway-added p99 at N=${big}, WORKERS=${gatewayWorkers}, vs bare ws in one process ≤ 0.5×`,
        measured: `${fmt(c99, 1)} vs ${fmt(pw, 1)} ms = ${fmtRatio3(ratio(c99, pw))}`,
        met: ratio(c99, pw) <= 0.5,
        value: ratio(c99, pw),
      })
    }
    const kb = g.rssPerIdleConnBytes / 1024
    out.push({ target: `RSS per idle connection ≤ 8 KiB at N=${big}`, measured: `${fmt(kb, 2)} KiB`, met: kb <= 8, value: kb })
  }
  const p = result.push
  if (p) {
    const v = p.push.perAccountPerMinute
    out.push({
      target: 'upstream REST req/min per watched account with a healthy private stream ≤ 9 (¼ of 36)',
      measured: `${fmt(v, 1)} (polling only ${fmt(p.polling.perAccountPerMinute, 1)})`,
      met: v <= 9,
      value: v,
    })
    out.push({
      target: 'exchange event → dashboard data_update p99 ≤ 250 ms (loopback)',
      measured: `${fmt(p.latency.p99, 0)} ms (n=${p.latency.n})`,
      met: p.latency.p99 <= 250,
      value: p.latency.p99,
    })
  }
  const d = result.dashboard
  if (d) {
    const v = ratio(d.gateway200.rps, d.reference200.rps)
    out.push({
      target: '/api/dashboard req/s ≥ 0.5× bare Fastify with the same JWT check',
      measured: fmtRatio3(v),
      met: v >= 0.5,
      value: v,
    })
  }
  return out
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`bench failed: ${e.stack ?? e.message}\n`)
    process.exit(1)
  },
)
