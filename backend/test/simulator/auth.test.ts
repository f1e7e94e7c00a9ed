import t from 'tap'
import { startSimulator } from '../../simulator/index.ts'
import { authHeaders, call, hmacB64, raw, relaxed, testAccounts, v3Prehash } from './helpers.ts'

t.test('our own signer reproduces the reference vectors of lnmarkets-api.md §2.2', async (t) => {
  t.equal(hmacB64('test-secret', 'payload-1'), 'JJ8q7bXc7Kkj7cjj1EgBqA9pn70I9b2B8iLeDwDtQ2Y=', 'SDK signing test vector')
  const ts = '1700000000000'
  const s = 'my-api-secret'
  const cases: Array<[string, string, string, string]> = [
    ['GET', '/v3/account', '', 'ail1tCdME0akPar3N7WjOrCcrbffkRKlQCjgd1JQZaw='],
    [
      'GET',
      '/v3/futures/isolated/trades/closed?from=2023-10-31T00%3A00%3A00.000Z&limit=10',
      '',
      'WouystYAW1iedbI3mKe9R380unIlqydjdmvSI8CnKh0=',
    ],
    [
      'POST',
      '/v3/futures/isolated/trade',
      '{"leverage":10,"quantity":100,"side":"buy","type":"market"}',
      '7zZpslaeffRMx748D1+PetzJGrtTPbHLr/oa6jFPmUg=',
    ],
    ['POST', '/v3/futures/isolated/trades/cancel-all', '', '8ef4gSyg5Wz/mQjNYC/oi4EMqeTeBuOtGnQZn2LGmoA='],
    ['DELETE', '/v3/futures/isolated/trade/stoploss?id=abc', '', 'MsDL7i4+/irmcTsV3IwnVZ+U03J7nGYbI6Xn2fV1HxY='],
  ]
  for (const [m, p, b, sig] of cases) t.equal(hmacB64(s, v3Prehash(ts, m, p, b)), sig, `v3 vector ${m} ${p}`)
  t.equal(hmacB64(s, `${ts}0123456789abcdef0123456789abcdef`), 'OF54MhTb/CjX7YnjJrR14l1iatUsyPlWs0aPL1whqEk=', 'stream auth vector')
})

t.test('REST v3 auth', async (t) => {
  const sim = await startSimulator({ accounts: testAccounts(), tickMs: 60_000, initialPrice: 100_000, rateLimit: relaxed })
  t.teardown(() => sim.close())
  const alice = sim.accounts[0]!
  const now = () => String(sim.now())

  t.test('accepts independently signed requests', async (t) => {
    const r = await call(sim, alice, 'GET', '/account')
    t.equal(r.status, 200, 'GET /account accepted')
    t.equal(r.json.username, 'alice', 'account of the signing key')
    t.equal(r.json.balance, 10_000_000, 'balance in sats')
    const q = await call(
      sim,
      alice,
      'GET',
      `/futures/isolated/trades/closed?from=${encodeURIComponent('2023-10-31T00:00:00.000Z')}&limit=10`,
    )
    t.equal(q.status, 200, 'query signed with its leading ? and percent-encoding as sent')
    const post = await call(sim, alice, 'POST', '/futures/isolated/trades/cancel-all')
    t.equal(post.status, 200, 'body-less POST signs data = ""')
    t.same(post.json, [], 'cancel-all returns an array')
  })

  t.test('header names are case-insensitive', async (t) => {
    const h = authHeaders(alice, 'GET', '/v3/account', '', now())
    const upper = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toUpperCase(), v]))
    const r = await raw(sim.port, { method: 'GET', path: '/v3/account', headers: upper })
    t.equal(r.status, 200, 'upper-case LNM-ACCESS-* headers accepted')
  })

  t.test('the query is verified exactly as received, not re-serialised', async (t) => {
    // the same query, encoded differently on the wire: signing the re-serialised form must fail
    const sent = '/v3/futures/isolated/trades/closed?from=2023-10-31T00:00:00.000Z&limit=10'
    const reencoded = '/v3/futures/isolated/trades/closed?from=2023-10-31T00%3A00%3A00.000Z&limit=10'
    const ok = await raw(sim.port, { method: 'GET', path: sent, headers: authHeaders(alice, 'GET', sent, '', now()) })
    t.equal(ok.status, 200, 'raw unencoded colons signed as sent are accepted')
    const bad = await raw(sim.port, { method: 'GET', path: sent, headers: authHeaders(alice, 'GET', reencoded, '', now()) })
    t.equal(bad.status, 401, 'signature over a re-encoded query is rejected')
    t.same(bad.json, { code: 'apiKeyInvalidSignature', message: 'Signature is not valid' }, 'documented body')
  })

  t.test('tampering and bad credentials give the documented 401s', async (t) => {
    const body = '{"type":"market","side":"buy","leverage":10,"quantity":10}'
    const h = { ...authHeaders(alice, 'POST', '/v3/futures/isolated/trade', body, now()), 'content-type': 'application/json' }
    const tampered = await raw(sim.port, {
      method: 'POST',
      path: '/v3/futures/isolated/trade',
      headers: h,
      body: body.replace('10}', '11}'),
    })
    t.equal(tampered.status, 401, 'tampered body → 401')
    t.same(tampered.json, { code: 'apiKeyInvalidSignature', message: 'Signature is not valid' }, 'tampered body body')
    const reserialised = await raw(sim.port, {
      method: 'POST',
      path: '/v3/futures/isolated/trade',
      headers: h,
      body: JSON.stringify(JSON.parse(body), null, 1),
    })
    t.equal(reserialised.status, 401, 'same JSON with different whitespace → 401 (raw bytes are signed)')

    const p = '/v3/futures/isolated/trades/closed?limit=10'
    const tq = await raw(sim.port, {
      method: 'GET',
      path: '/v3/futures/isolated/trades/closed?limit=11',
      headers: authHeaders(alice, 'GET', p, '', now()),
    })
    t.equal(tq.status, 401, 'tampered query → 401')
    t.equal(tq.json.code, 'apiKeyInvalidSignature', 'tampered query code')

    const wrongMethodCase = { ...authHeaders(alice, 'GET', '/v3/account', '', now()) }
    wrongMethodCase['lnm-access-signature'] = hmacB64(alice.secret, `${wrongMethodCase['lnm-access-timestamp']}GET/v3/account`)
    t.equal(
      (await raw(sim.port, { method: 'GET', path: '/v3/account', headers: wrongMethodCase })).status,
      401,
      'upper-case method in prehash (v2 style) → 401',
    )

    const b64secret = { ...alice, secret: Buffer.from(alice.secret, 'base64').toString('latin1') }
    t.equal(
      (await raw(sim.port, { method: 'GET', path: '/v3/account', headers: authHeaders(b64secret, 'GET', '/v3/account', '', now()) }))
        .status,
      401,
      'base64-decoded secret → 401',
    )

    const old = await raw(sim.port, {
      method: 'GET',
      path: '/v3/account',
      headers: authHeaders(alice, 'GET', '/v3/account', '', String(sim.now() - 31_000)),
    })
    t.equal(old.status, 401, 'timestamp 31 s old → 401')
    t.same(old.json, { code: 'apiKeyTimestampExpired', message: 'Your request is too old' }, 'expired body')
    const future = await raw(sim.port, {
      method: 'GET',
      path: '/v3/account',
      headers: authHeaders(alice, 'GET', '/v3/account', '', String(sim.now() + 31_000)),
    })
    t.equal(future.status, 401, 'timestamp 31 s ahead → 401')
    t.same(future.json, { code: 'apiKeyTimestampTurfu', message: 'Your request too far in the future' }, 'future body')
    const within = await raw(sim.port, {
      method: 'GET',
      path: '/v3/account',
      headers: authHeaders(alice, 'GET', '/v3/account', '', String(sim.now() - 25_000)),
    })
    t.equal(within.status, 200, 'timestamp 25 s old is inside the window')
    const notInt = await raw(sim.port, {
      method: 'GET',
      path: '/v3/account',
      headers: authHeaders(alice, 'GET', '/v3/account', '', '17e11'),
    })
    t.equal(notInt.status, 401, 'non-integer timestamp → 401')
    t.equal(notInt.json.code, 'apiKeyInvalidTimestamp', 'non-integer timestamp code')

    const wrongPass = await raw(sim.port, {
      method: 'GET',
      path: '/v3/account',
      headers: authHeaders({ ...alice, passphrase: 'nope' }, 'GET', '/v3/account', '', now()),
    })
    t.equal(wrongPass.status, 401, 'wrong passphrase → 401')
    t.equal(wrongPass.json.code, 'apiKeyInvalidPassphrase', 'wrong passphrase code')
    const unknown = await raw(sim.port, {
      method: 'GET',
      path: '/v3/account',
      headers: authHeaders({ ...alice, key: 'nobody' }, 'GET', '/v3/account', '', now()),
    })
    t.equal(unknown.status, 401, 'unknown key → 401')
    t.same(unknown.json, { code: 'apiKeyNotFound', message: 'API key not found' }, 'unknown key body')
    const none = await raw(sim.port, { method: 'GET', path: '/v3/account' })
    t.equal(none.status, 401, 'no auth headers on a private route → 401')
    const otherSecret = await raw(sim.port, {
      method: 'GET',
      path: '/v3/account',
      headers: authHeaders({ ...alice, secret: 'secret-bob' }, 'GET', '/v3/account', '', now()),
    })
    t.equal(otherSecret.json.code, 'apiKeyInvalidSignature', 'signed with another secret → invalid signature')
  })

  t.test('clock skew moves the window the timestamps are checked against', async (t) => {
    sim.faults.set({ clockSkewMs: 60_000 })
    t.teardown(() => sim.faults.reset())
    const local = await raw(sim.port, {
      method: 'GET',
      path: '/v3/account',
      headers: authHeaders(alice, 'GET', '/v3/account', '', String(Date.now())),
    })
    t.equal(local.status, 401, 'a client on wall-clock time is 60 s behind the server')
    t.equal(local.json.code, 'apiKeyTimestampExpired', 'and is told it is too old')
    const time = await call(sim, undefined, 'GET', '/time')
    const offset = Date.parse(time.json.time) - Date.now()
    t.ok(offset > 55_000 && offset < 65_000, '/time reports the skewed clock')
    const synced = await raw(sim.port, {
      method: 'GET',
      path: '/v3/account',
      headers: authHeaders(alice, 'GET', '/v3/account', '', String(Date.now() + offset)),
    })
    t.equal(synced.status, 200, 'a client that syncs with /time is accepted')
  })

  t.test('request-shape rules', async (t) => {
    const h = authHeaders(alice, 'GET', '/v3/account', '{}', now())
    const withBody = await raw(sim.port, {
      method: 'GET',
      path: '/v3/account',
      headers: { ...h, 'content-type': 'application/json' },
      body: '{}',
    })
    t.equal(withBody.status, 400, 'GET with a body → 400')
    t.equal(withBody.json.code, 'badRequest', 'GET with a body has a {code,message} body')
    const ctNoBody = await raw(sim.port, {
      method: 'GET',
      path: '/v3/account',
      headers: { ...authHeaders(alice, 'GET', '/v3/account', '', now()), 'content-type': 'application/json' },
    })
    t.equal(ctNoBody.status, 400, 'GET with content-type: application/json and no body → 400')
    const textBody = await raw(sim.port, {
      method: 'POST',
      path: '/v3/futures/isolated/trade/close',
      headers: authHeaders(alice, 'POST', '/v3/futures/isolated/trade/close', '{}', now()),
      body: '{}',
    })
    t.equal(textBody.status, 415, 'POST body without content-type: application/json → 415')
  })

  t.test('public endpoints work with or without auth headers', async (t) => {
    const anon = await call(sim, undefined, 'GET', '/ping')
    t.equal(anon.status, 200, 'anonymous /ping')
    t.equal(anon.json, 'pong', '/ping answers the JSON string "pong"')
    const signed = await call(sim, alice, 'GET', '/futures/ticker')
    t.equal(signed.status, 200, 'signed /futures/ticker')
    t.type(signed.json.lastPrice, 'number', 'ticker has lastPrice')
  })
})
