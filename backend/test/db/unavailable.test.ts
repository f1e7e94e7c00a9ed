/**
 * A database that does not answer is an outage, not a bug: the API says 503 `database_unavailable` with a
 * Retry-After (the chaos suite saw `500 internal` on login while PostgreSQL was stopped).
 */
import t from 'tap'
import Fastify from 'fastify'
import { createServer, type AddressInfo } from 'node:net'
import { PrismaPg } from '@prisma/adapter-pg'
import { PrismaClient } from '../../generated/prisma/client.ts'
import { installErrorHandlers, isDatabaseUnavailable } from '../../errors.ts'

/** a loopback port nothing listens on (bound, then released) */
async function closedPort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as AddressInfo).port
  await new Promise<void>((r) => srv.close(() => r()))
  return port
}

t.test('a PostgreSQL that does not answer → 503 database_unavailable, not 500', async (t) => {
  const port = await closedPort()
  const prisma = new PrismaClient({
    adapter: new PrismaPg({ connectionString: `postgresql://127.0.0.1:${port}/test`, connectionTimeoutMillis: 2000 }),
  })
  t.teardown(() => prisma.$disconnect())
  const err = await prisma.user.findUnique({ where: { id: '00000000-0000-4000-8000-000000000001' } }).then(
    () => null,
    (e: unknown) => e,
  )
  t.ok(err, 'the query failed')
  t.ok(isDatabaseUnavailable(err), `Prisma's error for an unreachable server is recognised (${(err as { code?: string }).code})`)

  const app = Fastify({ logger: false })
  installErrorHandlers(app)
  app.get('/needs-db', async () => prisma.user.count())
  app.get('/bug', async () => {
    throw new Error('a bug')
  })
  t.teardown(() => app.close())
  const r = await app.inject({ method: 'GET', url: '/needs-db' })
  t.equal(r.statusCode, 503, 'the route answers 503')
  t.equal(r.json().error.code, 'database_unavailable', 'with a code saying why')
  t.match(r.json().error.message, /database is not answering/, 'and a sentence for people')
  t.equal(r.headers['retry-after'], '5', 'and when to try again')
  const bug = await app.inject({ method: 'GET', url: '/bug' })
  t.equal(bug.statusCode, 500, 'a real bug stays a 500')
  t.equal(bug.json().error.code, 'internal', 'with its details hidden')
})

t.test('isDatabaseUnavailable: the shapes of a server going away, and what is not', async (t) => {
  t.ok(isDatabaseUnavailable({ code: 'P1017' }), 'P1017 server closed the connection')
  t.ok(isDatabaseUnavailable({ meta: { driverAdapterError: { cause: { kind: 'ConnectionClosed' } } } }), 'adapter ConnectionClosed')
  t.ok(
    isDatabaseUnavailable({ meta: { driverAdapterError: { cause: { kind: 'postgres', code: '57P01' } } } }),
    'SQLSTATE 57P01 admin shutdown',
  )
  t.notOk(isDatabaseUnavailable({ code: 'P2002' }), 'a unique violation is not an outage')
  t.notOk(isDatabaseUnavailable({ meta: { driverAdapterError: { cause: { kind: 'postgres', code: '23505' } } } }), 'nor SQLSTATE 23505')
  t.notOk(isDatabaseUnavailable(new Error('x')), 'nor a plain error')
  t.notOk(isDatabaseUnavailable(null), 'nor nothing')
})
