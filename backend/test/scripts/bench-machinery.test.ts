/**
 * The bench and stress machinery at tiny N, so CI proves it still works: the simulator feed, the bare-ws and
 * Socket.IO references, the load-generator processes, the /proc readings and the statistics; then the stress
 * script end to end against a real gateway (10 dashboards, 2 s hold), checking its JSON report.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LoadGen } from '../../../scripts/lib/loadgen.ts'
import { procSample, stopChild } from '../../../scripts/lib/proc.ts'
import { makeSimAccounts, startRef, startSim } from '../../../scripts/lib/servers.ts'
import { PriceDriver } from '../../../scripts/lib/ticker.ts'
import { percentile, summarize } from '../../../scripts/lib/stats.ts'
import { fanoutRun } from '../../../scripts/bench/fanout.ts'
import { postgresAvailable, withMigratedPostgres } from '../helpers/db.ts'
import { ROOT_DIR } from '../../paths.ts'

const ROOT = ROOT_DIR

// the stress run starts first and runs alongside the other subtests (its gateway's start-up is mostly waiting)
const stressDir = mkdtempSync(join(tmpdir(), 'lnm-stress-smoke-'))
const stressOut = join(stressDir, 'stress.json')
// Its gateway on an already migrated database (a copy of the migrated template, `--database-url`): on a fresh
// DATA_DIR of its own it first ran every migration, ≈ 2 s of CPU and 4–5 s before it listened; the first start on
// a fresh database is proven by build/compiled.test.ts and server.test.ts. Without a PostgreSQL server: as before.
const stressDatabase = (await postgresAvailable()) ? await withMigratedPostgres(t) : undefined
const stressChild = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    join(ROOT, 'scripts/stress.ts'),
    '--connections',
    '10',
    '--accounts',
    '2',
    '--duration',
    '2',
    '--rate',
    '5',
    '--clients',
    '1',
    '--out',
    stressOut,
    ...(stressDatabase ? ['--database-url', stressDatabase] : []),
  ],
  {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  },
)
let stressOutput = ''
stressChild.stdout.on('data', (d) => {
  stressOutput += d
})
stressChild.stderr.on('data', (d) => {
  stressOutput += d
})
const stressExit = new Promise<number | null>((r) => stressChild.on('exit', (c) => r(c)))
t.teardown(() => {
  if (stressChild.exitCode === null) stressChild.kill('SIGKILL')
  rmSync(stressDir, { recursive: true, force: true })
})

t.test('statistics: percentiles and merged summaries', async (t) => {
  const a = Float64Array.from({ length: 100 }, (_, i) => i + 1)
  t.equal(percentile(a, 50), 50, 'p50 of 1..100 is 50')
  t.equal(percentile(a, 99), 99, 'p99 of 1..100 is 99')
  const s = summarize([a.subarray(0, 50), a.subarray(50)])
  t.equal(s.n, 100, 'a summary merges every part')
  t.equal(s.max, 100, 'max of the merged parts')
  t.equal(s.mean, 50.5, 'mean of the merged parts')
})

t.test('references and load generators: every client gets every tick, from separate processes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnm-bench-smoke-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // the processes start side by side (each is mostly a TypeScript load): the simulator with the load generators,
  // then both references on its feed
  const [sim, lg] = await Promise.all([startSim(dir, makeSimAccounts(1, 'smoke')), LoadGen.start(1, true)])
  t.teardown(() => stopChild(sim.proc))
  t.teardown(() => lg.stop())
  const driver = new PriceDriver(`http://127.0.0.1:${sim.port}`)
  t.teardown(() => driver.close())
  t.equal(lg.pids.length, 2, 'one bulk and one probe load-generator process')
  const refs = await Promise.all((['ws', 'sio'] as const).map((kind) => startRef(kind, sim.streamUrl)))
  t.teardown(() => Promise.all(refs.map((ref) => stopChild(ref.proc))))
  for (const [i, kind] of (['ws', 'sio'] as const).entries()) {
    const ref = refs[i]!
    t.ok(procSample(ref.pid).rssBytes > 0, `${kind}: RSS is read from /proc`)
    const r = await fanoutRun(lg, { name: kind, kind, url: ref.url, pids: () => [ref.pid] }, driver, {
      n: 20,
      ticksPerSec: 10,
      warmupMs: 300,
      windowMs: 1000,
      settleMs: 300,
      probeConnections: 4,
      localAddresses: ['127.0.0.2', '127.0.0.3'],
    })
    await stopChild(ref.proc)
    t.equal(r.connected, 20, `${kind}: all 20 clients connected`)
    t.ok(r.deliveryRatio > 0.7 && r.deliveryRatio < 1.3, `${kind}: delivered ≈ offered frames (${r.deliveryRatio.toFixed(2)})`)
    t.equal(r.gaps, 0, `${kind}: no seq gaps`)
    t.ok(Number.isFinite(r.latency.sourceToClient.p99) && r.latency.sourceToClient.p99 >= 0, `${kind}: latency percentiles are measured`)
    t.ok(r.latency.probeSourceToClient !== null, `${kind}: the probe process measured latency too`)
    t.ok(r.avgFrameBytes > 100, `${kind}: frames carry a full ticker snapshot (${Math.round(r.avgFrameBytes)} B)`)
    t.equal(r.closed.cleanCloses, 20, `${kind}: every client closed cleanly`)
  }
})

t.test('npm run stress at tiny N against a real gateway writes a complete report', async (t) => {
  const out = stressOut
  const code = await stressExit
  if (code !== 0) t.comment(stressOutput.slice(-4000))
  t.equal(code, 0, 'stress exits 0 when every connection succeeds')
  const report = JSON.parse(readFileSync(out, 'utf8'))
  t.equal(report.connections.successRate, 1, '100 % of the 10 dashboards connected')
  t.equal(report.hold.openAtEnd, 10, 'all 10 held to the end')
  t.ok(report.hold.tickerFrames > 0, `ticker frames were received (${report.hold.tickerFrames})`)
  t.equal(report.hold.gaps, 0, 'no seq gaps')
  t.ok(report.gateway.peakRssBytes > 0, 'the gateway RSS was sampled')
  t.equal(report.close.cleanCloses, 10, 'every dashboard closed cleanly')
  t.equal(report.gateway.exitCode, 0, 'the gateway exited 0 on SIGTERM')
  t.ok(typeof report.machine.cpuModel === 'string', 'the report describes the machine')
})
