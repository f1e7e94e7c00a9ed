import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeSimAccounts, startSim } from '../../lib/servers.ts'
import { provisionUsers, startGateway } from '../../lib/gateway.ts'
import { stopChild } from '../../lib/proc.ts'
import { execSync } from 'node:child_process'
const dir = mkdtempSync(join(tmpdir(), 'prof-'))
const accounts = makeSimAccounts(1)
const sim = await startSim(dir, accounts)
const gw = await startGateway({ apiUrl: sim.url, streamUrl: sim.streamUrl, env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/lnm_bench_dev' } })
const [u] = await provisionUsers(gw.origin, accounts)
console.log(execSync(`curl -s -i -H 'Authorization: Bearer ${u.token}' ${gw.origin}/api/dashboard`).toString())
console.log(execSync(`curl -s -o /dev/null -w '%{time_total}\\n' -H 'Authorization: Bearer ${u.token}' ${gw.origin}/api/dashboard ${gw.origin}/api/dashboard ${gw.origin}/api/dashboard`).toString())
await gw.stop()
await stopChild(sim.proc)
