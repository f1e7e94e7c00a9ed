import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LoadGen } from '../../lib/loadgen.ts'
import { makeSimAccounts, startSim } from '../../lib/servers.ts'
import { PriceDriver } from '../../lib/ticker.ts'
import { forkTs, waitMessage, stopChild, rpc } from '../../lib/proc.ts'
import { fanoutRun } from '../fanout.ts'
const dir = mkdtempSync(join(tmpdir(), 'pf-'))
const sim = await startSim(dir, makeSimAccounts(1))
const lg = await LoadGen.start(2, true)
const driver = new PriceDriver(`http://127.0.0.1:${sim.port}`)
for (const round of [1, 2]) for (const pre of ['0', '1']) {
  const proc = forkTs('scripts/bench/ref-ws.ts', [], { env: { PORT: '0', FEED_URL: sim.streamUrl, PREFRAMED: pre } })
  const m = await waitMessage<any>(proc, (x) => x?.ready, 20000, 'ref')
  const r = await fanoutRun(lg, { name: 'ws', kind: 'ws', url: `ws://127.0.0.1:${m.port}/ws`, pids: () => [proc.pid!], probe: async () => { const st = await rpc(proc, { op: 'stats' }, 5000); return { fanoutSeconds: st.fanoutSeconds, fanouts: st.fanouts } } }, driver,
    { n: 1000, ticksPerSec: 20, warmupMs: 1000, windowMs: 6000, settleMs: 1500, probeConnections: 10, localAddresses: ['127.0.0.2'] })
  console.log(round, 'preframed', pre, 'fps', Math.round(r.deliveredFramesPerSec), 'cpu%', r.serverCpuPercent.toFixed(1), 'f/cpus', Math.round(r.framesPerCpuSecond), 'loop ms', (r.serverProbe.fanoutSeconds / r.serverProbe.fanouts * 1000).toFixed(2), 'p99', r.latency.probeSourceToClient?.p99.toFixed(1))
  await stopChild(proc)
}
await lg.stop(); driver.stop(); await driver.close(); await stopChild(sim.proc)
