/** Opaque tokens: refresh tokens are random and stored only as sha256 hashes. */
import { createHash, randomBytes } from 'node:crypto'

export const sha256hex = (s: string): string => createHash('sha256').update(s).digest('hex')
/**
 * `<session id>.<256 random bits>`: the session id lets the server recognise ANY earlier token of a session
 * (not only the one rotated last) when it is presented again, and revoke that session.
 */
export const newRefreshToken = (sessionId: string): string => `${sessionId}.${randomBytes(32).toString('base64url')}`
const SESSION_PREFIX = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\./
/** the session a refresh token names, or null (a forged or pre-prefix token) */
export const refreshSessionId = (token: string): string | null => SESSION_PREFIX.exec(token)?.[1] ?? null
export const REFRESH_COOKIE = 'lnm_refresh'
