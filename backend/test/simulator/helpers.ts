/**
 * Test-side client for the simulator. It signs requests with its OWN HMAC code (not the simulator's),
 * so a bug in the simulator's verifier cannot hide behind the same bug in the signer.
 */
import { createHmac } from 'node:crypto'
import { request as httpRequest } from 'node:http'
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

export function authHeaders(acc: Pick<SimAccountInput, 'key' | 'secret' | 'passphrase'>, method: string, pathWithQuery: string, body = '', ts = String(Date.now())): Record<string, string> {
  return {
    'lnm-access-key': acc.key,
    'lnm-access-passphrase': acc.passphrase,
    'lnm-access-timestamp': ts,
    'lnm-access-signature': hmacB64(acc.secret, v3Prehash(ts, method, pathWithQuery, body)),
  }
}

export interface RawResponse { status: number; headers: Record<string, string | string[] | undefined>; text: string; json: any }

/** one HTTP request on a fresh connection, with the exact bytes given (no re-serialisation) */
export function raw(port: number, opts: { method: string; path: string; headers?: Record<string, string>; body?: string; timeoutMs?: number }): Promise<RawResponse> {
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
        try { json = JSON.parse(text) } catch { json = undefined }
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
export async function call(sim: Simulator, acc: SimAccountInput | undefined, method: string, path: string, body?: unknown): Promise<RawResponse> {
  const full = `/v3${path}`
  const text = body === undefined ? '' : JSON.stringify(body)
  const headers: Record<string, string> = { accept: 'application/json' }
  if (text) headers['content-type'] = 'application/json'
  if (acc) Object.assign(headers, authHeaders(acc, method, full, text, String(sim.now())))
  return raw(sim.port, { method, path: full, headers, body: text || undefined })
}

export const testAccounts = (): SimAccountInput[] => [
  { username: 'alice', key: 'key-alice', secret: 'c2VjcmV0LWFsaWNl+/=', passphrase: 'pass-alice', balance: 10_000_000 },
  { username: 'bob', key: 'key-bob', secret: 'secret-bob', passphrase: 'pass-bob', balance: 1_000 },
]

/** generous limits so functional tests do not trip the limiter */
export const relaxed = { publicPerSec: 10_000, authPerSec: 10_000 }
