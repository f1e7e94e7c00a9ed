/**
 * The access-token check's caching (plugins/app/auth.ts): a token verified less than a second ago is
 * trusted from memory (keyed by the whole token, so a changed signature is not), concurrent checks of
 * one token share one database check, and a revocation is never undone by a check that was in flight.
 */
import t from 'tap'
import { startTestApp, uniqueName } from './helpers/app.ts'

t.test('concurrent checks share one database check; revocation wins over a check in flight', async (t) => {
  const g = await startTestApp(t)
  const { username, password } = await g.register(uniqueName('cache'), 'cache password 1')
  const u = await g.login(username, password)
  const token = u.token

  // a fresh token (not yet cached by this node): 20 concurrent checks
  const sid = g.app.jwt.decode<{ sid: string }>(token)!.sid
  const fresh = g.app.authn.issueAccessToken(u.userId, sid).accessToken
  const all = await Promise.all(Array.from({ length: 20 }, () => g.app.authn.verifyAccessToken(fresh)))
  t.ok(
    all.every((v) => v.userId === u.userId),
    'every concurrent check (one shared database check) succeeds for the right user',
  )
  t.equal((await g.app.authn.verifyAccessToken(fresh)).userId, u.userId, 'a check within the second is answered from memory')
  const forged = `${fresh.slice(0, -4)}AAAA`
  t.equal(
    await g.app.authn.verifyAccessToken(forged).then(
      () => 'accepted',
      (e: { reason?: string }) => e.reason,
    ),
    'invalid',
    'a cached token with another signature is still refused',
  )

  // revoke while a check of the same token is in flight: that check must not cache it as valid
  const inFlight = g.app.authn.verifyAccessToken(token)
  await g.app.authn.revokeAccessToken(token).catch(() => {})
  await inFlight.catch(() => {})
  t.equal(
    await g.app.authn.verifyAccessToken(token).then(
      () => 'accepted',
      (e: { reason?: string }) => e.reason,
    ),
    'revoked',
    'after logout the token is refused at once',
  )
  const r = await g.http('GET', '/api/me', { token })
  t.equal(r.status, 401, 'and over HTTP')
})
