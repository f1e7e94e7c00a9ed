/** Opaque tokens: refresh tokens are random and stored only as sha256 hashes. */
import { createHash, randomBytes } from 'node:crypto'

export const sha256hex = (s: string): string => createHash('sha256').update(s).digest('hex')
export const newRefreshToken = (): string => randomBytes(32).toString('base64url')
export const REFRESH_COOKIE = 'lnm_refresh'
