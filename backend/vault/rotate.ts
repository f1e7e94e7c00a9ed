/**
 * Re-encrypts every stored credential under the current CREDENTIALS_KEY. Rows sealed under a key listed in
 * CREDENTIALS_OLD_KEYS are opened with it and sealed again; rows already under the current key are left alone.
 */
import type { Config } from '../config.ts'
import type { PrismaClient } from '../generated/prisma/client.ts'
import { open, seal, type MasterKey } from './crypto.ts'

export interface RotationResult {
  total: number
  rotated: number
  alreadyCurrent: number
  failed: Array<{ userId: string; reason: string }>
}

export async function rotateCredentials(
  prisma: PrismaClient,
  config: Pick<Config, 'credentialsKey' | 'credentialsOldKeys'>,
): Promise<RotationResult> {
  const keys: MasterKey[] = [config.credentialsKey, ...config.credentialsOldKeys]
  const rows = await prisma.exchangeCredential.findMany({ select: { id: true, userId: true, ciphertext: true, nonce: true, keyId: true } })
  const result: RotationResult = { total: rows.length, rotated: 0, alreadyCurrent: 0, failed: [] }
  for (const row of rows) {
    if (row.keyId === config.credentialsKey.id) {
      result.alreadyCurrent++
      continue
    }
    try {
      const plain = open({ ciphertext: Buffer.from(row.ciphertext), nonce: Buffer.from(row.nonce), keyId: row.keyId }, row.userId, keys)
      const sealed = seal(plain, row.userId, config.credentialsKey)
      // only replace the row if nobody rewrote it meanwhile
      const u = await prisma.exchangeCredential.updateMany({
        where: { id: row.id, keyId: row.keyId },
        data: { ciphertext: new Uint8Array(sealed.ciphertext), nonce: new Uint8Array(sealed.nonce), keyId: sealed.keyId },
      })
      if (u.count === 1) result.rotated++
    } catch (err) {
      result.failed.push({ userId: row.userId, reason: (err as Error).message })
    }
  }
  return result
}
