/**
 * The REST transport on node:http, because a faithful exchange needs the raw query string and raw body
 * bytes (signatures are over what was received, never a re-serialisation) and direct socket control for
 * faults. Order per request: admin routes (no faults) → faults (outage, latency, timeout, 5xx, 429 storm)
 * → route lookup → body/content-type rules → rate limit → auth → validation → handler → response faults
 * (drop, truncate, malformed).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { headerValue as one, verifyRest } from './auth.ts'
import type { TokenBuckets } from './rate-limit.ts'
import type { Rng } from './rng.ts'
import type { Route } from './routes.ts'
import { SimError, type Faults, type SimAccountInput } from './types.ts'

export const MAX_BODY_BYTES = 64 * 1024

export interface LogEntry {
  ts: number
  method: string
  path: string
  key?: string
  status: number
}

export interface HttpDeps {
  routes: Map<string, Route>
  accounts: Map<string, SimAccountInput>
  now: () => number
  faults: () => Faults
  rng: Rng
  publicLimiter: TokenBuckets
  authLimiter: TokenBuckets
  record: (e: LogEntry) => void
  /** requests held open by the timeout fault (ended on close) */
  held: Set<ServerResponse>
  admin?: (method: string, pathname: string, body: unknown) => unknown
  log?: boolean
}

interface Reply {
  status: number
  body: unknown
  headers?: Record<string, string | number>
  raw?: { type: string; text: string }
}

const errorReply = (status: number, code: string, message: string, headers?: Reply['headers']): Reply => ({
  status,
  body: { code, message },
  ...(headers !== undefined && { headers }),
})

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY_BYTES) {
        reject(new SimError(413, 'payloadTooLarge', 'Request body is too large'))
        req.resume()
        return
      }
      chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function parseQuery(search: string, allowed: readonly string[]): Map<string, string> {
  const q = new Map<string, string>()
  if (search.length <= 1) return q
  let params: URLSearchParams
  try {
    params = new URLSearchParams(search)
  } catch {
    throw new SimError(400, 'badRequest', 'querystring is not valid')
  }
  for (const [k, v] of params) {
    if (!allowed.includes(k)) throw new SimError(400, 'badRequest', `querystring must NOT have additional properties (${k})`)
    if (q.has(k)) throw new SimError(400, 'badRequest', `querystring/${k} must not be repeated`)
    q.set(k, v)
  }
  return q
}

export function createHttpHandler(d: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const handleRoute = (req: IncomingMessage, method: string, pathname: string, search: string, raw: string): Reply => {
    const route = d.routes.get(`${method} ${pathname}`)
    if (!route) return errorReply(404, 'notFound', `Route ${method}:${pathname} not found`)
    const contentType = (one(req.headers['content-type']) ?? '').split(';', 1)[0]!.trim().toLowerCase()
    if (raw.length > 0 && (method === 'GET' || method === 'DELETE'))
      return errorReply(400, 'badRequest', `${method} requests must not have a body`)
    if (raw.length === 0 && contentType === 'application/json')
      return errorReply(400, 'badRequest', "Body cannot be empty when content-type is set to 'application/json'")
    if (raw.length > 0 && contentType !== 'application/json')
      return errorReply(415, 'unsupportedMediaType', `Unsupported Media Type: ${contentType || 'none'}`)

    const keyHeader = one(req.headers['lnm-access-key'])
    const limited =
      route.auth && keyHeader !== undefined && d.accounts.has(keyHeader)
        ? d.authLimiter.take(`key:${keyHeader}`)
        : d.publicLimiter.take(`ip:${req.socket.remoteAddress ?? '?'}`)
    const rlHeaders = { 'X-Ratelimit-Remaining': limited.remaining, 'X-Ratelimit-Reset': limited.resetAt }
    if (!limited.ok) return errorReply(429, 'rateLimited', 'Too Many Requests', { ...rlHeaders, 'Retry-After': limited.retryAfterS })

    try {
      const account = route.auth
        ? verifyRest({ headers: req.headers, method, pathname, search, rawBody: raw }, d.accounts, d.now())
        : undefined
      const query = parseQuery(search, route.query ?? [])
      let body: unknown
      if (route.body) {
        if (raw.length === 0) throw new SimError(400, 'badRequest', 'body must be object')
        try {
          body = JSON.parse(raw)
        } catch {
          throw new SimError(400, 'badRequest', 'Body is not valid JSON')
        }
        route.body(body)
      } else if (raw.length > 0) {
        throw new SimError(400, 'badRequest', 'This route takes no body')
      }
      return { status: 200, body: route.run({ key: account?.key ?? '', query, body }), headers: rlHeaders }
    } catch (e) {
      if (e instanceof SimError) return errorReply(e.status, e.code, e.message, rlHeaders)
      if (d.log) console.error('[simulator] handler failed', e)
      return errorReply(500, 'internalServerError', 'Internal Server Error', rlHeaders)
    }
  }

  const deliver = (res: ServerResponse, r: Reply, faults: Faults | undefined): void => {
    const type = r.raw?.type ?? 'application/json; charset=utf-8'
    let text = r.raw?.text ?? JSON.stringify(r.body)
    const headers: Record<string, string | number> = { 'content-type': type, ...r.headers }
    if (faults && d.rng.next() < faults.dropRate) {
      // the request was processed; the answer dies on the wire
      res.writeHead(r.status, { ...headers, 'content-length': Buffer.byteLength(text) })
      res.write(text.slice(0, Math.floor(text.length / 2)))
      setImmediate(() => res.socket?.destroy())
      return
    }
    if (faults && d.rng.next() < faults.truncatedRate) {
      res.writeHead(r.status, { ...headers, 'content-length': Buffer.byteLength(text) })
      res.write(text.slice(0, Math.floor(text.length / 2)), () => res.socket?.end())
      return
    }
    if (faults && d.rng.next() < faults.malformedRate)
      text = `${text.slice(0, Math.max(1, Math.floor(text.length / 2)))}\u0000<!-- garbage -->{`
    res.writeHead(r.status, { ...headers, 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }

  return (req, res) => {
    const ts = Date.now()
    const method = (req.method ?? 'GET').toUpperCase()
    const url = req.url ?? '/'
    const qi = url.indexOf('?')
    const pathname = qi < 0 ? url : url.slice(0, qi)
    const search = qi < 0 ? '' : url.slice(qi)
    const key = one(req.headers['lnm-access-key'])
    const record = (status: number) => d.record({ ts, method, path: pathname, ...(key !== undefined ? { key } : {}), status })

    void (async () => {
      let raw: string
      try {
        raw = await readBody(req)
      } catch (e) {
        const err = e instanceof SimError ? e : new SimError(400, 'badRequest', 'could not read body')
        record(err.status)
        return deliver(res, errorReply(err.status, err.code, err.message, { connection: 'close' }), undefined)
      }

      if (d.admin && pathname.startsWith('/__sim/')) {
        try {
          let body: unknown
          if (raw.length > 0) {
            try {
              body = JSON.parse(raw)
            } catch {
              throw new SimError(400, 'badRequest', 'Body is not valid JSON')
            }
          }
          return deliver(res, { status: 200, body: d.admin(method, pathname, body) ?? { ok: true } }, undefined)
        } catch (e) {
          const err = e instanceof SimError ? e : new SimError(500, 'internalServerError', (e as Error).message)
          return deliver(res, errorReply(err.status, err.code, err.message), undefined)
        }
      }

      const f = d.faults()
      if (f.outage) {
        record(503)
        return deliver(res, errorReply(503, 'serviceUnavailable', 'Service Unavailable'), undefined)
      }
      if (f.latencyMs > 0) await sleep(f.latencyMs)
      if (res.destroyed) return record(0)
      if (d.rng.next() < f.timeoutRate) {
        d.held.add(res)
        res.on('close', () => d.held.delete(res))
        return record(0)
      }
      if (d.rng.next() < f.errorRate) {
        record(f.errorStatus)
        const proxy = f.errorStatus === 502 || f.errorStatus === 504
        const reason = { 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' }[
          f.errorStatus
        ]
        // gateways in front of the exchange answer HTML, not JSON
        return deliver(
          res,
          proxy
            ? {
                status: f.errorStatus,
                body: null,
                raw: {
                  type: 'text/html',
                  text: `<html><head><title>${f.errorStatus} ${reason}</title></head><body><center><h1>${f.errorStatus} ${reason}</h1></center></body></html>`,
                },
              }
            : errorReply(f.errorStatus, f.errorStatus === 500 ? 'internalServerError' : 'serviceUnavailable', reason),
          undefined,
        )
      }
      if (f.rateLimitStorm) {
        record(429)
        return deliver(
          res,
          errorReply(429, 'rateLimited', 'Too Many Requests', {
            'Retry-After': 1,
            'X-Ratelimit-Remaining': 0,
            'X-Ratelimit-Reset': Date.now() + 1000,
          }),
          undefined,
        )
      }
      const reply = handleRoute(req, method, pathname, search, raw)
      record(reply.status)
      deliver(res, reply, f)
    })()
  }
}
