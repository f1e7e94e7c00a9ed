/**
 * The low-severity findings, each through the real app on a port or the real entry point: a client's own close
 * code is no metric label, index.html is revalidated while hashed assets are cached for good, SIM_ACCOUNTS_FILE
 * feeds the demo simulator, and production never runs demo mode by omission.
 */
import t from 'tap'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FRONTEND_DIST } from '../../plugins/external/index.ts'
import { startTestApp } from '../helpers/app.ts'
import { spawnGateway } from '../helpers/process.ts'
import { WsClient, until } from '../streaming/helpers.ts'

/** one gateway for the close-code and caching subtests: neither needs fresh state */
let sharedApp: ReturnType<typeof startTestApp> | undefined
const shared = () => (sharedApp ??= startTestApp(t, { LOG_LEVEL: 'warn' }))

t.test('close codes chosen by clients share one metric label', async (t) => {
  const g = await shared()
  const u = await g.userWithCredentials(0)
  for (const code of [4321, 3999, 4999, 1000]) {
    const c = await WsClient.authed(g.wsUrl, u.token)
    c.close(code)
    await c.waitClose()
  }
  const series = async () => (await g.app.metrics.registry.getSingleMetric('lnm_gateway_ws_connections_closed_total')!.get()).values
  t.ok(await until(async () => (await series()).reduce((a, v) => a + v.value, 0) >= 4, 5000), 'the four closes are counted')
  const labels = (await series()).map((v) => String(v.labels.code))
  t.notOk(
    labels.some((l) => ['4321', '3999', '4999'].includes(l)),
    `no label per client-chosen code (labels: ${labels.join(', ')})`,
  )
  t.equal((await series()).find((v) => v.labels.code === 'other')?.value, 3, 'the three unknown codes are counted as "other"')
  t.equal((await series()).find((v) => v.labels.code === '1000')?.value, 1, 'a protocol code keeps its own label')
})

t.test('index.html is revalidated; hashed assets are cached for good', async (t) => {
  const g = await shared()
  for (const path of ['/', '/index.html', '/positions/some-deep-link']) {
    const r = await fetch(g.baseUrl + path)
    await r.text()
    t.equal(r.status, 200, `${path} is served`)
    t.equal(r.headers.get('cache-control'), 'no-cache', `${path}: Cache-Control no-cache`)
  }
  const asset = readdirSync(join(FRONTEND_DIST, 'assets')).find((f) => f.endsWith('.js'))
  t.ok(asset, 'the build has a hashed script')
  const r = await fetch(`${g.baseUrl}/assets/${asset}`)
  await r.arrayBuffer()
  t.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable', 'a hashed asset is cached for a year, immutable')
})

t.test('SIM_ACCOUNTS_FILE feeds the demo simulator', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnm-sim-accounts-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'accounts.json')
  writeFileSync(
    file,
    JSON.stringify([
      { username: 'demo', key: 'file-key-0123456789', secret: 'file-secret-abcdefghijklmnop', passphrase: 'file-pass', balance: 4242424 },
    ]),
  )
  const g = await startTestApp(t, { SIM_ACCOUNTS_FILE: file, LOG_LEVEL: 'warn' })
  const demo = await g.login('demo', 'demo')
  let body: any = null
  await until(
    async () => {
      const r = await g.http('GET', '/api/dashboard', { token: demo.token })
      body = r.body
      return r.status === 200 && body?.account != null
    },
    15_000,
    { what: "the demo user's dashboard with an account", stepMs: 200 },
  )
  t.equal(body?.account?.balance, 4242424, "the demo user's dashboard shows the balance from the file")

  const bad = join(dir, 'bad.json')
  writeFileSync(bad, JSON.stringify([{ username: 'x' }]))
  await t.rejects(
    startTestApp(t, { SIM_ACCOUNTS_FILE: bad, LOG_LEVEL: 'warn' }),
    /SIM_ACCOUNTS_FILE .*bad\.json: \[0\]\.key must be a non-empty string/,
    'a bad file stops start-up naming the file and the field',
  )
})

t.test('NODE_ENV=production without LNM_NETWORK refuses to start with one line', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'lnm-gw-proc-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const secrets = { JWT_SECRET: 'x'.repeat(40), CREDENTIALS_KEY: Buffer.alloc(32, 7).toString('base64') }
  const p = spawnGateway({ NODE_ENV: 'production', DATA_DIR: dataDir, PORT: '0', ...secrets })
  const r = await p.exited
  t.equal(r.code, 1, 'exit code 1')
  t.match(p.stderr(), /^lnm-gateway: invalid configuration: LNM_NETWORK is required when NODE_ENV=production/, 'names the variable')
  t.equal(p.stderr().trim().split('\n').length, 1, 'one line')
})
