/**
 * GET /api/history?kind=closed|cross-filled|funding&cursor=…&limit=… — the account history further back
 * than the `history` channel's latest 50, through the exchange's cursors. Per user (bearer), cached and
 * coalesced for 30 s (HistoryPages), at most 30 requests a minute per user, and each exchange call goes
 * through the client's per-key throttle, so paging can never push the account's polling over LN Markets'
 * rate limit.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import { httpError } from '../../errors.ts'
import { BadCursorError, HISTORY_KINDS, HistoryPages } from '../../exchange/history-pages.ts'
import { ErrorResponse, commonErrors } from '../../schemas/http.ts'

const Query = Type.Object(
  {
    kind: Type.Union(HISTORY_KINDS.map((k) => Type.Literal(k))),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    limit: Type.Optional(Type.String({ pattern: '^(100|[1-9][0-9]?)$', description: 'items per page, 1–100 (default 50)' })),
  },
  { additionalProperties: false },
)

const HistoryPageResponse = Type.Object({
  kind: Type.String(),
  /** closed: FuturesTrade[]; cross-filled: CrossOrder[]; funding: (FundingFee & {scope})[] — newest first */
  data: Type.Array(Type.Unknown()),
  /** pass back as `cursor` for the next (older) page; null: nothing older */
  nextCursor: Type.Union([Type.String(), Type.Null()]),
})

const historyRoute: FastifyPluginAsyncTypebox = async (app) => {
  const pages = new HistoryPages(app.exchange.client)
  const forget = ({ userId }: { userId: string }) => pages.forget(userId)
  app.vault.events.on('changed', forget)
  app.vault.events.on('deleted', forget)
  app.addHook('onClose', async () => {
    app.vault.events.off('changed', forget)
    app.vault.events.off('deleted', forget)
  })

  app.get(
    '/history',
    {
      onRequest: app.requireUser,
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the limiter's key can be computed before requireUser has set userId
      config: { rateLimit: { max: 30, timeWindow: 60_000, keyGenerator: (req: FastifyRequest) => `history:${req.userId ?? req.ip}` } },
      schema: {
        querystring: Query,
        response: { 200: HistoryPageResponse, 404: ErrorResponse, 502: ErrorResponse, 503: ErrorResponse, ...commonErrors },
      },
    },
    async (request, reply) => {
      const { kind, cursor } = request.query
      const limit = request.query.limit === undefined ? 50 : Number(request.query.limit)
      const creds = await app.vault.get(request.userId)
      if (!creds) throw httpError(404, 'no_credentials', 'No LN Markets credentials are stored (PUT /api/credentials)')
      try {
        const page = await pages.get(request.userId, creds, kind, cursor, limit, { deadlineMs: 10_000 })
        reply.header('cache-control', 'private, max-age=30').header('vary', 'authorization')
        return page
      } catch (err) {
        if (err instanceof BadCursorError) throw httpError(400, 'bad_cursor', `cursor: ${err.message}`)
        const kindOf = (err as { kind?: string }).kind
        if (kindOf === 'credentials_rejected') throw httpError(502, 'credentials_rejected', 'LN Markets rejected the stored credentials')
        if (kindOf === 'rate_limited')
          throw httpError(503, 'exchange_rate_limited', 'LN Markets is rate-limiting this account; try again shortly', {
            'retry-after': String(Math.ceil(((err as { retryAfterMs?: number }).retryAfterMs ?? 10_000) / 1000)),
          })
        if (kindOf === 'timeout' || kindOf === 'unavailable' || kindOf === 'circuit_open')
          throw httpError(503, 'exchange_unavailable', 'LN Markets did not answer; try again shortly', { 'retry-after': '10' })
        if (kindOf === 'client_error' && cursor !== undefined) throw httpError(400, 'bad_cursor', 'LN Markets refused this cursor')
        if (kindOf) throw httpError(502, 'exchange_error', 'LN Markets gave an unexpected answer')
        throw err
      }
    },
  )
}

export default historyRoute
