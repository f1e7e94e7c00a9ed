import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { makeSimAccounts, startSim } from '../../lib/servers.ts'
import { provisionUsers, startGateway } from '../../lib/gateway.ts'
import { stopChild, sleep } from '../../lib/proc.ts'
import { PriceDriver } from '../../lib/ticker.ts'
const dir = mkdtempSync(join(tmpdir(), 'prof-'))
const accounts = makeSimAccounts(1)
const sim = await startSim(dir, accounts)
const gw = await startGateway({ apiUrl: sim.url, streamUrl: sim.streamUrl, env: { TICKER_INTERVAL_MS: '600000', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/lnm_bench_dev' } })
const [u] = await provisionUsers(gw.origin, accounts)
const ws = new WebSocket(gw.wsUrl, { perMessageDeflate: false })
const now = () => performance.timeOrigin + performance.now()
ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', request_id: '1', token: u.token })))
ws.on('message', (b: Buffer) => {
  const t = now()
  const m = JSON.parse(b.toString())
  if (m.type === 'data_update') console.log(m.channel, m.seq, 'recv-src', (t - m.sourceTs).toFixed(1), 'recv-ts', (t - m.ts).toFixed(1), m.data.lastPrice ?? '')
  else console.log(m.type, JSON.stringify(m).slice(0, 150))
})
await sleep(1500)
const d = new PriceDriver(`http://127.0.0.1:${sim.port}`)
console.log(await d.run(5, 2000))
await sleep(500)
ws.close()
await d.close()
await gw.stop()
await stopChild(sim.proc)
