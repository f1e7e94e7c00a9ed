/**
 * Prints the gateway's real /metrics output: starts the app in demo mode on a free loopback port with a throwaway
 * embedded database, lets it serve a few requests (so labelled series exist), scrapes /metrics once and stops.
 * CI pipes it to `promtool check metrics`.
 *
 *   npx tsx scripts/metrics-sample.ts | promtool check metrics
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { buildApp } from '../backend/app.ts'
import { loadConfig } from '../backend/config.ts'

const dataDir = mkdtempSync(join(tmpdir(), 'lnm-metrics-'))
const quiet = new Writable({ write: (_c, _e, cb) => cb() })
const app = await buildApp(
  loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, PORT: '0', SIM_PORT: '0', LOG_LEVEL: 'silent', MAX_EVENT_LOOP_DELAY_MS: '0' }),
  { logStream: quiet },
)
try {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  await fetch(`${base}/health/live`).then((r) => r.text())
  await fetch(`${base}/api/me`).then((r) => r.text())
  const login = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'demo', password: 'demo' }),
  })
  const { accessToken } = (await login.json()) as { accessToken: string }
  await fetch(`${base}/api/dashboard`, { headers: { authorization: `Bearer ${accessToken}` } }).then((r) => r.text())
  const res = await fetch(`${base}/metrics`)
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`)
  process.stdout.write(await res.text())
} finally {
  await app.close()
  rmSync(dataDir, { recursive: true, force: true })
}
