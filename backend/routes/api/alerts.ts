/**
 * GET/PUT/DELETE /api/alerts — the trader's alert settings, stored per user so they follow the trader to another
 * device. GET answers the defaults (version 0) while nothing is saved. PUT replaces everything and names the
 * version it was read at: a stale version (another device saved meanwhile) is refused with 409, never silently
 * overwritten.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import type { Prisma } from '../../generated/prisma/client.ts'
import { httpError } from '../../errors.ts'
import { AlertSettingsBody, AlertSettingsResponse, ErrorResponse, Ok, commonErrors, type AlertSettingsT } from '../../schemas/http.ts'

type Stored = Omit<AlertSettingsT, 'version' | 'updatedAt'>

export const DEFAULT_ALERT_SETTINGS: Stored = {
  liquidationPct: 10,
  notify: { connectionLoss: true, exchangeDown: true, fills: true, closes: true, liquidations: true },
  browserNotifications: false,
  priceLevels: [],
}

/** the stored JSON over the defaults: a row written by an older version lacks the fields added since */
function fromRow(row: { settings: unknown; version: number; updatedAt: Date } | null): AlertSettingsT {
  if (!row) return { ...structuredClone(DEFAULT_ALERT_SETTINGS), version: 0, updatedAt: null }
  const s = (row.settings ?? {}) as Partial<Stored>
  return {
    liquidationPct: typeof s.liquidationPct === 'number' ? s.liquidationPct : DEFAULT_ALERT_SETTINGS.liquidationPct,
    notify: { ...DEFAULT_ALERT_SETTINGS.notify, ...(s.notify ?? {}) },
    browserNotifications:
      typeof s.browserNotifications === 'boolean' ? s.browserNotifications : DEFAULT_ALERT_SETTINGS.browserNotifications,
    priceLevels: Array.isArray(s.priceLevels) ? s.priceLevels : [],
    version: row.version,
    updatedAt: row.updatedAt.toISOString(),
  }
}

const conflict = () =>
  httpError(
    409,
    'version_conflict',
    'These alert settings were changed elsewhere (another tab or device) since they were loaded; reload them and apply the change again',
  )

/** 60 writes a minute per user (a page saves on each change the trader makes, and when a price level triggers) */
const writeLimit = { max: 60, timeWindow: 60_000, keyGenerator: (req: FastifyRequest) => `alerts:${req.userId || req.ip}` }

const alertsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', app.requireUser)

  app.get('/alerts', { schema: { response: { 200: AlertSettingsResponse, ...commonErrors } } }, async (request) => {
    return fromRow(await app.prisma.alertSettings.findUnique({ where: { userId: request.userId } }))
  })

  app.put(
    '/alerts',
    {
      config: { rateLimit: writeLimit },
      schema: { body: AlertSettingsBody, response: { 200: AlertSettingsResponse, 409: ErrorResponse, ...commonErrors } },
    },
    async (request) => {
      const { version, ...body } = request.body
      const ids = new Set<string>()
      for (const [i, level] of body.priceLevels.entries()) {
        if (ids.has(level.id))
          throw httpError(
            400,
            'validation_failed',
            `Price level ${i + 1} has the same id as an earlier one; each price level needs its own id.`,
          )
        ids.add(level.id)
      }
      const settings: Stored = {
        liquidationPct: body.liquidationPct,
        notify: body.notify,
        browserNotifications: body.browserNotifications,
        priceLevels: body.priceLevels.map((l) => ({
          id: l.id,
          price: l.price,
          direction: l.direction,
          ...(l.note ? { note: l.note } : {}),
          triggeredAt: l.triggeredAt ?? null,
        })),
      }
      const json = settings as unknown as Prisma.InputJsonObject
      if (version === 0) {
        try {
          const row = await app.prisma.alertSettings.create({ data: { userId: request.userId, settings: json, version: 1 } })
          return fromRow(row)
        } catch (err) {
          // a row exists: another device saved first
          if ((err as { code?: string }).code === 'P2002') throw conflict()
          throw err
        }
      }
      // compare-and-set on the version, in one statement: two devices saving at once cannot both win
      const updated = await app.prisma.alertSettings.updateMany({
        where: { userId: request.userId, version },
        data: { settings: json, version: { increment: 1 } },
      })
      if (updated.count === 0) throw conflict()
      return fromRow(await app.prisma.alertSettings.findUnique({ where: { userId: request.userId } }))
    },
  )

  /** back to the defaults */
  app.delete('/alerts', { config: { rateLimit: writeLimit }, schema: { response: { 200: Ok, ...commonErrors } } }, async (request) => {
    await app.prisma.alertSettings.deleteMany({ where: { userId: request.userId } })
    return { ok: true as const }
  })
}

export default alertsRoutes
