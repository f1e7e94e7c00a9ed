/**
 * The database plugin: opens the configured database (migrating it), exposes the Prisma client as
 * `app.prisma` and `{ kind, ping, close }` as `app.db`, and closes it when the app closes.
 * Needs `app.config` (or pass `{ config }`).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../../config.ts'
import { openDatabase, type Database, type DbKind, type OpenOptions, type PrismaClient } from '../../db/index.ts'

export interface AppDb {
  kind: DbKind
  /** true when the database answers a trivial query within 2 s (readiness) */
  ping(): Promise<boolean>
  close(): Promise<void>
}

export interface DbPluginOptions extends OpenOptions {
  /** defaults to app.config */
  config?: Config
}

declare module 'fastify' {
  interface FastifyInstance {
    prisma: PrismaClient
    db: AppDb
  }
}

async function dbPlugin(app: FastifyInstance, opts: DbPluginOptions): Promise<void> {
  const config = opts.config ?? (app.hasDecorator('config') ? app.config : undefined)
  if (!config) throw new Error('db plugin: no config (register the config plugin first or pass { config })')
  const db: Database = await openDatabase(config, app.log.child({ module: 'db' }), {
    ...(opts.migrationsDir !== undefined && { migrationsDir: opts.migrationsDir }),
  })
  app.decorate('prisma', db.prisma)
  app.decorate('db', { kind: db.kind, ping: () => db.ping(), close: () => db.close() } satisfies AppDb)
  app.addHook('onClose', async () => {
    await db.close()
  })
}

export default fp(dbPlugin, { name: 'db', fastify: '5.x' })
