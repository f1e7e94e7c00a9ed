/**
 * /ws admission before the handshake, through the real app on a port: sockets that never authenticate have their
 * own budget (per address and in all) apart from MAX_CONNECTIONS, upgrades are limited per address, browser
 * Origins are checked, and a token in the URL is refused whatever the case of its parameter name.
 */
import t from 'tap'
import WebSocket from 'ws'
import { startTestApp } from '../helpers/app.ts'
import { WsClient, metricValue, until } from '../streaming/helpers.ts'

interface Attempt {
  status: number
  client?: WsClient
  /** refused upgrades: whether the server closed the socket */
  closed?: Promise<boolean>
}

/** an upgrade from a chosen loopback source address (every 127.0.0.0/8 address reaches a server on 127.0.0.1) */
function openFrom(url: string, localAddress: string, headers: Record<string, string> = {}): Promise<Attempt> {
  const ws = new WebSocket(url, { headers, localAddress, perMessageDeflate: false })
  const client = new WsClient(ws)
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ status: 101, client }))
    ws.once('unexpected-response', (req, res) => {
      const sock = req.socket
      const closed = new Promise<boolean>((r) => {
        if (!sock || sock.destroyed) return r(true)
        const timer = setTimeout(() => r(false), 3000)
        sock.once('close', () => {
          clearTimeout(timer)
          r(true)
        })
      })
      res.resume()
      resolve({ status: res.statusCode ?? 0, closed })
    })
    ws.once('error', reject)
  })
}

t.test('sockets that never authenticate cannot lock real users out', async (t) => {
  const g = await startTestApp(t, {
    MAX_CONNECTIONS: '20',
    WS_UNAUTH_PER_ADDRESS: '8',
    WS_UNAUTH_MAX: '12',
    WS_UPGRADES_PER_MIN: '0',
    WS_AUTH_TIMEOUT_MS: '30000',
    LOG_LEVEL: 'warn',
  })
  const u = await g.userWithCredentials(0)
  const held: WsClient[] = []
  t.teardown(() => held.forEach((c) => c.ws.terminate()))

  // 25 token-less sockets from one address (more than MAX_CONNECTIONS)
  const attack: Attempt[] = []
  for (let i = 0; i < 25; i++) attack.push(await openFrom(g.wsUrl, '127.0.0.2'))
  for (const a of attack) if (a.client) held.push(a.client)
  t.equal(attack.filter((a) => a.status === 101).length, 8, 'only WS_UNAUTH_PER_ADDRESS=8 token-less sockets from one address are admitted')
  t.ok(
    attack.slice(8).every((a) => a.status === 429),
    'the others get 429 on the upgrade',
  )
  t.same(
    await Promise.all(attack.slice(8).map((a) => a.closed ?? Promise.resolve(false))),
    attack.slice(8).map(() => true),
    'and every refused socket is closed by the server',
  )

  const real = await openFrom(g.wsUrl, '127.0.0.1')
  t.equal(real.status, 101, 'a real user from another address is admitted')
  real.client!.send({ type: 'auth', request_id: 'a', token: u.token })
  t.match(await real.client!.next((f) => f.type === 'connection', 5000), { userId: u.userId }, 'and authenticates by its first message')
  held.push(real.client!)
  const sameAddress = await openFrom(g.wsUrl, '127.0.0.2', { authorization: `Bearer ${u.token}` })
  t.equal(sameAddress.status, 101, 'a header-authenticated socket from the attacking address is admitted too (it is not unauthenticated)')
  held.push(sameAddress.client!)

  // the global budget: 12 unauthenticated sockets in all
  const second: Attempt[] = []
  for (let i = 0; i < 6; i++) second.push(await openFrom(g.wsUrl, '127.0.0.3'))
  for (const a of second) if (a.client) held.push(a.client)
  t.same(
    second.map((a) => a.status),
    [101, 101, 101, 101, 503, 503],
    'WS_UNAUTH_MAX=12: past 8 + 4 unauthenticated sockets, 503 for everyone',
  )
  t.equal(g.app.streaming.gate.stats().unauthenticated, 12, 'the gate counts 12 unauthenticated sockets')

  // an unauthenticated socket that authenticates leaves the budget
  const idle = attack[0]!.client!
  idle.send({ type: 'auth', request_id: 'b', token: u.token })
  await idle.next((f) => f.type === 'connection', 5000)
  t.equal(g.app.streaming.gate.stats().unauthenticated, 11, 'authenticating frees its slot')
  const after = await openFrom(g.wsUrl, '127.0.0.2')
  t.equal(after.status, 101, 'so the address may open one more')
  held.push(after.client!)
  // and one that closes leaves it too
  attack[1]!.client!.close()
  t.ok(await until(() => g.app.streaming.gate.stats().unauthenticated === 11, 5000), 'closing frees its slot')
  t.ok(
    (await metricValue(g.app.metrics.registry, 'lnm_gateway_ws_connections_refused_total', { reason: 'unauth_per_address' })) >= 17,
    'per-address refusals counted',
  )
  t.ok(
    (await metricValue(g.app.metrics.registry, 'lnm_gateway_ws_connections_refused_total', { reason: 'unauth_global' })) >= 2,
    'global refusals counted',
  )
})

t.test('Origin, upgrades per address, and tokens in the URL', async (t) => {
  const g = await startTestApp(t, { WS_UPGRADES_PER_MIN: '6', CORS_ORIGINS: 'https://dash.example.com', LOG_LEVEL: 'warn' })
  const u = await g.userWithCredentials(0)
  const host = new URL(g.baseUrl).host

  const evil = await openFrom(g.wsUrl, '127.0.0.5', { origin: 'https://evil.example', authorization: `Bearer ${u.token}` })
  t.equal(evil.status, 403, 'an upgrade from a foreign Origin is refused with 403')
  t.equal(await evil.closed, true, 'and its socket is closed')
  const lookalike = await openFrom(g.wsUrl, '127.0.0.5', { origin: `http://${host}.evil.example` })
  t.equal(lookalike.status, 403, 'a look-alike origin is refused')
  const nullOrigin = await openFrom(g.wsUrl, '127.0.0.5', { origin: 'null' })
  t.equal(nullOrigin.status, 403, 'an opaque ("null") origin is refused')
  const same = await openFrom(g.wsUrl, '127.0.0.5', { origin: `http://${host}` })
  t.equal(same.status, 101, 'the same origin is allowed')
  same.client!.close()
  const listed = await openFrom(g.wsUrl, '127.0.0.5', { origin: 'https://dash.example.com' })
  t.equal(listed.status, 101, 'an origin listed in CORS_ORIGINS is allowed')
  listed.client!.close()
  t.ok(
    (await metricValue(g.app.metrics.registry, 'lnm_gateway_ws_connections_refused_total', { reason: 'origin_forbidden' })) >= 3,
    'Origin refusals counted',
  )

  // 6 upgrades a minute per address: 127.0.0.6 uses them up, the 7th is refused; another address is not affected
  const statuses: number[] = []
  for (let i = 0; i < 7; i++) {
    const a = await openFrom(g.wsUrl, '127.0.0.6')
    statuses.push(a.status)
    a.client?.close()
    if (a.status === 429) t.equal(await a.closed, true, 'the rate-limited socket is closed')
  }
  t.same(statuses, [101, 101, 101, 101, 101, 101, 429], 'WS_UPGRADES_PER_MIN=6: the 7th upgrade from one address gets 429')
  const other = await openFrom(g.wsUrl, '127.0.0.7')
  t.equal(other.status, 101, 'another address still gets in')
  other.client!.close()

  for (const q of ['Token', 'TOKEN', 'Access_Token', 'accesstoken']) {
    const a = await openFrom(`${g.wsUrl}?${q}=${u.token}`, '127.0.0.8')
    t.equal(a.status, 400, `?${q}= is refused like ?token=`)
  }
})
