/**
 * Credentials vault: exchange credentials sealed at rest, opened only in memory to sign requests.
 */
import { EventEmitter } from 'node:events'
import fp from 'fastify-plugin'
import { type ExchangeSecret, type MasterKey, maskKey, open, seal } from '../../vault/crypto.ts'

export interface VaultEvents {
  changed: [{ userId: string }]
  deleted: [{ userId: string }]
}

export interface StoredInfo {
  maskedKey: string
  network: string
  createdAt: Date
  verifiedAt: Date | null
}

export default fp(
  async function vault(app) {
    const keys: MasterKey[] = [app.config.credentialsKey, ...app.config.credentialsOldKeys]
    const events = new EventEmitter<VaultEvents>()
    events.setMaxListeners(0)

    async function get(userId: string): Promise<ExchangeSecret | null> {
      const row = await app.prisma.exchangeCredential.findUnique({ where: { userId } })
      if (!row) return null
      return open({ ciphertext: Buffer.from(row.ciphertext), nonce: Buffer.from(row.nonce), keyId: row.keyId }, userId, keys)
    }

    async function info(userId: string): Promise<StoredInfo | null> {
      return app.prisma.exchangeCredential.findUnique({
        where: { userId },
        select: { maskedKey: true, network: true, createdAt: true, verifiedAt: true },
      })
    }

    async function put(userId: string, secret: ExchangeSecret, network: string, verifiedAt: Date): Promise<StoredInfo> {
      const sealed = seal(secret, userId, app.config.credentialsKey)
      const data = {
        ciphertext: new Uint8Array(sealed.ciphertext),
        nonce: new Uint8Array(sealed.nonce),
        keyId: sealed.keyId,
        maskedKey: maskKey(secret.key),
        network,
        verifiedAt,
      }
      const row = await app.prisma.exchangeCredential.upsert({
        where: { userId },
        create: { userId, ...data },
        update: { ...data, createdAt: new Date() },
      })
      events.emit('changed', { userId })
      return { maskedKey: row.maskedKey, network: row.network, createdAt: row.createdAt, verifiedAt: row.verifiedAt }
    }

    async function remove(userId: string): Promise<boolean> {
      const r = await app.prisma.exchangeCredential.deleteMany({ where: { userId } })
      if (r.count > 0) events.emit('deleted', { userId })
      return r.count > 0
    }

    app.decorate('vault', { get, info, put, remove, events })
  },
  { name: 'vault', dependencies: ['db'] },
)

export interface Vault {
  get(userId: string): Promise<ExchangeSecret | null>
  info(userId: string): Promise<StoredInfo | null>
  put(userId: string, secret: ExchangeSecret, network: string, verifiedAt: Date): Promise<StoredInfo>
  remove(userId: string): Promise<boolean>
  events: EventEmitter<VaultEvents>
}

declare module 'fastify' {
  interface FastifyInstance {
    vault: Vault
  }
}
