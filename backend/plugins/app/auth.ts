/**
 * Authentication service: short-lived JWT access tokens (user id, refresh session id, a unique `jti`, times),
 * refresh sessions,
 * revocation on logout, an audit trail, and `requireUser` for bearer routes.
 */
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { LRUCache } from 'lru-cache'
import { countBound } from '../../bounded-lru.ts'
import { sha256hex } from '../../auth/tokens.ts'
import { errorBody } from '../../errors.ts'

export type AuthFailure = 'expired' | 'invalid' | 'revoked' | 'unknown_user' | 'missing'

export class AuthError extends Error {
  constructor(
    readonly reason: AuthFailure,
    message: string,
  ) {
    super(message)
    this.name = 'AuthError'
  }
}

export interface VerifiedToken {
  userId: string
  /** epoch seconds */
  exp: number
  tokenHash: string
  /** the refresh session the token was issued for (absent on tokens issued before sessions were named) */
  sessionId?: string
}

export interface AuthEvents {
  revoked: [{ userId: string; tokenHash: string }]
  user_deleted: [{ userId: string }]
}

export interface AuditFields {
  userId?: string | null
  username?: string | null
  ip?: string | null
  detail?: string | null
}

/** how long a positive verification is trusted before the database is asked again */
const VERIFY_CACHE_MS = 1000

/** user ids are UUIDs: anything else in `sub` is refused before the database is asked */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** attacker-chosen text bound for the audit trail: no control characters (PostgreSQL refuses NUL), bounded length */
const auditText = (s: string | null | undefined, max: number): string | null =>
  s == null
    ? null
    : // eslint-disable-next-line no-control-regex -- replacing control characters is the point
      Array.from(s.replace(/[\u0000-\u001f\u007f]/g, '\uFFFD'))
        .slice(0, max)
        .join('')

export default fp(
  async function auth(app) {
    const { config } = app
    const events = new EventEmitter<AuthEvents>()
    events.setMaxListeners(0)
    /** token → its verification, for at most VERIFY_CACHE_MS and never past the token's expiry */
    const verified = new LRUCache<string, VerifiedToken>({ ...countBound(50_000), ttl: VERIFY_CACHE_MS })
    /** database checks in progress, by token (only for tokens whose signature verified) */
    const checking = new Map<string, Promise<VerifiedToken>>()
    /** tokens revoked by this node, refused at once without waiting for the cache to expire */
    const revokedHere = new LRUCache<string, true>({ ...countBound(100_000), ttl: config.ACCESS_TOKEN_TTL_S * 1000 })

    /**
     * `sid` names the refresh session, so a logout can end it and every token it issued, whatever the race;
     * `jti` makes every token unique (two logins in the same second no longer get the same token, which one
     * logout would revoke for both)
     */
    function issueAccessToken(userId: string, sessionId: string): { accessToken: string; expiresAt: number; tokenType: 'Bearer' } {
      const accessToken = app.jwt.sign({ sub: userId, sid: sessionId, jti: randomUUID() }, { expiresIn: config.ACCESS_TOKEN_TTL_S })
      const { exp } = app.jwt.decode<{ exp: number }>(accessToken)!
      return { accessToken, expiresAt: exp * 1000, tokenType: 'Bearer' }
    }

    async function verifyAccessToken(token: string): Promise<VerifiedToken> {
      if (typeof token !== 'string' || token.length === 0 || token.length > 4096) throw new AuthError('invalid', 'invalid token')
      // the same token fully verified (signature, expiry, user, revocation) less than VERIFY_CACHE_MS ago, and
      // never past its expiry: trusted without hashing it or checking its HMAC again (a dashboard polling
      // /api/dashboard, a burst of requests from one tab). Revocation here deletes the entry.
      const cached = verified.get(token)
      if (cached) return cached
      const tokenHash = sha256hex(token)
      if (revokedHere.has(tokenHash)) throw new AuthError('revoked', 'token revoked')
      let payload: { sub?: unknown; exp?: unknown; iat?: unknown; sid?: unknown }
      try {
        // no per-call options: the verifier (HS256 only) is built once at registration; options here would build one per call
        payload = app.jwt.verify(token)
      } catch (err) {
        const code = String((err as { code?: string }).code ?? '')
        if (code.includes('EXPIRED')) throw new AuthError('expired', 'token expired')
        throw new AuthError('invalid', 'invalid token')
      }
      if (typeof payload.sub !== 'string' || !UUID.test(payload.sub) || typeof payload.exp !== 'number')
        throw new AuthError('invalid', 'invalid token')
      if (payload.sid !== undefined && (typeof payload.sid !== 'string' || !UUID.test(payload.sid)))
        throw new AuthError('invalid', 'invalid token')
      const sessionId = payload.sid
      // requests with the same (validly signed) token while its database check runs share that check:
      // when the cache entry expires under load, 32 concurrent requests cost 2 queries, not 64
      let check = checking.get(token)
      if (!check) {
        check = checkInDatabase(token, tokenHash, payload.sub, payload.exp, typeof payload.iat === 'number' ? payload.iat : 0, sessionId)
        checking.set(token, check)
        const forget = () => {
          checking.delete(token)
        }
        check.then(forget, forget)
      }
      return check
    }

    /** user exists, token not revoked nor issued before tokensValidAfter, its session not ended; caches the result */
    async function checkInDatabase(
      token: string,
      tokenHash: string,
      sub: string,
      exp: number,
      iat: number,
      sessionId: string | undefined,
    ): Promise<VerifiedToken> {
      // a database failure is not an authentication failure: it propagates (5xx), it never reads as "invalid token"
      const [user, revoked, session] = await Promise.all([
        app.prisma.user.findUnique({ where: { id: sub }, select: { id: true, tokensValidAfter: true } }),
        app.prisma.revokedToken.findUnique({ where: { tokenHash }, select: { tokenHash: true } }),
        sessionId ? app.prisma.refreshSession.findUnique({ where: { id: sessionId }, select: { userId: true, revokedAt: true } }) : null,
      ])
      if (!user) throw new AuthError('unknown_user', 'invalid token')
      // revoked in the database, or here while the queries ran
      if (revoked || revokedHere.has(tokenHash)) throw new AuthError('revoked', 'token revoked')
      // the session ended (logout, refresh-token reuse): so did every access token it issued
      if (sessionId && (!session || session.revokedAt || session.userId !== user.id)) throw new AuthError('revoked', 'session ended')
      if (iat * 1000 + 999 < user.tokensValidAfter.getTime()) throw new AuthError('revoked', 'token revoked')
      const v: VerifiedToken = { userId: user.id, exp, tokenHash, ...(sessionId ? { sessionId } : {}) }
      verified.set(token, v, { ttl: Math.min(VERIFY_CACHE_MS, Math.max(1, exp * 1000 - Date.now())) })
      return v
    }

    async function revokeAccessToken(token: string): Promise<VerifiedToken> {
      const v = await verifyAccessToken(token)
      revokedHere.set(v.tokenHash, true)
      verified.delete(token)
      await app.prisma.revokedToken.upsert({
        where: { tokenHash: v.tokenHash },
        create: { tokenHash: v.tokenHash, userId: v.userId, expiresAt: new Date(v.exp * 1000) },
        update: {},
      })
      events.emit('revoked', { userId: v.userId, tokenHash: v.tokenHash })
      return v
    }

    /** a refresh session ended: this node stops trusting the cached verification of any token it issued */
    function sessionEnded(sessionId: string): void {
      for (const [hash, v] of verified.entries()) if (v.sessionId === sessionId) verified.delete(hash)
    }

    function userDeleted(userId: string): void {
      verified.clear()
      events.emit('user_deleted', { userId })
    }

    function audit(event: string, f: AuditFields): void {
      app.prisma.authEvent
        .create({
          data: {
            event,
            userId: f.userId ?? null,
            username: auditText(f.username, 64),
            ip: auditText(f.ip, 64),
            detail: auditText(f.detail, 256),
          },
        })
        .catch((err: unknown) => app.log.warn({ err, event }, 'audit write failed'))
    }

    function authFailed(reason: string): void {
      app.metrics.authFailures.inc({ reason })
    }

    async function requireUser(request: FastifyRequest, reply: FastifyReply): Promise<void> {
      const h = request.headers.authorization
      const m = typeof h === 'string' ? /^Bearer ([^\s]+)$/i.exec(h) : null
      if (!m) {
        authFailed('missing')
        return reply.status(401).header('www-authenticate', 'Bearer').send(errorBody('unauthorized', 'Missing bearer token'))
      }
      try {
        const v = await verifyAccessToken(m[1]!)
        request.userId = v.userId
        request.accessToken = m[1]!
      } catch (err) {
        if (!(err instanceof AuthError)) throw err
        authFailed(err.reason)
        const code = err.reason === 'expired' ? 'token_expired' : 'invalid_token'
        return reply
          .status(401)
          .header('www-authenticate', `Bearer error="invalid_token"`)
          .send(errorBody(code, err.reason === 'expired' ? 'Access token expired' : 'Invalid access token'))
      }
    }

    // drop revocation rows once the tokens they name would have expired anyway
    const sweep = setInterval(() => {
      app.prisma.revokedToken.deleteMany({ where: { expiresAt: { lt: new Date() } } }).catch(() => {})
    }, 10 * 60_000)
    sweep.unref()
    app.addHook('onClose', async () => clearInterval(sweep))

    app.decorateRequest('userId', '')
    app.decorateRequest('accessToken', '')
    app.decorate('authn', { issueAccessToken, verifyAccessToken, revokeAccessToken, sessionEnded, userDeleted, audit, authFailed, events })
    app.decorate('requireUser', requireUser)
  },
  { name: 'auth', dependencies: ['db', 'metrics', '@fastify/jwt'] },
)

export interface Authn {
  issueAccessToken(userId: string, sessionId: string): { accessToken: string; expiresAt: number; tokenType: 'Bearer' }
  verifyAccessToken(token: string): Promise<VerifiedToken>
  revokeAccessToken(token: string): Promise<VerifiedToken>
  sessionEnded(sessionId: string): void
  userDeleted(userId: string): void
  audit(event: string, fields: AuditFields): void
  authFailed(reason: string): void
  events: EventEmitter<AuthEvents>
}

declare module 'fastify' {
  interface FastifyInstance {
    authn: Authn
    requireUser: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
  interface FastifyRequest {
    userId: string
    accessToken: string
  }
}
