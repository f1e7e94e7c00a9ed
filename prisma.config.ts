/**
 * Prisma 7 CLI configuration (`prisma generate`, `prisma migrate deploy`, `prisma studio`).
 *
 * The gateway itself never goes through the CLI: `backend/db/index.ts` applies `prisma/migrations`
 * at start with the WebAssembly schema engine, offline. The CLI is for operators who have a network
 * (its native schema engine is downloaded on first use) and want the standard commands, e.g.
 * `DATABASE_URL=postgres://… npx prisma migrate deploy`.
 *
 * The datasource URL is optional here so that `prisma generate` works without one.
 */
import { defineConfig } from 'prisma/config'

const url = process.env.DATABASE_URL

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: {
    path: 'prisma/migrations',
  },
  ...(url ? { datasource: { url } } : {}),
})
