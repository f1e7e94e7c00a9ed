/** Every error the API can return, said plainly (CONTRACT §4). */
import { ApiError } from '../../lib/api-client.ts'

function wait(ms: number | undefined): string {
  if (!ms) return 'in a moment'
  const s = Math.ceil(ms / 1000)
  return s < 90 ? `in ${s} s` : `in ${Math.ceil(s / 60)} min`
}

export type ErrorContext = 'login' | 'register' | 'credentials' | 'generic'

export function describeError(e: unknown, ctx: ErrorContext = 'generic'): string {
  if (!(e instanceof ApiError)) return 'Something went wrong in this page. Reload it and try again.'
  const serverSays = e.message && !/^http_/.test(e.code) ? e.message : ''
  switch (e.status) {
    case 0:
      return 'The gateway cannot be reached. Check your connection; nothing was changed.'
    case 400:
      // the gateway says each broken rule as its own sentence, naming the field in words
      if (ctx === 'register' && e.code !== 'weak_password' && /^Username/.test(serverSays)) return serverSays
      if (ctx === 'register') return serverSays || 'That password cannot be used.'
      if (ctx === 'credentials') return serverSays || 'Those fields are not valid.'
      return serverSays || 'The request was not valid.'
    case 401:
      if (ctx === 'login') return 'Wrong username or password.'
      return 'Your session has ended. Please sign in again.'
    case 403:
      return serverSays || 'You are not allowed to do that.'
    case 404:
      return serverSays || 'Not found.'
    case 409:
      if (ctx === 'register') return 'That username is already taken. Choose another, or sign in.'
      return serverSays || 'That conflicts with the current state. Reload and try again.'
    case 413:
      return 'That is too large to send.'
    case 422:
      if (ctx === 'credentials')
        return serverSays
          ? `${serverSays}.`
          : 'LN Markets rejected these API credentials. Check the key, secret and passphrase, and that the key is not revoked.'
      return serverSays || 'The request could not be processed.'
    case 429:
      return `Too many attempts. Try again ${wait(e.retryAfterMs)}.`
    case 502:
    case 504:
      return serverSays ? `${serverSays}.` : 'The exchange did not answer. Try again shortly.'
    case 503:
      return serverSays
        ? `${serverSays} (retry ${wait(e.retryAfterMs)}).`
        : `The gateway is busy or starting. Try again ${wait(e.retryAfterMs)}.`
    default:
      if (e.status >= 500) return 'The gateway had an internal error. Try again; if it persists, contact the operator.'
      return serverSays || `Unexpected answer from the gateway (HTTP ${e.status}).`
  }
}

/** one sentence per line: the gateway reports every broken rule at once, each as a sentence */
export function splitSentences(message: string): string[] {
  return message
    .split(/(?<=[.!?])\s+(?=[A-Z"])/)
    .map((x) => x.trim())
    .filter(Boolean)
}

/** which credentials field a message is about (the gateway names it in words), or null */
export function credentialsFieldOf(message: string): 'apiKey' | 'apiSecret' | 'passphrase' | null {
  if (/^API key\b/.test(message)) return 'apiKey'
  if (/^API secret\b/.test(message)) return 'apiSecret'
  if (/^Passphrase\b/.test(message)) return 'passphrase'
  return null
}
