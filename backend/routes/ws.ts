/**
 * GET /ws — the WebSocket. Admission (503 before upgrading when over capacity or shutting down) and the
 * optional `Authorization: Bearer` check (401 before upgrading) run as hooks on the upgrade request;
 * everything after the upgrade belongs to the hub.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { errorBody } from '../errors.ts'
import { authFailureReason, type VerifiedToken } from '../streaming/hub.ts'

const kPreAuth = Symbol('lnm.ws.preAuth')
type WithPreAuth = FastifyRequest & { [kPreAuth]?: VerifiedToken }

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
          return reply.status(503).header('retry-after', '5').send(errorBody(refusal, refusal === 'over_capacity' ? 'Too many connections; retry later' : 'Server shutting down; reconnect shortly'))
        }
        const q = request.query as Record<string, unknown> | undefined
        if (q && (q.token !== undefined || q.access_token !== undefined)) {
          return reply.status(400).send(errorBody('token_in_url', 'A token never travels in the URL: send it in the first message or an Authorization header'))
        }
        const h = request.headers.authorization
        if (h === undefined) return
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
          return reply.status(401).header('www-authenticate', 'Bearer error="invalid_token"').send(errorBody(code, reason === 'expired' ? 'Access token expired' : 'Invalid access token'))
        }
      },
    },
    (socket, request) => {
      const pre = (request as WithPreAuth)[kPreAuth]
      app.streaming.hub.accept(socket, pre)
    },
  )
}

export default wsRoute
