/**
 * GET /ws — the WebSocket. Admission (503 before upgrading when over capacity or shutting down; Origin, upgrades
 * per address and unauthenticated sockets: streaming/upgrade-gate.ts) and the optional `Authorization: Bearer`
 * check (401 before upgrading) run as hooks on the upgrade request;
 * everything after the upgrade belongs to the hub.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { errorBody } from '../errors.ts'
import { authFailureReason, type VerifiedToken } from '../streaming/hub.ts'

const kPreAuth = Symbol('lnm.ws.preAuth')
type WithPreAuth = FastifyRequest & { [kPreAuth]?: VerifiedToken }
const TOKEN_PARAM = /^(access_?)?token$/i

const wsRoute: FastifyPluginAsync = async (app) => {
  app.get(
    '/ws',
    {
      websocket: true,
      config: { rateLimit: false },
      preValidation: async (request, reply) => {
        const refusal = app.streaming.hub.refusal()
        if (refusal) {
          app.metrics.connectionsRefused.inc({ reason: `${refusal}_http` })
          return reply
            .status(503)
            .header('retry-after', '5')
            .send(
              errorBody(
                refusal,
                refusal === 'over_capacity' ? 'Too many connections; retry later' : 'Server shutting down; reconnect shortly',
              ),
            )
        }
        const q = request.query as Record<string, unknown> | undefined
        // any case: `?Token=` is as much a token in a URL (and in every proxy's access log) as `?token=`
        if (q && Object.keys(q).some((k) => TOKEN_PARAM.test(k))) {
          return reply
            .status(400)
            .send(errorBody('token_in_url', 'A token never travels in the URL: send it in the first message or an Authorization header'))
        }
        const { gate } = app.streaming
        if (!gate.originAllowed(request.headers.origin, request.host)) {
          app.metrics.connectionsRefused.inc({ reason: 'origin_forbidden' })
          return reply.status(403).send(errorBody('origin_forbidden', 'This origin may not open a WebSocket to the gateway'))
        }
        const wait = gate.rateLimited(request.ip)
        if (wait > 0) {
          app.metrics.connectionsRefused.inc({ reason: 'rate_limited' })
          return reply
            .status(429)
            .header('retry-after', String(wait))
            .send(errorBody('rate_limited', `Too many WebSocket upgrades from this address; retry in ${wait} s`))
        }
        const h = request.headers.authorization
        if (h === undefined) {
          // authenticates by its first message: one of the few sockets allowed to wait for it
          const unauth = gate.unauthRefusal(request.ip)
          if (unauth) {
            app.metrics.connectionsRefused.inc({ reason: unauth })
            return unauth === 'unauth_per_address'
              ? reply
                  .status(429)
                  .header('retry-after', '5')
                  .send(
                    errorBody(
                      'too_many_pending',
                      'Too many unauthenticated WebSockets from this address; authenticate the open ones or retry shortly',
                    ),
                  )
              : reply
                  .status(503)
                  .header('retry-after', '5')
                  .send(errorBody('over_capacity', 'Too many unauthenticated WebSockets; retry shortly'))
          }
          return
        }
        const m = /^Bearer ([^\s]+)$/i.exec(h)
        if (!m) {
          app.metrics.authFailures.inc({ reason: 'ws_invalid' })
          return reply.status(401).header('www-authenticate', 'Bearer').send(errorBody('invalid_token', 'Malformed Authorization header'))
        }
        try {
          ;(request as WithPreAuth)[kPreAuth] = await app.authn.verifyAccessToken(m[1]!)
        } catch (err) {
          const reason = authFailureReason(err)
          if (reason === null) throw err
          app.metrics.authFailures.inc({ reason: `ws_${reason}` })
          const code = reason === 'expired' ? 'token_expired' : 'invalid_token'
          return reply
            .status(401)
            .header('www-authenticate', 'Bearer error="invalid_token"')
            .send(errorBody(code, reason === 'expired' ? 'Access token expired' : 'Invalid access token'))
        }
      },
    },
    (socket, request) => {
      const pre = (request as WithPreAuth)[kPreAuth]
      // counted before accept(): a socket that authenticates synchronously there is released at once
      if (!pre) app.streaming.gate.track(socket, request.ip)
      app.streaming.hub.accept(socket, pre)
    },
  )
}

export default wsRoute
