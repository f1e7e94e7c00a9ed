/**
 * The one definition of "how old is this channel's data": now on the server's clock minus the data's
 * sourceTs. Every panel's "updated N s ago" and every banner's "last data N s ago" come from here, so two
 * places on the page can never disagree about the same channel.
 */
import type { Channel } from '../../../backend/schemas/ws-protocol.ts'

export function channelAgeMs(sourceTs: number | undefined, clientNow: number, serverOffsetMs: number): number | null {
  if (sourceTs === undefined) return null
  return Math.max(0, clientNow + serverOffsetMs - sourceTs)
}

/** the channels an upstream status scope covers */
export const SCOPE_CHANNELS: Record<string, readonly Channel[]> = {
  account: ['account', 'positions'],
  ticker: ['ticker'],
  all: ['account', 'positions', 'ticker'],
}

/** how each channel is named to the trader */
export const CHANNEL_NAME: Record<string, string> = {
  account: 'balance',
  positions: 'positions',
  ticker: 'prices',
  cross: 'cross position',
  history: 'history',
}

/** "positions", "positions and prices", "balance, positions and prices" */
export function joinNames(names: readonly string[]): string {
  if (names.length <= 1) return names[0] ?? ''
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`
}
