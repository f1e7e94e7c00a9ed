/**
 * One user's unusable credentials must not cut the exchange off for everyone (issue "Proven under attack", item 1):
 * a passphrase with characters above U+00FF used to reach undici as a header value, each refusal cost the shared
 * pool a connection, and after four of them every exchange call of every account hung.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Pool } from 'undici'
import { unsendableCredentialField } from '../../exchange/signing.ts'
import { V } from '../../exchange/schemas.ts'
import { ACCOUNT, CREDS, clientOnLocalServer, lnmHandler, rejects } from './helpers.ts'
import { startTestApp } from '../helpers/app.ts'
import { until } from '../streaming/helpers.ts'

t.test('credentials that cannot travel in a header are refused locally, without touching the shared pool', async (t) => {
  const { server, client } = await clientOnLocalServer(t, lnmHandler(), { connections: 4 })
  const cases = [
    ['a passphrase above U+00FF', { ...CREDS, passphrase: 'pass€word' }, 'passphrase'],
    ['a Latin-1 passphrase', { ...CREDS, passphrase: 'pässword' }, 'passphrase'],
    ['a passphrase with a trailing space', { ...CREDS, passphrase: 'password ' }, 'passphrase'],
    ['a key with CR/LF', { ...CREDS, key: 'key\r\nx-injected: 1' }, 'key'],
  ] as const
  for (const [what, creds, field] of cases) {
    t.equal(unsendableCredentialField(creds), field, `${what}: the ${field} is named as unsendable`)
    // ten times over: more than the pool has connections
    for (let i = 0; i < 10; i++) {
      const e = await rejects(client.account(creds))
      if (i === 0) {
        t.equal(e.kind, 'credentials_rejected', `${what}: rejected as this user's credentials problem`)
        t.equal(e.code, 'INVALID_CREDENTIALS', `${what}: with a code saying why`)
        t.match(e.message, new RegExp(`API ${field}`), `${what}: the message names the field`)
        t.notMatch(e.message, /€|pässword|x-injected/, `${what}: the message does not echo the value`)
      }
    }
  }
  t.equal(server.count(), 0, 'no request of theirs reached the exchange (not even a clock sync)')
  t.equal(client.circuitState, 'closed', 'the breaker is untouched by local refusals')
  const started = Date.now()
  const results = await Promise.all(Array.from({ length: 8 }, () => client.account(CREDS, { deadlineMs: 3_000 })))
  t.ok(
    results.every((a) => a.username === ACCOUNT.username),
    'a valid user is served afterwards, 8 concurrent calls on a 4-connection pool',
  )
  t.ok(Date.now() - started < 2_000, `and promptly (${Date.now() - started} ms)`)
})

t.test('a call never outlives its own deadline, even on a pool that lost its connections', async (t) => {
  const { client } = await clientOnLocalServer(t, lnmHandler(), { connections: 2, timeouts: { headersMs: 60_000, bodyMs: 60_000 } })
  await client.account(CREDS)
  // Leak both connections the way undici 7.x does when it refuses a header value after taking a connection
  // (reaching the private pool on purpose: this reproduces the pre-fix failure below the client's validation).
  const pool = (client as unknown as { pool: Pool }).pool
  // (fire and forget: once the connections are gone these requests never settle)
  const leak = new AbortController()
  t.teardown(() => leak.abort())
  for (let i = 0; i < 4; i++) {
    pool.request({ path: '/v3/account', method: 'GET', headers: { 'lnm-access-passphrase': 'pass€' }, signal: leak.signal }).then(
      () => {},
      () => {},
    )
  }
  await sleep(200)
  const started = Date.now()
  const e = await rejects(client.request({ method: 'GET', path: '/account', creds: CREDS, validator: V.account }, { deadlineMs: 500 }))
  const took = Date.now() - started
  t.equal(e.code, 'DEADLINE', 'the call ends with its deadline')
  t.ok(took < 1_500, `within its 500 ms budget plus scheduling slack (${took} ms), not hanging on the pool`)

  const e1 = await rejects(client.account(CREDS, { deadlineMs: 300 }))
  t.equal(e1.code, 'DEADLINE', 'a coalesced GET ends with its deadline too')
  const inflight = (client as unknown as { inflight: Map<string, unknown> }).inflight
  const cleared = await until(() => inflight.size === 0, 2_000, 'the shared in-flight entry to be released')
  t.ok(cleared, 'and its shared in-flight entry is released, so the next poll of that account is not stuck behind it')

  const ac = new AbortController()
  setTimeout(() => ac.abort(), 300)
  const s2 = Date.now()
  const e2 = await rejects(client.account({ ...CREDS, key: 'another-key-123' }, { signal: ac.signal }))
  t.equal(e2.code, 'ABORTED', 'a caller-aborted call ends with its signal')
  t.ok(Date.now() - s2 < 1_300, `promptly (${Date.now() - s2} ms)`)
})

t.test('PUT /api/credentials: a non-ASCII passphrase is a 400 naming the field, and everyone else keeps the exchange', async (t) => {
  const g = await startTestApp(t)
  const attacker = await g.login(...(Object.values(await g.register()).slice(1) as [string, string]))
  const acc = g.sim.accounts[0]!
  for (let i = 0; i < 8; i++) {
    const r = await g.http('PUT', '/api/credentials', {
      token: attacker.token,
      body: { apiKey: acc.key, apiSecret: acc.secret, passphrase: `pass€${i}` },
    })
    t.equal(r.status, 400, `attempt ${i + 1}: 400`)
    if (i === 0) {
      t.equal(r.body?.error?.code, 'validation_failed', 'in the contract error shape')
      t.match(r.body?.error?.message, /^Passphrase must be printable ASCII/, 'the message names the passphrase and its rule in plain words')
      t.notMatch(r.body?.error?.message, /body\/|must match pattern/, 'not the validator text')
    }
  }
  const other = await g.userWithCredentials(1)
  const started = Date.now()
  const dash = await g.http('GET', '/api/credentials', { token: other.token })
  t.equal(dash.status, 200, 'another user stored verified credentials after the attack')
  const acc2 = g.sim.accounts[2]!
  const again = await g.http('PUT', '/api/credentials', {
    token: attacker.token,
    body: { apiKey: acc2.key, apiSecret: acc2.secret, passphrase: acc2.passphrase },
  })
  t.equal(again.status, 200, 'and the exchange still verifies credentials for anyone')
  t.ok(Date.now() - started < 5_000, `promptly (${Date.now() - started} ms)`)
})
