import t from 'tap'
import { authHeaders, prehashV3, signRequest, signStreamAuth, signV3, signedData } from '../../exchange/signing.ts'

const SECRET = 'my-api-secret'
const TS = 1700000000000

t.test('official SDK vector signRequest(test-secret, payload-1)', async (t) => {
  t.equal(signRequest('test-secret', 'payload-1'), 'JJ8q7bXc7Kkj7cjj1EgBqA9pn70I9b2B8iLeDwDtQ2Y=', 'matches sdk-typescript signing.test.ts')
})

t.test('prehash examples from the SDK test file', async (t) => {
  t.equal(
    prehashV3(1700000000000, 'POST', '/v3/futures/isolated/trade', '{"side":"buy"}'),
    '1700000000000post/v3/futures/isolated/trade{"side":"buy"}',
    'POST with body: method lower-cased, body appended',
  )
  t.equal(prehashV3(1, 'GET', '/v3/account', '?limit=10'), '1get/v3/account?limit=10', 'GET with query keeps the "?"')
  t.equal(prehashV3(42, 'get', '/v3/ping'), '42get/v3/ping', 'no body, no query → data is empty')
})

const vectors: Array<[string, string, string, string | undefined, string, string]> = [
  [
    'v3 GET, no query',
    'GET',
    'https://api.lnmarkets.com/v3/account',
    undefined,
    '1700000000000get/v3/account',
    'ail1tCdME0akPar3N7WjOrCcrbffkRKlQCjgd1JQZaw=',
  ],
  [
    'v3 GET, query',
    'GET',
    'https://api.lnmarkets.com/v3/futures/isolated/trades/closed?from=2023-10-31T00%3A00%3A00.000Z&limit=10',
    undefined,
    '1700000000000get/v3/futures/isolated/trades/closed?from=2023-10-31T00%3A00%3A00.000Z&limit=10',
    'WouystYAW1iedbI3mKe9R380unIlqydjdmvSI8CnKh0=',
  ],
  [
    'v3 POST, body',
    'POST',
    'https://api.lnmarkets.com/v3/futures/isolated/trade',
    '{"leverage":10,"quantity":100,"side":"buy","type":"market"}',
    '1700000000000post/v3/futures/isolated/trade{"leverage":10,"quantity":100,"side":"buy","type":"market"}',
    '7zZpslaeffRMx748D1+PetzJGrtTPbHLr/oa6jFPmUg=',
  ],
  [
    'v3 POST, no body',
    'POST',
    'https://api.lnmarkets.com/v3/futures/isolated/trades/cancel-all',
    undefined,
    '1700000000000post/v3/futures/isolated/trades/cancel-all',
    '8ef4gSyg5Wz/mQjNYC/oi4EMqeTeBuOtGnQZn2LGmoA=',
  ],
  [
    'v3 DELETE, query',
    'DELETE',
    'https://api.lnmarkets.com/v3/futures/isolated/trade/stoploss?id=abc',
    undefined,
    '1700000000000delete/v3/futures/isolated/trade/stoploss?id=abc',
    'MsDL7i4+/irmcTsV3IwnVZ+U03J7nGYbI6Xn2fV1HxY=',
  ],
]

for (const [name, method, href, body, prehash, sig] of vectors) {
  t.test(`§2.2 vector: ${name}`, async (t) => {
    const url = new URL(href)
    t.equal(prehashV3(TS, method, url.pathname, signedData(url, body)), prehash, 'prehash built from the URL and body equals the reference')
    t.equal(signRequest(SECRET, prehash), sig, 'HMAC of the reference prehash equals the reference signature')
    t.equal(signV3(SECRET, TS, method, url, body), sig, 'signV3 from URL + body equals the reference signature')
    const h = authHeaders({ key: 'k', secret: SECRET, passphrase: 'p' }, TS, method, url, body)
    t.same(
      h,
      { 'lnm-access-key': 'k', 'lnm-access-passphrase': 'p', 'lnm-access-timestamp': String(TS), 'lnm-access-signature': sig },
      'four lower-case lnm-access-* headers',
    )
  })
}

t.test('§2.2 v2 vectors (HMAC primitive over upper-case v2 prehashes)', async (t) => {
  t.equal(signRequest(SECRET, '1700000000000GET/v2/user'), 'iEkV8S93EB40HQyTRsaSuyU2/WHVhAwpNCrAalWABQ4=', 'v2 GET no query')
  t.equal(signRequest(SECRET, '1700000000000GET/v2/futurestype=running'), 'YDS3K28vtP4RyoJ9l/jFMTWSjc7eiSfJvljW7EKRJVU=', 'v2 GET query')
  t.equal(
    signRequest(SECRET, '1700000000000POST/v2/futures{"type":"m","side":"b","leverage":10,"quantity":100}'),
    'wBo3h7qfVvEfUgrYWCVzmknXpMezdn7ykG/3oUVEbA8=',
    'v2 POST body',
  )
  t.equal(signRequest(SECRET, '1700000000000DELETE/v2/futuresid=abc'), '+g1HQvCBy7ZvklK0Jq68MkqVfpyMJRh1TSfC7ETxi8w=', 'v2 DELETE query')
})

t.test('§2.2 stream auth vector', async (t) => {
  t.equal(
    signStreamAuth(SECRET, TS, '0123456789abcdef0123456789abcdef'),
    'OF54MhTb/CjX7YnjJrR14l1iatUsyPlWs0aPL1whqEk=',
    'timestamp + nonce HMAC matches',
  )
})

t.test('secret is used as a UTF-8 string, never base64-decoded', async (t) => {
  const b64ish = 'c2VjcmV0'
  t.not(signRequest(b64ish, 'x'), signRequest('secret', 'x'), 'a base64-looking secret is not decoded')
})

t.test('an empty body string falls back to the query', async (t) => {
  const url = new URL('https://h/v3/a?x=1')
  t.equal(signedData(url, ''), '?x=1', 'empty body → url.search')
  t.equal(signedData(new URL('https://h/v3/a'), undefined), '', 'no body, no query → empty string')
})
