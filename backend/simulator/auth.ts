/**
 * REST v3 request verification exactly as lnmarkets-api.md §8.1 orders it, and the Stream v1
 * `authenticate` check. Signatures are compared as strings in constant time, so a signature that only
 * decodes loosely (extra characters, missing padding) does not pass.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { SimError, type SimAccountInput } from './types.ts'

export const TIMESTAMP_WINDOW_MS = 30_000
/** a timestamp ahead of the server clock is refused (a maintainer: "when you are using a timestamp > to now"); 1 s of tolerance [GUESS] */
export const FUTURE_TOLERANCE_MS = 1_000

export const sign = (secret: string, prehash: string): string => createHmac('sha256', secret).update(prehash, 'utf8').digest('base64')

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8')
  const y = Buffer.from(b, 'utf8')
  // compare against itself when lengths differ so the time spent does not depend on where they differ
  if (x.length !== y.length) return timingSafeEqual(y, y) && false
  return timingSafeEqual(x, y)
}

export interface RestAuthInput {
  headers: Record<string, string | string[] | undefined>
  method: string
  pathname: string
  /** raw query string including its '?', or '' */
  search: string
  rawBody: string
}

/** first value of a header; node lower-cases incoming header names, so lookups by lower-case name are case-insensitive */
export const headerValue = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v)
const header = (h: RestAuthInput['headers'], name: string): string | undefined => headerValue(h[name])

function checkTimestamp(raw: string | undefined, now: number): number {
  if (raw === undefined || !/^\d{1,16}$/.test(raw)) throw new SimError(401, 'apiKeyInvalidTimestamp', 'Timestamp is not valid')
  const ts = Number(raw)
  if (ts - now > FUTURE_TOLERANCE_MS) throw new SimError(401, 'apiKeyTimestampTurfu', 'Your request too far in the future')
  if (now - ts > TIMESTAMP_WINDOW_MS) throw new SimError(401, 'apiKeyTimestampExpired', 'Your request is too old')
  return ts
}

/** returns the account or throws the documented 401 */
export function verifyRest(req: RestAuthInput, accounts: Map<string, SimAccountInput>, now: number): SimAccountInput {
  const key = header(req.headers, 'lnm-access-key')
  const account = key === undefined ? undefined : accounts.get(key)
  if (!account) throw new SimError(401, 'apiKeyNotFound', 'API key not found')
  const passphrase = header(req.headers, 'lnm-access-passphrase')
  if (passphrase === undefined || !safeEqual(passphrase, account.passphrase))
    throw new SimError(401, 'apiKeyInvalidPassphrase', 'Passphrase is not valid')
  const rawTs = header(req.headers, 'lnm-access-timestamp')
  checkTimestamp(rawTs, now)
  // data = raw body when non-empty, else the raw query string with its '?' (a lone '?' is no query, like URL.search)
  const data = req.rawBody !== '' ? req.rawBody : req.search === '?' ? '' : req.search
  const expected = sign(account.secret, `${rawTs}${req.method.toLowerCase()}${req.pathname}${data}`)
  const given = header(req.headers, 'lnm-access-signature') ?? ''
  if (!safeEqual(given, expected)) throw new SimError(401, 'apiKeyInvalidSignature', 'Signature is not valid')
  return account
}

export interface StreamAuthParams {
  key: string
  signature: string
  timestamp: number
  passphrase: string
  nonce: string
}

/** Stream v1: signature = base64(HMAC(secret, `${timestamp}${nonce}`)); returns an error message or the account */
export function verifyStream(p: StreamAuthParams, accounts: Map<string, SimAccountInput>, now: number): SimAccountInput | string {
  const account = accounts.get(p.key)
  if (!account) return 'API key not found'
  if (!safeEqual(p.passphrase, account.passphrase)) return 'Passphrase is not valid'
  try {
    checkTimestamp(String(p.timestamp), now)
  } catch (e) {
    return (e as Error).message
  }
  if (!safeEqual(p.signature, sign(account.secret, `${p.timestamp}${p.nonce}`))) return 'Signature is not valid'
  return account
}
