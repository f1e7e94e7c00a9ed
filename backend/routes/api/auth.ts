/**
 * Users and sessions (CONTRACT §4): register, login, refresh (rotating, reuse-detecting), logout, me.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import Type from 'typebox'
import { passwordProblems } from '../../auth/passwords.ts'
import { randomUUID } from 'node:crypto'
import { REFRESH_COOKIE, newRefreshToken, refreshSessionId, sha256hex } from '../../auth/tokens.ts'
import cluster from 'node:cluster'
import { MemoryAttempts, RedisAttempts, slowDownMs, type AttemptCounter } from '../../auth/attempts.ts'
import { ClusterAttempts } from '../../cluster.ts'
import { httpError } from '../../errors.ts'
import { Credentials, ErrorResponse, LoginBody, Ok, TokenResponse, User, USERNAME_PATTERN, commonErrors } from '../../schemas/http.ts'

const USERNAME_RE = new RegExp(USERNAME_PATTERN)

const toUser = (u: { id: string; username: string; createdAt: Date }) => ({
  id: u.id,
  username: u.username,
  createdAt: u.createdAt.toISOString(),
})

const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app
  const ipLimit = { max: config.AUTH_RATE_LIMIT_IP_PER_MIN, timeWindow: 60_000 }
  /**
   * Besides the per-IP route limit: login attempts are limited per (username, address), so wrong passwords sent
   * from one address cannot lock the owner out from another; across all addresses, attempts beyond
   * AUTH_SLOWDOWN_USER_PER_MIN a minute are slowed down (never refused), which blunts a guess spread over many
   * addresses without handing anyone a lock-out. Registrations are limited per username.
   */
  // shared by the nodes (Redis), by the workers of one machine (the cluster primary), or this process' own
  const attempts: AttemptCounter = app.rateLimitRedis
    ? new RedisAttempts(app.rateLimitRedis.redis, app.rateLimitRedis.prefix)
    : app.config.workers > 1 && cluster.isWorker
      ? new ClusterAttempts()
      : new MemoryAttempts()
  const usernameKey = (req: FastifyRequest) => {
    const u = (req.body as { username?: unknown } | undefined)?.username
    return (typeof u === 'string' || typeof u === 'number' ? String(u) : '').toLowerCase().slice(0, 64)
  }
  const refuse = (what: string, ttlMs: number) => {
    const s = Math.max(1, Math.ceil(ttlMs / 1000))
    app.authn.authFailed('rate_limited')
    return httpError(429, 'rate_limited', `Too many ${what} attempts for this user; retry in ${s} s`, { 'retry-after': String(s) })
  }
  const loginLimits = async (request: FastifyRequest) => {
    const name = usernameKey(request)
    const pair = await attempts.hit(`login:user-addr:${name}|${request.ip}`, 60_000)
    if (pair.count > config.AUTH_RATE_LIMIT_USER_PER_MIN) throw refuse('login', pair.ttlMs)
    const all = await attempts.hit(`login:user:${name}`, 60_000)
    const delay = slowDownMs(all.count, config.AUTH_SLOWDOWN_USER_PER_MIN)
    if (delay > 0) await new Promise((r) => setTimeout(r, delay))
  }
  const registerLimits = async (request: FastifyRequest) => {
    const r = await attempts.hit(`register:user:${usernameKey(request)}`, 60_000)
    if (r.count > config.AUTH_RATE_LIMIT_USER_PER_MIN) throw refuse('registration', r.ttlMs)
  }
  // the unknown-user path verifies against this hash: compute it now, so the first unknown login costs no more than a known one
  void app.passwords.dummyHash()

  function setRefreshCookie(reply: FastifyReply, token: string, expiresAt: Date) {
    reply.setCookie(REFRESH_COOKIE, token, {
      httpOnly: true,
      sameSite: 'strict',
      secure: config.NODE_ENV === 'production',
      path: '/api/auth',
      expires: expiresAt,
    })
  }

  async function startSession(request: FastifyRequest, reply: FastifyReply, userId: string) {
    const id = randomUUID()
    const refresh = newRefreshToken(id)
    const expiresAt = new Date(Date.now() + config.REFRESH_TOKEN_TTL_S * 1000)
    await app.prisma.refreshSession.create({
      data: {
        id,
        userId,
        tokenHash: sha256hex(refresh),
        expiresAt,
        userAgent: request.headers['user-agent']?.slice(0, 256) ?? null,
        ip: request.ip,
      },
    })
    setRefreshCookie(reply, refresh, expiresAt)
    return app.authn.issueAccessToken(userId, id)
  }

  app.post(
    '/register',
    {
      config: { rateLimit: ipLimit },
      preHandler: registerLimits,
      schema: { body: Credentials, response: { 201: Type.Object({ user: User }), 409: ErrorResponse, ...commonErrors } },
    },
    async (request, reply) => {
      const { username, password } = request.body
      // every rule broken, each its own sentence (the dashboard lists them one per line)
      const problems = passwordProblems(username, password)
      if (problems.length) throw httpError(400, 'weak_password', problems.join(' '))
      // "Alice" next to "alice" would let one user pass for another: usernames are unique whatever their case
      const clash = await app.prisma.$queryRaw<
        Array<{ n: number }>
      >`SELECT 1 AS n FROM users WHERE lower(username) = lower(${username}) LIMIT 1`
      if (clash.length > 0) throw httpError(409, 'username_taken', 'That username is taken')
      const passwordHash = await app.passwords.hash(password)
      try {
        const user = await app.prisma.user.create({ data: { username, passwordHash } })
        app.authn.audit('register', { userId: user.id, username, ip: request.ip })
        return reply.status(201).send({ user: toUser(user) })
      } catch (err) {
        if ((err as { code?: string }).code === 'P2002') throw httpError(409, 'username_taken', 'That username is taken')
        throw err
      }
    },
  )

  app.post(
    '/login',
    {
      config: { rateLimit: ipLimit },
      preHandler: loginLimits,
      schema: { body: LoginBody, response: { 200: TokenResponse, ...commonErrors } },
    },
    async (request, reply) => {
      const { username, password } = request.body
      // a name registration could never have produced (control characters, NUL, SQL, HTML…) is an unknown user:
      // it never reaches the database, which would refuse some of those bytes with an error (a 500)
      const user = USERNAME_RE.test(username) ? await app.prisma.user.findUnique({ where: { username } }) : null
      // the same work and the same answer whether the user exists or not
      const ok = await app.passwords.verify(password, user?.passwordHash ?? (await app.passwords.dummyHash()))
      if (!user || !ok) {
        app.authn.authFailed('bad_credentials')
        app.authn.audit('login_failed', { userId: user?.id ?? null, username, ip: request.ip })
        throw httpError(401, 'invalid_credentials', 'Invalid username or password')
      }
      app.authn.audit('login_ok', { userId: user.id, username, ip: request.ip })
      return startSession(request, reply, user.id)
    },
  )

  app.post(
    '/refresh',
    {
      config: { rateLimit: { max: 60, timeWindow: 60_000 } },
      schema: { response: { 200: TokenResponse, ...commonErrors } },
    },
    async (request, reply) => {
      const presented = request.cookies[REFRESH_COOKIE]
      if (!presented) throw httpError(401, 'no_session', 'No refresh session')
      const hash = sha256hex(presented)
      const now = new Date()
      const session = await app.prisma.refreshSession.findUnique({ where: { tokenHash: hash } })
      if (!session) {
        // tabs of one browser refreshing at the same moment all present the same cookie: the token rotated last,
        // presented again within REFRESH_REUSE_GRACE_MS, gets an access token (no new refresh token: the browser
        // already holds it from the request that won the rotation) instead of being treated as theft
        const justRotated = await app.prisma.refreshSession.findUnique({ where: { prevTokenHash: hash } })
        if (
          justRotated &&
          !justRotated.revokedAt &&
          justRotated.expiresAt > now &&
          now.getTime() - justRotated.rotatedAt.getTime() <= config.REFRESH_REUSE_GRACE_MS
        ) {
          app.authn.audit('refresh_grace', {
            userId: justRotated.userId,
            ip: request.ip,
            detail: 'concurrent refresh within the grace window',
          })
          return app.authn.issueAccessToken(justRotated.userId, justRotated.id)
        }
        // a rotated token presented again — the last one, or any older one of the same session (its id prefix says
        // which): whoever holds it is not the legitimate client — end the session
        const sid = refreshSessionId(presented)
        const stolen = justRotated ?? (sid ? await app.prisma.refreshSession.findUnique({ where: { id: sid } }) : null)
        if (stolen && !stolen.revokedAt) {
          await app.prisma.refreshSession.update({ where: { id: stolen.id }, data: { revokedAt: now } })
          app.authn.sessionEnded(stolen.id)
          app.authn.audit('refresh_reuse', {
            userId: stolen.userId,
            ip: request.ip,
            detail: 'rotated refresh token reused; session revoked',
          })
          app.authn.authFailed('refresh_reuse')
        }
        reply.clearCookie(REFRESH_COOKIE, { path: '/api/auth' })
        throw httpError(401, 'invalid_session', 'Refresh session is not valid')
      }
      if (session.revokedAt || session.expiresAt <= now) {
        reply.clearCookie(REFRESH_COOKIE, { path: '/api/auth' })
        throw httpError(401, 'invalid_session', 'Refresh session is not valid')
      }
      const next = newRefreshToken(session.id)
      // compare-and-swap on the current hash: two concurrent refreshes cannot both rotate
      const rotated = await app.prisma.refreshSession.updateMany({
        where: { id: session.id, tokenHash: hash, revokedAt: null },
        data: { tokenHash: sha256hex(next), prevTokenHash: hash, rotatedAt: now },
      })
      if (rotated.count !== 1) {
        // lost the race to a concurrent refresh of the same cookie a moment ago: the same grace as above
        // — unless what won the race was a logout (or a reuse detection): an ended session issues nothing
        const current = await app.prisma.refreshSession.findUnique({ where: { id: session.id }, select: { revokedAt: true } })
        if (config.REFRESH_REUSE_GRACE_MS > 0 && current && !current.revokedAt) {
          app.authn.audit('refresh_grace', { userId: session.userId, ip: request.ip, detail: 'concurrent refresh lost the rotation race' })
          return app.authn.issueAccessToken(session.userId, session.id)
        }
        reply.clearCookie(REFRESH_COOKIE, { path: '/api/auth' })
        throw httpError(401, 'invalid_session', 'Refresh session is not valid')
      }
      setRefreshCookie(reply, next, session.expiresAt)
      app.authn.audit('refresh', { userId: session.userId, ip: request.ip })
      return app.authn.issueAccessToken(session.userId, session.id)
    },
  )

  app.post(
    '/logout',
    {
      onRequest: app.requireUser,
      schema: { response: { 200: Ok, ...commonErrors } },
    },
    async (request, reply) => {
      const v = await app.authn.revokeAccessToken(request.accessToken)
      // the session the access token belongs to ends, with or without its cookie and whatever a concurrent refresh
      // rotated meanwhile (it keeps its id); the cookie's session too, when one is presented
      const presented = request.cookies[REFRESH_COOKIE]
      const ids = [v.sessionId, presented ? refreshSessionId(presented) : null].filter((x): x is string => typeof x === 'string')
      const ors = [...(ids.length ? [{ id: { in: ids } }] : []), ...(presented ? [{ tokenHash: sha256hex(presented) }] : [])]
      if (ors.length) {
        const ended = await app.prisma.refreshSession.findMany({ where: { userId: request.userId, OR: ors }, select: { id: true } })
        await app.prisma.refreshSession.updateMany({
          where: { userId: request.userId, OR: ors, revokedAt: null },
          data: { revokedAt: new Date() },
        })
        for (const s of ended) app.authn.sessionEnded(s.id)
      }
      reply.clearCookie(REFRESH_COOKIE, { path: '/api/auth' })
      app.authn.audit('logout', { userId: request.userId, ip: request.ip })
      return { ok: true as const }
    },
  )
}

export default authRoutes

export const meRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/me', { onRequest: app.requireUser, schema: { response: { 200: User, ...commonErrors } } }, async (request) => {
    const user = await app.prisma.user.findUnique({ where: { id: request.userId } })
    if (!user) throw httpError(401, 'invalid_token', 'Invalid access token')
    return toUser(user)
  })

  /** closes the account: every session, stored credential and socket of the user goes with it */
  app.delete(
    '/me',
    {
      onRequest: app.requireUser,
      config: { rateLimit: { max: 10, timeWindow: 60_000 } },
      schema: {
        body: Type.Object({ password: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false }),
        response: { 200: Ok, ...commonErrors },
      },
    },
    async (request, reply) => {
      const user = await app.prisma.user.findUnique({ where: { id: request.userId } })
      if (!user || !(await app.passwords.verify(request.body.password, user.passwordHash)))
        throw httpError(401, 'invalid_credentials', 'Password is not correct')
      await app.prisma.user.delete({ where: { id: user.id } })
      app.authn.audit('user_deleted', { username: user.username, ip: request.ip })
      app.authn.userDeleted(user.id)
      reply.clearCookie(REFRESH_COOKIE, { path: '/api/auth' })
      return { ok: true as const }
    },
  )
}
