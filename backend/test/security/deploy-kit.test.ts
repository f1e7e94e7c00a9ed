/**
 * The operator's kit (docker-compose.yml, deploy/) read as an operator's tools would read it: the compose file
 * parses and wires two replicas behind the proxy with Prometheus scraping each; every metric the alerts and the
 * dashboard use exists in the gateway's real /metrics output. (promtool checks the rules themselves in .ci/run.)
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { prettyLogs } from '../../logger.ts'
import { startTestApp } from '../helpers/app.ts'
import { ROOT } from '../helpers/process.ts'

const read = (p: string) => readFileSync(join(ROOT, p), 'utf8')

t.test('docker-compose.yml: two replicas behind a proxy, Prometheus and Grafana', async (t) => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, any> }
  const s = compose.services
  t.same(Object.keys(s).sort(), ['gateway-1', 'gateway-2', 'grafana', 'postgres', 'prometheus', 'proxy', 'redis'], 'the services')
  for (const g of ['gateway-1', 'gateway-2']) {
    const env = s[g].environment
    t.equal(env.NODE_ENV, 'production', `${g}: production`)
    t.match(env.DATABASE_URL, /^postgres:\/\/.*@postgres:5432\//, `${g}: the shared PostgreSQL`)
    t.match(env.REDIS_URL, /^redis:\/\/redis:6379/, `${g}: the shared Redis`)
    t.equal(env.TRUST_PROXY, 'true', `${g}: trusts the proxy's X-Forwarded-*`)
    t.match(env.LNM_NETWORK, /:\?/, `${g}: LNM_NETWORK is required, never demo by omission`)
    t.notOk(s[g].ports, `${g}: no published port (only through the proxy)`)
  }
  const caddy = read('deploy/Caddyfile')
  t.match(caddy, /reverse_proxy gateway-1:3000 gateway-2:3000/, 'the proxy balances both replicas')
  t.match(caddy, /respond @metrics 404/, 'and keeps /metrics internal')
  t.ok(
    s.proxy.volumes.some((v: string) => v.startsWith('./deploy/Caddyfile:')),
    'the proxy mounts the committed Caddyfile',
  )
  const prom = parse(read('deploy/prometheus.yml')) as {
    scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>
  }
  const job = prom.scrape_configs.find((j) => j.job_name === 'lnm-gateway')!
  t.same(job.static_configs.flatMap((c) => c.targets).sort(), ['gateway-1:3000', 'gateway-2:3000'], 'Prometheus scrapes every replica')
  t.ok(
    s.grafana.volumes.some((v: string) => v.startsWith('./deploy/grafana/provisioning:')),
    'Grafana is provisioned from deploy/grafana',
  )
})

t.test('every metric in the alerts and the dashboard exists in the real /metrics', async (t) => {
  const g = await startTestApp(t, { LOG_LEVEL: 'warn' })
  await g.userWithCredentials(0)
  const text = await (await fetch(`${g.baseUrl}/metrics`)).text()
  const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!))
  const used = new Set<string>()
  for (const file of ['deploy/alerts.yml', 'deploy/grafana/dashboards/lnm-gateway.json']) {
    for (const m of read(file).matchAll(/\blnm_gateway_[a-z0-9_]*[a-z0-9]\b/g)) used.add(m[0].replace(/_(bucket|sum|count)$/, ''))
  }
  t.ok(used.size >= 15, `${used.size} metrics used`)
  for (const name of used) t.ok(families.has(name), `${name} is exported`)
  const dash = JSON.parse(read('deploy/grafana/dashboards/lnm-gateway.json')) as { panels: Array<{ title: string }> }
  for (const topic of [
    'connections',
    'Fan-out',
    'Frames',
    'Stale',
    'Slow consumers',
    'Exchange requests',
    'Exchange latency',
    '429',
    'breaker',
    'streams',
    'Pollers',
    'Event-loop',
    'Memory',
  ]) {
    t.ok(
      dash.panels.some((p) => p.title.toLowerCase().includes(topic.toLowerCase())),
      `a dashboard panel for ${topic}`,
    )
  }
})

t.test('development logs are human-readable, production logs JSON', async (t) => {
  t.equal(prettyLogs({ nodeEnv: 'development', isTTY: true }), true, 'development on a terminal: pretty')
  t.equal(prettyLogs({ nodeEnv: 'development', isTTY: false }), false, 'development piped: JSON')
  t.equal(prettyLogs({ nodeEnv: 'development', isTTY: false, logPretty: true }), true, 'LOG_PRETTY=true: pretty')
  t.equal(prettyLogs({ nodeEnv: 'production', isTTY: true, logPretty: true }), false, 'production: always JSON')
})
