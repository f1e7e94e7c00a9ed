/**
 * Experiment behind the fan-out recommendation in bench/README.md: the bare-ws reference with and without
 * per-socket write gating (at most one write in flight per socket, as Engine.IO does; frames arriving
 * meanwhile are written together under cork — "batch" — or only the latest — "conflate").
 * "framewriter" is the gateway's own writer (backend/streaming/frame-writer.ts: pre-framed + batch).
 * Usage: [MODES=,batch,conflate,framewriter] npx tsx scripts/bench/experiments/gated-writes.ts [N=1000] [ticksPerSec=50] [rounds=2]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LoadGen } from '../../lib/loadgen.ts'
import { makeSimAccounts, startSim } from '../../lib/servers.ts'
import { PriceDriver } from '../../lib/ticker.ts'
import { forkTs, waitMessage, stopChild, rpc } from '../../lib/proc.ts'
import { fanoutRun } from '../fanout.ts'

const N = Number(process.argv[2] ?? 1000)
const T = Number(process.argv[3] ?? 50)
const rounds = Number(process.argv[4] ?? 2)
const dir = mkdtempSync(join(tmpdir(), 'lnm-gated-'))
const sim = await startSim(dir, makeSimAccounts(1))
const lg = await LoadGen.start(2, true)
const driver = new PriceDriver(`http://127.0.0.1:${sim.port}`)
try {
  for (let round = 1; round <= rounds; round++) {
    for (const g of (process.env.MODES ?? ',batch,conflate,framewriter').split(',')) {
      const proc = forkTs('scripts/bench/ref-ws.ts', [], { env: { PORT: '0', FEED_URL: sim.streamUrl, GATED: g } })
      const m = await waitMessage<any>(proc, (x) => x?.ready, 20_000, 'ws reference')
      const r = await fanoutRun(
        lg,
        {
          name: 'ws',
          kind: 'ws',
          url: `ws://127.0.0.1:${m.port}/ws`,
          pids: () => [proc.pid as number],
          probe: async () => {
            const st = await rpc(proc, { op: 'stats' }, 5000)
            return { fanoutSeconds: st.fanoutSeconds, fanouts: st.fanouts }
          },
        },
        driver,
        {
          n: N,
          ticksPerSec: T,
          warmupMs: 1500,
          windowMs: 6000,
          settleMs: 1500,
          probeConnections: Math.max(10, N / 100),
          localAddresses: ['127.0.0.2', '127.0.0.3'],
        },
      )
      process.stdout.write(
        `${round} ${(g || 'plain').padEnd(8)} delivered ${Math.round(r.deliveredFramesPerSec)}/s (${(r.deliveryRatio * 100).toFixed(0)} %), ` +
          `server CPU ${r.serverCpuPercent.toFixed(1)} %, ${Math.round(r.framesPerCpuSecond)} frames/CPU-s, loop ${((r.serverProbe.fanoutSeconds! / r.serverProbe.fanouts!) * 1000).toFixed(2)} ms, ` +
          `p99 at this rate ${r.latencyAtThroughputRate.probeSourceToClient?.p99.toFixed(1)} ms, gaps ${r.gaps}, machine CPU ${r.machineCpuPercent.toFixed(0)} %\n`,
      )
      await stopChild(proc)
    }
  }
} finally {
  await lg.stop()
  driver.stop()
  await driver.close()
  await stopChild(sim.proc)
  rmSync(dir, { recursive: true, force: true })
}
