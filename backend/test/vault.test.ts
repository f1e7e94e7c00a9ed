import t from 'tap'
import { randomBytes } from 'node:crypto'
import { maskKey, open, seal, VaultError } from '../vault/crypto.ts'
import { startTestApp } from './helpers/app.ts'

const mk = (id: string) => ({ id, key: randomBytes(32) })
const secret = { key: 'my-api-key-1234567890', secret: 'my-api-secret-abcdefgh', passphrase: 'my passphrase' }

t.test('AES-256-GCM sealing', async (t) => {
  const k = mk('k1')
  const a = seal(secret, 'user-a', k)
  const b = seal(secret, 'user-a', k)
  t.not(a.nonce.toString('hex'), b.nonce.toString('hex'), 'a fresh nonce per record')
  t.not(a.ciphertext.toString('hex'), b.ciphertext.toString('hex'), 'so equal plaintexts differ at rest')
  t.notOk(a.ciphertext.toString('latin1').includes(secret.secret), 'the secret is not in the ciphertext')
  t.same(open(a, 'user-a', [k]), secret, 'opens for its user')
  t.throws(() => open(a, 'user-b', [k]), VaultError, 'a row moved to another user fails authentication')
  const tampered = { ...a, ciphertext: Buffer.from(a.ciphertext) }
  tampered.ciphertext[0]! ^= 1
  t.throws(() => open(tampered, 'user-a', [k]), VaultError, 'a flipped bit fails authentication')
  t.throws(() => open(a, 'user-a', [mk('k2')]), /no master key with id k1/, 'an unknown key id is named, not guessed')
  t.equal(maskKey('abcdefghijklmnopqrstuvwxyz0123456789'), 'abc…456789', 'masked key shows only the ends')
  t.not(maskKey('sim-alice-0a1b2c3d4e5f'), maskKey('sim-alice-0a1b2c3d4e60'), 'two keys with a common prefix are told apart by their ends')
  t.equal(maskKey('sim-alice-0a1b2c3d4e5f'), 's…4e5f', 'a 22-character key shows 5 characters, mostly its end')
  for (const k of ['abcdefghi', 'abcdefghijklmno', 'abcdefghijklmnop', 'abcdefghijklmnopqrstuvwxyz01234']) {
    const visible = maskKey(k).replace('…', '').length
    t.ok(visible * 4 <= k.length, `a ${k.length}-character key shows at most a quarter of itself (${maskKey(k)})`)
  }
})

t.test('credentials routes: verified before stored, encrypted at rest, never returned', async (t) => {
  const g = await startTestApp(t)
  const { username, password } = await g.register()
  const u = await g.login(username, password)
  const acc = g.sim.accounts[0]!

  const none = await g.http('GET', '/api/credentials', { token: u.token })
  t.equal(none.status, 404, 'nothing stored yet')

  const bad = await g.http('PUT', '/api/credentials', {
    token: u.token,
    body: { apiKey: acc.key, apiSecret: 'wrong-secret-value', passphrase: acc.passphrase },
  })
  t.equal(bad.status, 422, 'the exchange rejects a wrong secret → 422')
  t.equal(bad.body.error.code, 'credentials_rejected')
  t.equal(await g.app.prisma.exchangeCredential.count(), 1, 'only the demo user holds credentials: nothing was stored')

  const badShape = await g.http('PUT', '/api/credentials', { token: u.token, body: { apiKey: 'x' } })
  t.equal(badShape.status, 400, 'missing fields → 400')
  // the key and passphrase travel in HTTP headers: control characters are refused before any upstream call
  for (const [what, body] of [
    ['NUL in the key', { apiKey: `${acc.key}\u0000`, apiSecret: acc.secret, passphrase: acc.passphrase }],
    ['CR/LF in the passphrase', { apiKey: acc.key, apiSecret: acc.secret, passphrase: `${acc.passphrase}\r\nx-injected: 1` }],
    ['NUL in the passphrase', { apiKey: acc.key, apiSecret: acc.secret, passphrase: 'a\u0000b' }],
    ['non-ASCII in the secret', { apiKey: acc.key, apiSecret: `${acc.secret}é`, passphrase: acc.passphrase }],
  ] as const) {
    const r = await g.http('PUT', '/api/credentials', { token: u.token, body })
    t.equal(r.status, 400, `${what} → 400`)
    t.equal(r.body?.error?.code, 'validation_failed', `${what}: in the contract error shape`)
  }
  t.notMatch(g.logs.text, /request failed/, 'no credentials request ended in a 5xx')

  const put = await g.http('PUT', '/api/credentials', {
    token: u.token,
    body: { apiKey: acc.key, apiSecret: acc.secret, passphrase: acc.passphrase },
  })
  t.equal(put.status, 200, 'valid credentials stored')
  t.equal(put.body.maskedKey, maskKey(acc.key), 'masked key returned')
  t.notOk(put.text.includes(acc.secret) || put.text.includes(acc.passphrase), 'no secret or passphrase in the answer')
  t.ok(put.body.verifiedAt, 'verification time recorded')

  const row = await g.app.prisma.exchangeCredential.findUnique({ where: { userId: u.userId } })
  t.ok(row, 'row exists')
  const raw = Buffer.from(row!.ciphertext).toString('latin1')
  t.notOk(raw.includes(acc.secret) || raw.includes(acc.passphrase) || raw.includes(acc.key), 'encrypted at rest')
  t.equal(row!.keyId, g.config.credentialsKey.id, 'tagged with the master key id')

  const get = await g.http('GET', '/api/credentials', { token: u.token })
  t.same(Object.keys(get.body).sort(), ['createdAt', 'maskedKey', 'network', 'verifiedAt'], 'GET returns only masked information')
  t.equal(get.body.network, 'demo')

  const other = await g.login((await g.register()).username, 'x').catch(() => null)
  t.equal(other, null, 'sanity: wrong password cannot log in')

  const del = await g.http('DELETE', '/api/credentials', { token: u.token })
  t.equal(del.status, 200, 'deleted')
  t.equal((await g.http('GET', '/api/credentials', { token: u.token })).status, 404, 'gone')
  t.equal((await g.http('DELETE', '/api/credentials', { token: u.token })).status, 404, 'deleting twice → 404')

  for (const line of [g.logs.text]) {
    t.notOk(line.includes(acc.secret), 'the secret never reaches the logs')
    t.notOk(line.includes(acc.passphrase), 'the passphrase never reaches the logs')
  }
})

t.test('exchange down while storing credentials → 503, nothing stored', async (t) => {
  const g = await startTestApp(t)
  const { username, password } = await g.register()
  const u = await g.login(username, password)
  const acc = g.sim.accounts[0]!
  g.sim.faults.set({ outage: true })
  const r = await g.http('PUT', '/api/credentials', {
    token: u.token,
    body: { apiKey: acc.key, apiSecret: acc.secret, passphrase: acc.passphrase },
  })
  g.sim.faults.reset()
  t.equal(r.status, 503, 'exchange unavailable → 503')
  t.equal(r.body.error.code, 'exchange_unavailable')
  t.equal((await g.http('GET', '/api/credentials', { token: u.token })).status, 404, 'nothing stored')
})

t.test('key rotation re-encrypts every row under the new key while the old one is listed', async (t) => {
  const { rotateCredentials } = await import('../vault/rotate.ts')
  const { keyId } = await import('../config.ts')
  const g = await startTestApp(t)
  const oldKey = g.config.credentialsKey
  const users = [await g.userWithCredentials(0), await g.userWithCredentials(1)]
  const before = await g.app.prisma.exchangeCredential.findMany()
  t.ok(
    before.every((r) => r.keyId === oldKey.id),
    'all rows under the old key',
  )

  const nk = randomBytes(32)
  const newKey = { id: keyId(nk), key: nk }
  const withoutOld = await rotateCredentials(g.app.prisma, { credentialsKey: newKey, credentialsOldKeys: [] })
  t.equal(withoutOld.rotated, 0, 'without the old key listed nothing can be re-encrypted')
  t.equal(withoutOld.failed.length, before.length, 'and every row is reported')

  const r = await rotateCredentials(g.app.prisma, { credentialsKey: newKey, credentialsOldKeys: [oldKey] })
  t.equal(r.rotated, before.length, 'every row re-encrypted')
  const after = await g.app.prisma.exchangeCredential.findMany()
  t.ok(
    after.every((row) => row.keyId === newKey.id),
    'all rows now under the new key',
  )
  for (const u of users) {
    const row = after.find((x) => x.userId === u.userId)!
    const plain = open({ ciphertext: Buffer.from(row.ciphertext), nonce: Buffer.from(row.nonce), keyId: row.keyId }, u.userId, [newKey])
    t.equal(plain.key, g.sim.accounts[users.indexOf(u)]!.key, 'the new key opens the re-encrypted row')
  }
  const again = await rotateCredentials(g.app.prisma, { credentialsKey: newKey, credentialsOldKeys: [oldKey] })
  t.equal(again.alreadyCurrent, after.length, 'a second run is a no-op')
})
