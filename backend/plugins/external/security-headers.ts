/**
 * Helmet's security headers, computed once. @fastify/helmet calls `helmet(options)` on every request,
 * which parses the CSP directives and builds every header string again (≈ 8 % of the CPU of a request
 * to /api/dashboard). The headers depend only on the options (no nonces, no per-request directive), so
 * they are built once here by helmet itself and set on each reply from that object.
 */
import { createRequire } from 'node:module'
import fp from 'fastify-plugin'

type HelmetOptions = Record<string, unknown>
type Middleware = (req: object, res: object, next: (err?: unknown) => void) => void

/** helmet, as installed with @fastify/helmet (which depends on it) */
const helmet = createRequire(import.meta.resolve('@fastify/helmet'))('helmet') as (o: HelmetOptions) => Middleware

/** the headers helmet sets for these options, lower-cased names */
export function securityHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const res = {
    setHeader(name: string, value: unknown) {
      headers[name.toLowerCase()] = String(value)
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()]
    },
    getHeader(name: string) {
      return headers[name.toLowerCase()]
    },
  }
  helmet(options)({ headers: {}, method: 'GET', url: '/' }, res, (err) => {
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- helmet passes its own Error (typed unknown) to next
    if (err) throw err
  })
  return headers
}

/** sets the precomputed headers on every reply (as the global @fastify/helmet hook did) */
export default fp<{ helmet: HelmetOptions }>(
  async function securityHeadersPlugin(app, opts) {
    const headers = securityHeaders(opts.helmet)
    app.addHook('onRequest', (_request, reply, done) => {
      reply.headers(headers)
      done()
    })
  },
  { name: 'security-headers', fastify: '5.x' },
)
