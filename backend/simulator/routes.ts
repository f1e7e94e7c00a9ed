/**
 * The REST v3 route table: which routes exist, whether they need auth, which query keys and which
 * body they accept, and what they answer. Transport concerns (raw body, auth, limits, faults) live in
 * http.ts; this file only turns a validated request into a JSON value or a SimError.
 */
import Type, { type Static, type TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import type { Engine, Trade, CreateTradeBody } from './engine.ts'
import type { CrossOrder, CrossOrderBody, CrossPositionView } from './cross.ts'
import { CANDLE_RANGES, type Market } from './market.ts'
import { SimError } from './types.ts'

export interface RouteCtx {
  /** the authenticated API key ('' on public routes) */
  key: string
  query: Map<string, string>
  /** the raw JSON body; a route with a `body` validator reads it through withBody, typed */
  body: unknown
}

export interface Route {
  auth: boolean
  /** accepted query keys; anything else is a 400 */
  query?: readonly string[]
  body?: (v: unknown) => unknown
  run(ctx: RouteCtx): unknown
}

export interface RouteDeps {
  engine: Engine
  market: Market
  now: () => number
}

const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
const UUID_RE = new RegExp(UUID_PATTERN)
const Uuid = Type.String({ pattern: UUID_PATTERN })
const Half = (opts: Record<string, unknown> = {}) => Type.Number({ multipleOf: 0.5, ...opts })
const Side = Type.Union([Type.Literal('buy'), Type.Literal('sell')])

/** a validator that throws a 400 `{code:'badRequest'}` naming the first problem */
function validator<T extends TSchema>(schema: T, extra?: (v: Static<T>) => string | undefined): (v: unknown) => Static<T> {
  const c = Compile(schema)
  return (v) => {
    if (!c.Check(v)) {
      const errors = [...c.Errors(v)].filter((e) => e.keyword !== 'boolean' && e.keyword !== 'const')
      const e = errors[0]
      const msg = !e
        ? 'body is not valid'
        : e.keyword === 'additionalProperties'
          ? `body must NOT have additional properties (${e.params.additionalProperties.join(', ')})`
          : e.keyword === 'required'
            ? `body must have required property ${e.params.requiredProperties.map((p) => `'${p}'`).join(', ')}`
            : `body${e.instancePath} ${e.message}`
      throw new SimError(400, 'badRequest', msg)
    }
    const problem = extra?.(v)
    if (problem) throw new SimError(400, 'badRequest', problem)
    return v
  }
}

/** a route that takes a body: http.ts has checked it with `body`, and `run` gets it typed (checked again, cheaply) */
function withBody<B>(body: (v: unknown) => B, run: (ctx: Omit<RouteCtx, 'body'> & { body: B }) => unknown): Pick<Route, 'body' | 'run'> {
  return { body, run: (ctx) => run({ ...ctx, body: body(ctx.body) }) }
}

const tradeBody = validator(
  Type.Object(
    {
      type: Type.Union([Type.Literal('market'), Type.Literal('limit')]),
      side: Side,
      leverage: Type.Number({ minimum: 1, maximum: 100 }),
      quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 500_000 })),
      margin: Type.Optional(Type.Integer({ minimum: 1 })),
      price: Type.Optional(Half({ exclusiveMinimum: 0 })),
      stoploss: Type.Optional(Half({ minimum: 0 })),
      takeprofit: Type.Optional(Half({ minimum: 0 })),
      clientId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    },
    { additionalProperties: false },
  ),
  (b: CreateTradeBody) => {
    if ((b.quantity === undefined) === (b.margin === undefined)) return 'body must have exactly one of quantity or margin'
    if (b.type === 'limit' && b.price === undefined) return "body must have required property 'price' for a limit order"
    if (b.type === 'market' && b.price !== undefined) return 'body/price is only allowed for a limit order'
    return undefined
  },
)
const idBody = validator(Type.Object({ id: Uuid }, { additionalProperties: false }))
const amountBody = validator(Type.Object({ id: Uuid, amount: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }))
const stoplossBody = validator(
  Type.Object(
    { id: Uuid, value: Type.Number({ minimum: 0 }), mode: Type.Optional(Type.Union([Type.Literal('fixed'), Type.Literal('trailing')])) },
    { additionalProperties: false },
  ),
  (b: { value: number; mode?: string }) => {
    if (b.mode === 'trailing')
      return b.value === 0 || (b.value >= 0.001 && b.value <= 10) ? undefined : 'body/value must be between 0.001 and 10 in trailing mode'
    return (b.value * 2) % 1 === 0 ? undefined : 'body/value must be multiple of 0.5'
  },
)
const crossOrderBody = validator(
  Type.Object(
    {
      type: Type.Union([Type.Literal('market'), Type.Literal('limit')]),
      side: Side,
      quantity: Type.Integer({ minimum: 1, maximum: 500_000 }),
      price: Type.Optional(Half({ exclusiveMinimum: 0 })),
    },
    { additionalProperties: false },
  ),
  (b: CrossOrderBody) => {
    if (b.type === 'limit' && b.price === undefined) return "body must have required property 'price' for a limit order"
    if (b.type === 'market' && b.price !== undefined) return 'body/price is only allowed for a limit order'
    return undefined
  },
)
const crossAmountBody = validator(Type.Object({ amount: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }))
const leverageBody = validator(Type.Object({ leverage: Type.Number({ minimum: 1, maximum: 100 }) }, { additionalProperties: false }))
const takeprofitBody = validator(Type.Object({ id: Uuid, value: Half({ minimum: 0 }) }, { additionalProperties: false }))

// ---------- query helpers ----------

const ISO_RE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/

function isoParam(q: Map<string, string>, name: string): number | undefined {
  const v = q.get(name)
  if (v === undefined) return undefined
  const t = Date.parse(v)
  if (!ISO_RE.test(v) || !Number.isFinite(t)) throw new SimError(400, 'badRequest', `querystring/${name} must match format "date-time"`)
  return t
}

function intParam(q: Map<string, string>, name: string, min: number, max: number, def: number): number {
  const v = q.get(name)
  if (v === undefined) return def
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max)
    throw new SimError(400, 'badRequest', `querystring/${name} must be an integer between ${min} and ${max}`)
  return Number(v)
}

export const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString())

export interface Page<T> {
  data: T[]
  nextCursor: string | null
}

const PAGE_KEYS = ['from', 'to', 'limit', 'cursor'] as const

/**
 * `{data, nextCursor}` over items with a time. 'desc' (newest first): the cursor is an exclusive upper
 * bound. 'asc' (from `from` forward): the cursor is the inclusive start of the next page. Both are ISO.
 */
export function paginate<T>(
  items: T[],
  timeOf: (x: T) => number,
  q: Map<string, string>,
  now: number,
  order: 'asc' | 'desc',
  map: (x: T) => unknown = (x) => x,
): Page<unknown> {
  const from = isoParam(q, 'from') ?? 0
  // no `to` = no upper bound (closedAt of trades closed in one request are spread over consecutive ms)
  const to = isoParam(q, 'to') ?? Math.max(now, Number.MAX_SAFE_INTEGER)
  const cursor = isoParam(q, 'cursor')
  const limit = intParam(q, 'limit', 1, 1000, 1000)
  if (from > to) throw new SimError(400, 'badRequest', 'from must not be after to')
  const hits = items.filter((x) => {
    const t = timeOf(x)
    if (t < from || t > to) return false
    if (cursor === undefined) return true
    return order === 'desc' ? t < cursor : t >= cursor
  })
  hits.sort((a, b) => (order === 'desc' ? timeOf(b) - timeOf(a) : timeOf(a) - timeOf(b)))
  const page = hits.slice(0, limit)
  const more = hits.length > limit
  const nextCursor = !more ? null : order === 'desc' ? iso(timeOf(page[page.length - 1]!)) : iso(timeOf(hits[limit]!))
  return { data: page.map(map), nextCursor }
}

/** v3 wire shape of a trade: camelCase, ISO times, no owner */
export function tradeJson(t: Trade): Record<string, unknown> {
  const { owner: _owner, createdAt, filledAt, closedAt, ...rest } = t
  return { ...rest, createdAt: iso(createdAt), filledAt: iso(filledAt), closedAt: iso(closedAt) }
}

/** v3 wire shape of a cross order: ISO times, no owner */
export function crossOrderJson(o: CrossOrder): Record<string, unknown> {
  const { owner: _owner, createdAt, filledAt, canceledAt, ...rest } = o
  return { ...rest, createdAt: iso(createdAt), filledAt: iso(filledAt), canceledAt: iso(canceledAt) }
}

export function crossPositionJson(p: CrossPositionView): Record<string, unknown> {
  return { ...p, updatedAt: iso(p.updatedAt) }
}

// ---------- the table ----------

export function buildRoutes({ engine, market, now }: RouteDeps): Map<string, Route> {
  const trades = (key: string, pick: (t: Trade) => boolean) =>
    engine
      .account(key)
      .trades.filter(pick)
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((t) => tradeJson(engine.view(t)))
  const history = (field: 'index' | 'lastPrice') => (ctx: RouteCtx) => {
    const from = isoParam(ctx.query, 'from') ?? 0
    const to = isoParam(ctx.query, 'to') ?? now()
    const limit = intParam(ctx.query, 'limit', 1, 1000, 100)
    const out: unknown[] = []
    for (let i = market.samples.length - 1; i >= 0 && out.length < limit; i--) {
      const s = market.samples[i]!
      if (s.time >= from && s.time <= to)
        out.push(field === 'index' ? { index: s.index, time: iso(s.time) } : { lastPrice: s.lastPrice, time: iso(s.time) })
    }
    return out
  }

  const r: Array<[string, Route]> = [
    ['GET /v3/ping', { auth: false, run: () => 'pong' }],
    ['GET /v3/time', { auth: false, run: () => ({ time: iso(now()) }) }],
    ['GET /v3/futures/ticker', { auth: false, run: () => market.ticker() }],
    [
      'GET /v3/futures/candles',
      {
        auth: false,
        query: [...PAGE_KEYS, 'range'],
        run: ({ query }) => {
          if (!query.has('from')) throw new SimError(400, 'badRequest', "querystring must have required property 'from'")
          const range = query.get('range') ?? '1m'
          const rangeMs = CANDLE_RANGES[range]
          if (rangeMs === undefined)
            throw new SimError(400, 'badRequest', `querystring/range must be one of ${Object.keys(CANDLE_RANGES).join(', ')}`)
          const from = isoParam(query, 'from') as number
          const candles = market.aggregate(rangeMs, from, isoParam(query, 'to') ?? now())
          return paginate(
            candles,
            (c) => c.time,
            query,
            now(),
            'asc',
            (c) => ({ ...c, time: iso(c.time) }),
          )
        },
      },
    ],
    [
      'GET /v3/futures/funding-settlements',
      {
        auth: false,
        query: PAGE_KEYS,
        run: ({ query }) =>
          paginate(
            engine.settlements,
            (s) => s.time,
            query,
            now(),
            'desc',
            (s) => ({ ...s, time: iso(s.time) }),
          ),
      },
    ],
    ['GET /v3/oracle/index', { auth: false, query: ['from', 'to', 'limit'], run: history('index') }],
    ['GET /v3/oracle/last-price', { auth: false, query: ['from', 'to', 'limit'], run: history('lastPrice') }],
    [
      'GET /v3/account',
      {
        auth: true,
        run: ({ key }) => {
          const a = engine.account(key)
          return {
            id: a.id,
            username: a.username,
            balance: a.balance,
            syntheticUsdBalance: 0,
            feeTier: 0,
            email: null,
            linkingPublicKey: null,
          }
        },
      },
    ],
    ['GET /v3/futures/isolated/trades/running', { auth: true, run: ({ key }) => trades(key, (t) => t.running) }],
    ['GET /v3/futures/isolated/trades/open', { auth: true, run: ({ key }) => trades(key, (t) => t.open) }],
    [
      'GET /v3/futures/isolated/trades/closed',
      {
        auth: true,
        query: PAGE_KEYS,
        run: ({ key, query }) =>
          paginate(
            engine.account(key).trades.filter((t) => t.closed || t.canceled),
            (t) => t.closedAt as number,
            query,
            now(),
            'desc',
            (t) => tradeJson(t),
          ),
      },
    ],
    [
      'GET /v3/futures/isolated/trades/canceled',
      {
        auth: true,
        query: PAGE_KEYS,
        run: ({ key, query }) =>
          paginate(
            engine.account(key).trades.filter((t) => t.canceled),
            (t) => t.closedAt as number,
            query,
            now(),
            'desc',
            (t) => tradeJson(t),
          ),
      },
    ],
    [
      'GET /v3/futures/isolated/funding-fees',
      {
        auth: true,
        query: [...PAGE_KEYS, 'tradeId'],
        run: ({ key, query }) => {
          const tradeId = query.get('tradeId')
          const mine = engine.fundingFees.filter((f) => f.owner === key && (tradeId === undefined || f.tradeId === tradeId))
          return paginate(
            mine,
            (f) => f.time,
            query,
            now(),
            'desc',
            ({ owner: _o, ...f }) => ({ ...f, time: iso(f.time) }),
          )
        },
      },
    ],
    ['GET /v3/futures/cross/position', { auth: true, run: ({ key }) => crossPositionJson(engine.cross.view(key)) }],
    [
      'GET /v3/futures/cross/orders/open',
      {
        auth: true,
        run: ({ key }) =>
          engine.cross
            .state(key)
            .orders.filter((o) => o.open)
            .sort((a, b) => b.createdAt - a.createdAt)
            .map(crossOrderJson),
      },
    ],
    [
      'GET /v3/futures/cross/orders/filled',
      {
        auth: true,
        query: PAGE_KEYS,
        run: ({ key, query }) =>
          paginate(
            engine.cross.state(key).orders.filter((o) => o.filled),
            (o) => o.filledAt as number,
            query,
            now(),
            'desc',
            (o) => crossOrderJson(o),
          ),
      },
    ],
    [
      'GET /v3/futures/cross/transfers',
      {
        auth: true,
        query: PAGE_KEYS,
        run: ({ key, query }) => {
          const s = engine.cross.state(key)
          return paginate(
            s.transfers,
            (x) => x.time,
            query,
            now(),
            'desc',
            (x) => ({ id: x.id, uid: s.uid, amount: x.amount, time: iso(x.time) }),
          )
        },
      },
    ],
    [
      'GET /v3/futures/cross/funding-fees',
      {
        auth: true,
        query: PAGE_KEYS,
        run: ({ key, query }) =>
          paginate(
            engine.cross.state(key).fundingFeeList,
            (f) => f.time,
            query,
            now(),
            'desc',
            (f) => ({ ...f, time: iso(f.time) }),
          ),
      },
    ],
    [
      'POST /v3/futures/cross/order',
      { auth: true, ...withBody(crossOrderBody, ({ key, body }) => crossOrderJson(engine.cross.order(key, body))) },
    ],
    [
      'POST /v3/futures/cross/order/cancel',
      { auth: true, ...withBody(idBody, ({ key, body }) => crossOrderJson(engine.cross.cancel(key, body.id))) },
    ],
    ['POST /v3/futures/cross/orders/cancel-all', { auth: true, run: ({ key }) => engine.cross.cancelAll(key).map(crossOrderJson) }],
    ['POST /v3/futures/cross/position/close', { auth: true, run: ({ key }) => crossOrderJson(engine.cross.close(key)) }],
    [
      'PUT /v3/futures/cross/leverage',
      { auth: true, ...withBody(leverageBody, ({ key, body }) => crossPositionJson(engine.cross.setLeverage(key, body.leverage))) },
    ],
    [
      'POST /v3/futures/cross/deposit',
      { auth: true, ...withBody(crossAmountBody, ({ key, body }) => crossPositionJson(engine.cross.deposit(key, body.amount))) },
    ],
    [
      'POST /v3/futures/cross/withdraw',
      { auth: true, ...withBody(crossAmountBody, ({ key, body }) => crossPositionJson(engine.cross.withdraw(key, body.amount))) },
    ],
    ['POST /v3/futures/isolated/trade', { auth: true, ...withBody(tradeBody, ({ key, body }) => tradeJson(engine.create(key, body))) }],
    [
      'POST /v3/futures/isolated/trade/close',
      { auth: true, ...withBody(idBody, ({ key, body }) => tradeJson(engine.close(key, body.id))) },
    ],
    [
      'POST /v3/futures/isolated/trade/cancel',
      { auth: true, ...withBody(idBody, ({ key, body }) => tradeJson(engine.cancel(key, body.id))) },
    ],
    ['POST /v3/futures/isolated/trades/cancel-all', { auth: true, run: ({ key }) => engine.cancelAll(key).map(tradeJson) }],
    [
      'POST /v3/futures/isolated/trade/add-margin',
      { auth: true, ...withBody(amountBody, ({ key, body }) => tradeJson(engine.addMargin(key, body.id, body.amount))) },
    ],
    [
      'POST /v3/futures/isolated/trade/cash-in',
      { auth: true, ...withBody(amountBody, ({ key, body }) => tradeJson(engine.cashIn(key, body.id, body.amount))) },
    ],
    [
      'PUT /v3/futures/isolated/trade/stoploss',
      { auth: true, ...withBody(stoplossBody, ({ key, body }) => tradeJson(engine.setStoploss(key, body.id, body.value, body.mode))) },
    ],
    [
      'PUT /v3/futures/isolated/trade/takeprofit',
      { auth: true, ...withBody(takeprofitBody, ({ key, body }) => tradeJson(engine.setTakeprofit(key, body.id, body.value))) },
    ],
    [
      'DELETE /v3/futures/isolated/trade/stoploss',
      { auth: true, query: ['id'], run: ({ key, query }) => tradeJson(engine.setStoploss(key, queryId(query), 0)) },
    ],
    [
      'DELETE /v3/futures/isolated/trade/takeprofit',
      { auth: true, query: ['id'], run: ({ key, query }) => tradeJson(engine.setTakeprofit(key, queryId(query), 0)) },
    ],
  ]
  return new Map(r)
}

function queryId(q: Map<string, string>): string {
  const id = q.get('id')
  if (id === undefined) throw new SimError(400, 'badRequest', "querystring must have required property 'id'")
  if (!UUID_RE.test(id)) throw new SimError(400, 'badRequest', 'querystring/id must match format "uuid"')
  return id
}
