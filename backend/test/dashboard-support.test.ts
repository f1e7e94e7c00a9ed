/**
 * Backend pieces the dashboard relies on (issue "the dashboard a trader keeps open all day"): every broken
 * password rule as its own sentence, validation errors that name the field in words, a masked key that
 * tells keys apart, and one-click simulator credentials in demo mode.
 */
import t from 'tap'
import { passwordProblems } from '../auth/passwords.ts'
import { describeValidation } from '../validation-messages.ts'
import { startTestApp, uniqueName } from './helpers/app.ts'

t.test('password policy: each rule its own sentence; common passwords refused', async (t) => {
  t.same(passwordProblems('alice', 'correct horse battery'), [], 'a long passphrase passes')
  t.match(passwordProblems('trader', 'password').join(' '), /most common passwords/, '"password" alone is refused')
  t.match(
    passwordProblems('trader', 'Password123!').join(' '),
    /most common passwords/,
    'a common password with digits and a symbol appended is refused',
  )
  const many = passwordProblems('bob', 'bob1')
  t.ok(many.length >= 2, `several rules broken give several sentences (${many.length})`)
  t.ok(
    many.every((s) => /^The password .*\.$/.test(s)),
    'each a sentence of its own',
  )
  t.same(
    passwordProblems('bob', 'bobbybobby').filter((s) => /username/.test(s)),
    ['The password must not contain the username.'],
    'the username rule is said as the username rule',
  )
  t.match(passwordProblems('x1', '11111111').join(' '), /digits only/, 'digits only is refused')
})

t.test('validation errors name the field in plain words', async (t) => {
  t.equal(
    describeValidation([{ instancePath: '/apiSecret', keyword: 'minLength', params: { limit: 8 } }]),
    'API secret must be at least 8 characters.',
    'minLength',
  )
  t.equal(
    describeValidation([{ instancePath: '', keyword: 'required', params: { missingProperty: 'passphrase' } }]),
    'Passphrase is required.',
    'required',
  )
  t.match(
    describeValidation([{ instancePath: '/apiKey', keyword: 'pattern', params: {} }]),
    /^API key contains characters that are not allowed/,
    'pattern',
  )
  t.equal(
    describeValidation([{ instancePath: '/username', keyword: 'pattern', params: {} }]),
    'Username may contain only letters, digits, _ . and -.',
    'username pattern',
  )
})

t.test('over HTTP: register and credentials errors, demo credentials in one click', async (t) => {
  const g = await startTestApp(t)
  const weak = await g.http('POST', '/api/auth/register', { body: { username: uniqueName('w'), password: 'password' } })
  t.equal(weak.status, 400, '"password" is refused at registration')
  t.equal(weak.body.error.code, 'weak_password', 'as a weak password')
  t.match(weak.body.error.message, /most common passwords/, `with the rule: "${weak.body.error.message}"`)
  const short = await g.http('POST', '/api/auth/register', { body: { username: 'carol', password: 'carol' } })
  t.equal(short.status, 400, 'a short password containing the username is refused')
  t.ok(short.body.error.message.split(/(?<=\.)\s+/).length >= 2, `all its broken rules come back at once: "${short.body.error.message}"`)
  t.match(short.body.error.message, /at least 8 characters/, 'the length rule')
  t.match(short.body.error.message, /must not contain the username/, 'and the username rule, each its own sentence')

  const { username, password } = await g.register()
  const u = await g.login(username, password)
  const r = await g.http('PUT', '/api/credentials', { token: u.token, body: { apiKey: 'abcdefgh1', apiSecret: 'short', passphrase: 'p' } })
  t.equal(r.status, 400, 'a too-short secret → 400')
  t.equal(r.body.error.message, 'API secret must be at least 8 characters.', 'naming the field in words')
  t.notMatch(r.body.error.message, /body\/|must NOT/, 'never the raw validator text')

  const demo = await g.http('POST', '/api/credentials/demo', { token: u.token })
  t.equal(demo.status, 200, 'demo mode: one click provisions simulator credentials')
  t.match(demo.body.maskedKey, /…[0-9a-f]{3,}$/, `a masked key is returned (${demo.body.maskedKey})`)
  t.equal(g.sim.accounts.at(-1)?.positions?.length, 3, 'a fresh simulator account with positions and an open order exists')
  const stored = await g.app.vault.get(u.userId)
  t.equal(stored?.key, g.sim.accounts.at(-1)?.key, 'its credentials are stored for this user')
  await t.resolves(g.app.exchange.client.account(stored!), 'and the simulator accepts them')
  const again = await g.http('POST', '/api/credentials/demo', { token: u.token })
  t.equal(again.status, 200, 'asking again replaces them with another fresh account')
  t.not(again.body.maskedKey, demo.body.maskedKey, 'whose masked key differs: the two keys can be told apart')
  const anon = await g.http('POST', '/api/credentials/demo')
  t.equal(anon.status, 401, 'signed-in users only')
})

t.test('live mode: no demo credentials route', async (t) => {
  const g0 = await startTestApp(t)
  const g = await startTestApp(t, { LNM_API_URL: g0.sim.url, LNM_STREAM_URL: g0.sim.streamUrl })
  const { username, password } = await g.register()
  const u = await g.login(username, password)
  const r = await g.http('POST', '/api/credentials/demo', { token: u.token })
  t.equal(r.status, 404, 'outside demo mode the route answers 404')
  t.equal(r.body.error.code, 'not_found', 'in the contract error shape')
})

t.test('static caching policy: hashed assets immutable, the rest revalidated', async (t) => {
  const { staticCacheControl } = await import('../plugins/external/index.ts')
  t.equal(staticCacheControl('/srv/dist/frontend/assets/index-CWy9dzbJ.js'), 'public, max-age=31536000, immutable', 'a hashed script')
  t.equal(staticCacheControl('/srv/dist/frontend/assets/index-CWmaQ6ee.css.br'), 'public, max-age=31536000, immutable', 'its brotli twin')
  t.equal(staticCacheControl('/srv/dist/frontend/index.html'), 'no-cache', 'index.html')
  t.equal(staticCacheControl('/srv/dist/frontend/index.html.gz'), 'no-cache', 'index.html gzip twin')
  t.equal(staticCacheControl('/srv/dist/frontend/favicon.svg'), 'no-cache', 'an unhashed file')
})
