/** CRUD on every model of the generated client: shared by the PGlite and PostgreSQL tests */
import type { Test } from 'tap'
import type { PrismaClient } from '../../db/index.ts'

export async function crudAllModels(t: Test, prisma: PrismaClient, suffix: string): Promise<void> {
  const username = `alice_${suffix}`
  const user = await prisma.user.create({ data: { username, passwordHash: 'scrypt$x' } })
  t.ok(/^[0-9a-f-]{36}$/.test(user.id), 'user id is a generated uuid')
  t.ok(user.createdAt instanceof Date, 'user createdAt defaults to now')
  await t.rejects(prisma.user.create({ data: { username, passwordHash: 'y' } }), { code: 'P2002' }, 'username is unique (P2002)')
  const later = new Date(Date.now() + 1000)
  const updated = await prisma.user.update({ where: { id: user.id }, data: { tokensValidAfter: later } })
  t.equal(updated.tokensValidAfter.getTime(), later.getTime(), 'user update round-trips a timestamptz(3)')

  const session = await prisma.refreshSession.create({
    data: { userId: user.id, tokenHash: 'a'.repeat(64), expiresAt: new Date(Date.now() + 60_000), userAgent: 'tap', ip: '127.0.0.1' },
  })
  const rotated = await prisma.refreshSession.update({
    where: { tokenHash: 'a'.repeat(64) },
    data: { tokenHash: 'b'.repeat(64), prevTokenHash: 'a'.repeat(64), rotatedAt: new Date() },
  })
  t.equal(rotated.id, session.id, 'refresh session rotated in place')
  t.equal(
    (await prisma.refreshSession.findUnique({ where: { prevTokenHash: 'a'.repeat(64) } }))?.id,
    session.id,
    'lookup by previous token hash',
  )

  const expiresAt = new Date(Date.now() + 5_000)
  await prisma.revokedToken.create({ data: { tokenHash: 'c'.repeat(64), userId: user.id, expiresAt } })
  t.equal(await prisma.revokedToken.count({ where: { expiresAt: { gt: new Date() } } }), 1, 'revoked token stored')
  const purged = await prisma.revokedToken.deleteMany({ where: { expiresAt: { lt: new Date(Date.now() + 10_000) } } })
  t.equal(purged.count, 1, 'expired revoked tokens purged')

  const ciphertext = new Uint8Array([1, 2, 3, 250, 0, 7])
  const nonce = new Uint8Array(12).fill(9)
  await prisma.exchangeCredential.create({
    data: { userId: user.id, ciphertext, nonce, keyId: 'abcd1234', maskedKey: 'abcd…wxyz', network: 'demo' },
  })
  const cred = await prisma.exchangeCredential.findUnique({ where: { userId: user.id } })
  t.same(Array.from(cred?.ciphertext ?? []), Array.from(ciphertext), 'bytes round-trip unchanged')
  t.ok(cred?.updatedAt instanceof Date, '@updatedAt filled')
  const upserted = await prisma.exchangeCredential.upsert({
    where: { userId: user.id },
    create: { userId: user.id, ciphertext, nonce, keyId: 'k', maskedKey: 'm', network: 'demo' },
    update: { verifiedAt: new Date(), keyId: 'efgh5678' },
  })
  t.equal(upserted.keyId, 'efgh5678', 'credential upsert updates the existing row')

  const e1 = await prisma.authEvent.create({ data: { userId: user.id, event: 'register', username, ip: '127.0.0.1' } })
  const e2 = await prisma.authEvent.create({ data: { userId: user.id, event: 'login_ok', username } })
  t.type(e1.id, 'bigint', 'auth event id is a bigint')
  t.ok(e2.id > e1.id, 'auth event ids increase')

  const levels = [{ id: 'l1', price: 100_000.5, direction: 'above', triggeredAt: null }]
  await prisma.alertSettings.create({ data: { userId: user.id, settings: { liquidationPct: 7.5, priceLevels: levels } } })
  const cas = await prisma.alertSettings.updateMany({
    where: { userId: user.id, version: 1 },
    data: { settings: { liquidationPct: 8, priceLevels: levels }, version: { increment: 1 } },
  })
  t.equal(cas.count, 1, 'alert settings: compare-and-set on the version')
  t.equal(
    (await prisma.alertSettings.updateMany({ where: { userId: user.id, version: 1 }, data: { version: { increment: 1 } } })).count,
    0,
    'a stale version matches nothing',
  )
  const alerts = await prisma.alertSettings.findUnique({ where: { userId: user.id } })
  t.same(alerts?.settings, { liquidationPct: 8, priceLevels: levels }, 'alert settings JSON round-trips')
  t.equal(alerts?.version, 2)

  const withRelations = await prisma.user.findUnique({
    where: { username },
    include: { sessions: true, credentials: true, authEvents: { orderBy: { id: 'asc' } } },
  })
  t.equal(withRelations?.sessions.length, 1, 'user → sessions relation')
  t.equal(withRelations?.credentials?.maskedKey, 'abcd…wxyz', 'user → credentials relation')
  t.same(
    withRelations?.authEvents.map((e) => e.event),
    ['register', 'login_ok'],
    'user → auth events relation, ordered',
  )

  const inTx = await prisma.$transaction(async (tx) => {
    await tx.authEvent.create({ data: { event: 'logout', username } })
    return tx.authEvent.count({ where: { username } })
  })
  t.equal(inTx, 3, 'interactive transaction sees its own write')
  await t.rejects(
    prisma.$transaction(async (tx) => {
      await tx.authEvent.create({ data: { event: 'rolled_back', username } })
      throw new Error('boom')
    }),
    { message: 'boom' },
    'a throwing transaction rejects',
  )
  t.equal(await prisma.authEvent.count({ where: { event: 'rolled_back' } }), 0, 'and is rolled back')

  await prisma.user.delete({ where: { id: user.id } })
  t.equal(await prisma.refreshSession.count({ where: { userId: user.id } }), 0, 'deleting a user cascades to sessions')
  t.equal(await prisma.exchangeCredential.count({ where: { userId: user.id } }), 0, 'deleting a user cascades to credentials')
  t.equal(await prisma.alertSettings.count({ where: { userId: user.id } }), 0, 'deleting a user cascades to alert settings')
  const orphaned = await prisma.authEvent.findMany({ where: { username } })
  t.equal(orphaned.length, 3, 'auth events survive their user')
  t.ok(
    orphaned.every((e) => e.userId === null),
    'auth events user_id set to NULL',
  )
  await prisma.authEvent.deleteMany({ where: { username } })
}
