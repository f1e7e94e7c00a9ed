/**
 * LN Markets request signing (lnmarkets-api.md §2.2, §6.1).
 *
 *   v3 prehash = <timestamp ms> + <method lower-case> + <pathname incl. /v3> + <data>
 *   data       = the exact body string sent | url.search incl. leading "?" | ''
 *   signature  = base64(HMAC-SHA256(key = secret as UTF-8 string, msg = prehash))
 *
 * The secret is used as-is (never base64-decoded, §2.5).
 */
import { createHmac } from 'node:crypto'

export interface Credentials {
  key: string
  secret: string
  passphrase: string
}

/** base64(HMAC-SHA256(secret, payload)), the primitive of the official SDK (`signRequest`). */
export function signRequest(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload, 'utf8').digest('base64')
}

/** The v3 prehash. `data` is the body string when there is one, else `search` (with its "?"), else ''. */
export function prehashV3(timestamp: number | string, method: string, pathname: string, data = ''): string {
  return `${timestamp}${method.toLowerCase()}${pathname}${data}`
}

/** Data part of the v3 prehash for a URL and an optional body string (the exact bytes sent). */
export function signedData(url: URL, body?: string): string {
  return body !== undefined && body !== '' ? body : url.search
}

export function signV3(secret: string, timestamp: number | string, method: string, url: URL, body?: string): string {
  return signRequest(secret, prehashV3(timestamp, method, url.pathname, signedData(url, body)))
}

/** printable ASCII, no leading or trailing space: what an HTTP header value carries unchanged */
const HEADER_SAFE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/

/**
 * The first credential field that cannot be sent as an HTTP header value as is ('key' or 'passphrase'), or null.
 * The secret never travels (it keys the HMAC), so any string works there.
 */
export function unsendableCredentialField(creds: Credentials): 'key' | 'passphrase' | null {
  if (!HEADER_SAFE.test(creds.key)) return 'key'
  if (!HEADER_SAFE.test(creds.passphrase)) return 'passphrase'
  return null
}

/** The four lnm-access-* headers (lower-case, as the v3 SDK sends them). */
export type AuthHeaders = Record<'lnm-access-key' | 'lnm-access-passphrase' | 'lnm-access-timestamp' | 'lnm-access-signature', string>

export function authHeaders(creds: Credentials, timestamp: number, method: string, url: URL, body?: string): AuthHeaders {
  return {
    'lnm-access-key': creds.key,
    'lnm-access-passphrase': creds.passphrase,
    'lnm-access-timestamp': String(timestamp),
    'lnm-access-signature': signV3(creds.secret, timestamp, method, url, body),
  }
}

/** Stream v1 `authenticate` signature: base64(HMAC-SHA256(secret, `${timestamp}${nonce}`)). */
export function signStreamAuth(secret: string, timestamp: number, nonce: string): string {
  return signRequest(secret, `${timestamp}${nonce}`)
}
