/**
 * Test-side client for the simulator. It signs requests with its OWN HMAC code (not the simulator's),
 * so a bug in the simulator's verifier cannot hide behind the same bug in the signer.
 */
import { createHmac } from 'node:crypto'
import { randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { WebSocket } from 'ws'
import type { SimAccountInput, Simulator } from '../../simulator/index.ts'

export function hmacB64(secret: string, message: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(message, 'utf8')).digest('base64')
}

/** v3 prehash: timestamp + lower-case method + pathname + (raw body || raw search with '?') */
export function v3Prehash(ts: string, method: string, pathWithQuery: string, body: string): string {
  const q = pathWithQuery.indexOf('?')
  const pathname = q < 0 ? pathWithQuery : pathWithQuery.slice(0, q)
  const search = q < 0 ? '' : pathWithQuery.slice(q)
  return `${ts}${method.toLowerCase()}${pathname}${body !== '' ? body : search}`
}

export function authHeaders(
  acc: Pick<SimAccountInput, 'key' | 'secret' | 'passphrase'>,
  method: string,
  pathWithQuery: string,
  body = '',
  ts = String(Date.now()),
): Record<string, string> {
  return {
    'lnm-access-key': acc.key,
    'lnm-access-passphrase': acc.passphrase,
    'lnm-access-timestamp': ts,
    'lnm-access-signature': hmacB64(acc.secret, v3Prehash(ts, method, pathWithQuery, body)),
  }
}

export interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json: any
}

/** one HTTP request on a fresh connection, with the exact bytes given (no re-serialisation) */
export function raw(
  port: number,
  opts: { method: string; path: string; headers?: Record<string, string>; body?: string; timeoutMs?: number },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers = { ...opts.headers }
    if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body))
    const req = httpRequest({ host: '127.0.0.1', port, method: opts.method, path: opts.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: any
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
      })
    })
    req.on('error', reject)
    if (opts.timeoutMs) req.setTimeout(opts.timeoutMs, () => req.destroy(new Error('client timeout')))
    if (opts.body !== undefined) req.write(opts.body)
    req.end()
  })
}

/** a signed v3 call: path is relative to /v3 and may carry a query; body is serialised once and sent as signed */
export async function call(
  sim: Simulator,
  acc: SimAccountInput | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<RawResponse> {
  const full = `/v3${path}`
  const text = body === undefined ? '' : JSON.stringify(body)
  const headers: Record<string, string> = { accept: 'application/json' }
  if (text) headers['content-type'] = 'application/json'
  if (acc) Object.assign(headers, authHeaders(acc, method, full, text, String(sim.now())))
  return raw(sim.port, { method, path: full, headers, ...(text !== '' && { body: text }) })
}

export const testAccounts = (): SimAccountInput[] => [
  { username: 'alice', key: 'key-alice', secret: 'c2VjcmV0LWFsaWNl+/=', passphrase: 'pass-alice', balance: 10_000_000 },
  { username: 'bob', key: 'key-bob', secret: 'secret-bob', passphrase: 'pass-bob', balance: 1_000 },
]

/** generous limits so functional tests do not trip the limiter */
export const relaxed = { publicPerSec: 10_000, authPerSec: 10_000 }

export interface Conn {
  ws: WebSocket
  frames: any[]
  rpc(method: string, params?: unknown, id?: string | number): Promise<any>
  next(pred: (f: any) => boolean, ms?: number): Promise<any>
  closed: Promise<{ code: number; reason: string }>
}

/** a raw Stream v1 socket to the simulator: JSON-RPC calls and a frame waiter (closed in teardown) */
export async function connect(sim: Simulator, t: { teardown(fn: () => unknown): void }): Promise<Conn> {
  const ws = new WebSocket(sim.streamUrl)
  const frames: any[] = []
  const waiters: Array<{ pred: (f: any) => boolean; resolve: (f: any) => void }> = []
  ws.on('message', (d) => {
    const f = JSON.parse(d.toString())
    frames.push(f)
    for (const w of [...waiters])
      if (w.pred(f)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(f)
      }
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  )
  ws.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  t.teardown(() => ws.terminate())
  const next = (pred: (f: any) => boolean, ms = 3000) =>
    new Promise<any>((resolve, reject) => {
      const hit = frames.find(pred)
      if (hit) return resolve(hit)
      const timer = setTimeout(() => reject(new Error('timed out waiting for a frame')), ms)
      waiters.push({
        pred,
        resolve: (f) => {
          clearTimeout(timer)
          resolve(f)
        },
      })
    })
  let seq = 0
  const rpc = (method: string, params?: unknown, id: string | number = `r${++seq}`) => {
    ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params !== undefined ? { params } : {}) }))
    return next((f) => f.id === id)
  }
  return { ws, frames, rpc, next, closed }
}

/** connect, authenticate as `acc` (own HMAC code) and subscribe to `topics` */
export async function privateConn(
  sim: Simulator,
  acc: SimAccountInput,
  topics: string[],
  t: { teardown(fn: () => unknown): void },
): Promise<Conn> {
  const c = await connect(sim, t)
  const timestamp = sim.now()
  const nonce = randomBytes(16).toString('hex')
  const auth = await c.rpc('authenticate', {
    key: acc.key,
    passphrase: acc.passphrase,
    timestamp,
    nonce,
    signature: hmacB64(acc.secret, `${timestamp}${nonce}`),
  })
  if (!auth.result?.authenticated) throw new Error(`authenticate failed: ${JSON.stringify(auth.error)}`)
  const sub = await c.rpc('subscribe', { topics })
  if (!sub.result) throw new Error(`subscribe failed: ${JSON.stringify(sub.error)}`)
  return c
}
