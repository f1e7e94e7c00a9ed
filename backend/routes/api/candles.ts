/**
 * GET /api/candles?range=1m|5m|15m|1h|4h|1d&from=…&to=… — the exchange's price candles for the dashboard's chart.
 * Public market data, so one gateway-wide cache (CandleStore) serves every user: one upstream call per
 * (range, block of 500 candles), the newest block refreshed after CANDLES_CACHE_MS. Times are epoch ms (UTC);
 * `from`/`to` accept ISO 8601 or epoch ms. When the exchange fails the last copy is served with `stale: true`
 * and its age; with nothing cached the answer is 503 `upstream_unavailable`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import { httpError } from '../../errors.ts'
import {
  CANDLE_RANGES,
  CandlesBusyError,
  CandleStore,
  DEFAULT_CANDLES,
  MAX_CANDLES,
  type CandleRange,
} from '../../exchange/candle-store.ts'
import { ErrorResponse, commonErrors } from '../../schemas/http.ts'

const DATE = 'ISO 8601 date or epoch milliseconds'
const Query = Type.Object(
  {
    range: Type.Union(
      Object.keys(CANDLE_RANGES).map((k) => Type.Literal(k)),
      { description: 'candle length' },
    ),
    from: Type.Optional(
      Type.String({ minLength: 1, maxLength: 40, description: `${DATE}; default: a range-dependent window before \`to\`` }),
    ),
    to: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: `${DATE}; default: now` })),
  },
  { additionalProperties: false },
)

const Candle = Type.Object({
  time: Type.Number({ description: 'open time, epoch ms (UTC)' }),
  open: Type.Number(),
  high: Type.Number(),
  low: Type.Number(),
  close: Type.Number(),
  volume: Type.Number(),
})

const CandlesResponse = Type.Object({
  range: Type.String(),
  from: Type.Number({ description: 'epoch ms' }),
  to: Type.Number({ description: 'epoch ms' }),
  /** ascending; a missing bucket is a gap (no trade, or the exchange had no data) */
  candles: Type.Array(Candle),
  fetchedAt: Type.Number({ description: 'epoch ms of the exchange answer the data comes from (the oldest one used)' }),
  ageMs: Type.Number({ description: 'now − fetchedAt' }),
  stale: Type.Boolean({ description: 'true when the exchange failed and an older cached copy is served' }),
})

/** `value` as epoch ms, or a 400 naming the parameter */
export function parseDate(name: string, value: string): number {
  const ms = /^\d{1,15}$/.test(value)
    ? Number(value)
    : /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)
      ? Date.parse(value)
      : NaN
  if (!Number.isFinite(ms)) throw httpError(400, 'bad_date', `${name}: expected an ${DATE}, got "${value.slice(0, 40)}"`)
  return ms
}

const candlesRoute: FastifyPluginAsyncTypebox = async (app) => {
  const store = new CandleStore(app.exchange.client, {
    liveTtlMs: app.config.CANDLES_CACHE_MS,
    onHit: () => app.metrics.cacheHits.inc({ cache: 'candles_api' }),
    onMiss: () => app.metrics.cacheMisses.inc({ cache: 'candles_api' }),
  })

  app.get(
    '/candles',
    {
      onRequest: app.requireUser,
      config: { rateLimit: { max: 60, timeWindow: 60_000, keyGenerator: (req: FastifyRequest) => `candles:${req.userId || req.ip}` } },
      schema: { querystring: Query, response: { 200: CandlesResponse, 502: ErrorResponse, 503: ErrorResponse, ...commonErrors } },
    },
    async (request, reply) => {
      const range = request.query.range as CandleRange
      const rangeMs = CANDLE_RANGES[range]
      const now = Date.now()
      const to = Math.min(request.query.to === undefined ? now : parseDate('to', request.query.to), now)
      const from =
        request.query.from === undefined
          ? Math.floor(to / rangeMs) * rangeMs - (DEFAULT_CANDLES[range] - 1) * rangeMs
          : parseDate('from', request.query.from)
      if (from > to) throw httpError(400, 'bad_date', 'from must not be after to (and to is capped at now)')
      if ((to - from) / rangeMs > MAX_CANDLES) {
        throw httpError(
          400,
          'too_many_candles',
          `at most ${MAX_CANDLES} candles per request: narrow from/to or pick a longer range (this asks for ${Math.ceil((to - from) / rangeMs)} ${range} candles)`,
        )
      }
      try {
        const answer = await store.get(range, from, to, { deadlineMs: 8_000 })
        reply.header('cache-control', answer.stale ? 'no-store' : 'private, max-age=5')
        return { ...answer, ageMs: Math.max(0, Date.now() - answer.fetchedAt) }
      } catch (err) {
        if (err instanceof CandlesBusyError)
          throw httpError(503, 'candles_busy', 'Many candle requests are waiting for LN Markets; try again in a few seconds', {
            'retry-after': '5',
          })
        const kind = (err as { kind?: string }).kind
        if (kind === 'client_error' || kind === 'bad_response')
          throw httpError(502, 'exchange_error', 'LN Markets gave an unexpected answer to the candles request')
        if (kind)
          throw httpError(
            503,
            'upstream_unavailable',
            'LN Markets did not answer the candles request and no earlier copy is cached; try again shortly',
            { 'retry-after': '10' },
          )
        throw err
      }
    },
  )
}

export default candlesRoute
