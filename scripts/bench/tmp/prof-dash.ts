import { mkdtempSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeSimAccounts, startSim } from '../../lib/servers.ts'
import { provisionUsers, startGateway } from '../../lib/gateway.ts'
import { forkTs, rpc, stopChild, waitMessage, procSampleAll } from '../../lib/proc.ts'
const dir = mkdtempSync(join(tmpdir(), 'prof-'))
const accounts = makeSimAccounts(1)
const sim = await startSim(dir, accounts)
const profDir = process.argv[2] ?? '/tmp/prof'
mkdirSync(profDir, { recursive: true })
const gw = await startGateway({ apiUrl: sim.url, streamUrl: sim.streamUrl, env: { POLL_INTERVAL_MS: '1000', TICKER_INTERVAL_MS: '600000', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/lnm_bench_dev' }, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] })
const [u] = await provisionUsers(gw.origin, accounts)
const r0 = await fetch(`${gw.origin}/api/dashboard`, { headers: { authorization: `Bearer ${u.token}` } })
console.log(r0.status, (await r0.text()).length, r0.headers.get('etag'))
const ac = forkTs('scripts/bench/autocannon-worker.ts')
await waitMessage(ac, (m) => m?.ready, 20000, 'ac')
const a = procSampleAll(gw.pids())
const r = await rpc(ac, { op: 'run', opts: { url: `${gw.origin}/api/dashboard`, connections: Number(process.env.AC_CONN ?? 32), duration: 5, headers: { authorization: `Bearer ${u.token}` } } }, 60000)
const b = procSampleAll(gw.pids())
console.log("rps", r.rps, r.latency, r.statusCodes, 'cpu', (b.cpuS - a.cpuS) / ((b.t - a.t) / 1000))
await stopChild(ac)
await gw.stop()
await stopChild(sim.proc)
