/**
 * Inbound frame parsing for /ws: JSON text → a validated ClientMessage, or a typed rejection carrying the
 * request_id when one could be read. Pure; the hub decides what a rejection costs (error frame or close).
 */
import { Compile } from 'typebox/compile'
import { CHANNELS, CHANNEL_BITS } from '../schemas/channels.ts'
import {
  AuthMessageSchema,
  PingMessageSchema,
  RefreshDataMessageSchema,
  SubscribeMessageSchema,
  type Channel,
  type ClientMessage,
} from '../schemas/ws-protocol.ts'

const validators = {
  auth: Compile(AuthMessageSchema),
  refresh_data: Compile(RefreshDataMessageSchema),
  subscribe: Compile(SubscribeMessageSchema),
  unsubscribe: Compile(SubscribeMessageSchema),
  ping: Compile(PingMessageSchema),
} as const

export type RejectCode = 'bad_json' | 'unknown_type' | 'invalid_message' | 'binary_not_supported'

export type Parsed = { ok: true; msg: ClientMessage } | { ok: false; code: RejectCode; message: string; request_id?: string }

const MAX_REQUEST_ID = 128

export function parseClientFrame(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): Parsed {
  if (isBinary) return { ok: false, code: 'binary_not_supported', message: 'binary frames are not supported; send JSON text' }
  const text = Array.isArray(data)
    ? Buffer.concat(data).toString('utf8')
    : Buffer.isBuffer(data)
      ? data.toString('utf8')
      : Buffer.from(data).toString('utf8')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, code: 'bad_json', message: 'message is not valid JSON' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'invalid_message', message: 'message must be a JSON object' }
  }
  const obj = value as Record<string, unknown>
  const rid = obj.request_id
  const request_id = typeof rid === 'string' && rid.length > 0 && rid.length <= MAX_REQUEST_ID ? rid : undefined
  const type = obj.type
  if (typeof type !== 'string') return withId({ ok: false, code: 'invalid_message', message: 'missing "type"' }, request_id)
  const v = Object.hasOwn(validators, type) ? validators[type as keyof typeof validators] : undefined
  if (!v) return withId({ ok: false, code: 'unknown_type', message: `unknown message type "${type.slice(0, 32)}"` }, request_id)
  if (!v.Check(value)) {
    const first = v.Errors(value)[0]
    const where = first ? `${first.instancePath || '/'}: ${first.message}` : 'invalid'
    return withId({ ok: false, code: 'invalid_message', message: `invalid ${type} message (${where.slice(0, 160)})` }, request_id)
  }
  return { ok: true, msg: value }
}

function withId(p: Extract<Parsed, { ok: false }>, request_id: string | undefined): Parsed {
  if (request_id !== undefined) p.request_id = request_id
  return p
}

export { ALL_CHANNELS, CHANNEL_BITS } from '../schemas/channels.ts'

export function channelBits(channels: readonly Channel[]): number {
  let bits = 0
  for (const c of channels) bits |= CHANNEL_BITS[c]
  return bits
}

export function channelList(bits: number): Channel[] {
  return CHANNELS.filter((c) => bits & CHANNEL_BITS[c])
}
