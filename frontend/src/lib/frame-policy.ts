/**
 * The realtime client's pure decisions, kept apart so they are unit-tested without a browser:
 * which frames may replace what is on screen, how long to wait before reconnecting, and which
 * close codes end the session (CONTRACT §5).
 */

/** what the screen currently shows for one channel */
export interface ShownVersion {
  epoch: number
  seq: number
  sourceTs: number
}

/**
 * accept: replaces what is shown. refresh: the same version (epoch and seq) known true at a later time —
 * the data stays, only its age is renewed. too_old / not_newer: rejected.
 */
export type FrameVerdict = 'accept' | 'refresh' | 'too_old' | 'not_newer'

/** the same version as shown, but known true more recently (the gateway advances sourceTs of unchanged data) */
export function isSameVersionFresher(shown: ShownVersion | undefined, incoming: ShownVersion): boolean {
  return !!shown && incoming.epoch === shown.epoch && incoming.seq === shown.seq && incoming.sourceTs > shown.sourceTs
}

/** is `incoming` a newer version than `shown`? Same epoch: seq decides; a new epoch (gateway restart): the data's time decides */
export function isNewer(shown: ShownVersion | undefined, incoming: ShownVersion): boolean {
  if (!shown) return true
  if (incoming.epoch === shown.epoch) return incoming.seq > shown.seq
  if (incoming.sourceTs > shown.sourceTs) return true
  return incoming.epoch > shown.epoch && incoming.sourceTs === shown.sourceTs
}

/**
 * A WebSocket data frame replaces what is shown only when it is fresh (its data is at most
 * `staleAfterMs` old, on the server's clock) and newer than what is shown; a fresh frame of the very
 * version shown only renews its age.
 */
export function judgeFrame(shown: ShownVersion | undefined, incoming: ShownVersion, serverNow: number, staleAfterMs: number): FrameVerdict {
  if (serverNow - incoming.sourceTs > staleAfterMs) return 'too_old'
  if (isNewer(shown, incoming)) return 'accept'
  return isSameVersionFresher(shown, incoming) ? 'refresh' : 'not_newer'
}

/**
 * Full-jitter exponential backoff: uniform in [0, min(cap, base·2^attempt)].
 * `attempt` counts failures since the last good connection, from 0.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random, baseMs = 500, capMs = 30_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(attempt, 30)))
  return Math.floor(random() * ceiling)
}

/** 4500–4999: the server says do not reconnect (bad request, invalid token, auth timeout, forbidden) */
export function isTerminalCloseCode(code: number): boolean {
  return code >= 4500 && code <= 4999
}

/** 4001: the token expired — refresh it, then reconnect at once */
export function isTokenExpiredCode(code: number): boolean {
  return code === 4001
}

const TERMINAL_REASONS: Record<number, string> = {
  4500: 'The server rejected a message from this page. Please sign in again.',
  4501: 'Your session is no longer valid. Please sign in again.',
  4502: 'The connection was not authenticated in time. Please sign in again.',
  4503: 'This account may not open the live feed. Please sign in again.',
}

/** a sentence for the login page when the socket was closed for good */
export function terminalReason(code: number, serverReason: string): string {
  const base = TERMINAL_REASONS[code] ?? 'The server ended the live connection. Please sign in again.'
  return serverReason ? `${base} (${serverReason}, code ${code})` : `${base} (code ${code})`
}

/**
 * The HTTP fallback's period: the configured one, but at most half the stale limit. Data read at one poll
 * is at most one gateway poll old; with the next read half a stale window later it never ages past the
 * limit in between, so the fallback alone never makes fresh-enough data look STALE.
 */
export function fallbackPollMs(configuredMs: number, staleAfterMs: number, minMs = 2_000): number {
  return Math.max(minMs, Math.min(configuredMs, Math.floor(staleAfterMs / 2)))
}

/** seconds shown in "next in N s": never more than the period, never negative */
export function pollCountdownSeconds(nextPollAt: number, now: number, periodMs: number): number {
  return Math.max(0, Math.min(Math.floor(periodMs / 1000), Math.ceil((nextPollAt - now) / 1000)))
}
