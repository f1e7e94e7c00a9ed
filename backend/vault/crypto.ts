/**
 * AES-256-GCM sealing of exchange credentials. A fresh 96-bit nonce per record; the user id is bound as
 * additional authenticated data, so a row copied onto another user fails to open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

export interface ExchangeSecret {
  key: string
  secret: string
  passphrase: string
}

export interface MasterKey {
  id: string
  key: Buffer
}

export interface Sealed {
  ciphertext: Buffer
  nonce: Buffer
  keyId: string
}

const TAG = 16

export function seal(plain: ExchangeSecret, userId: string, mk: MasterKey): Sealed {
  const nonce = randomBytes(12)
  const c = createCipheriv('aes-256-gcm', mk.key, nonce)
  c.setAAD(Buffer.from(`lnm-gateway/credentials/v1:${userId}`))
  const body = Buffer.concat([
    c.update(JSON.stringify({ key: plain.key, secret: plain.secret, passphrase: plain.passphrase }), 'utf8'),
    c.final(),
  ])
  return { ciphertext: Buffer.concat([body, c.getAuthTag()]), nonce, keyId: mk.id }
}

export class VaultError extends Error {
  override name = 'VaultError'
}

export function open(sealed: Sealed, userId: string, keys: MasterKey[]): ExchangeSecret {
  const mk = keys.find((k) => k.id === sealed.keyId)
  if (!mk) throw new VaultError(`no master key with id ${sealed.keyId} is configured (list it in CREDENTIALS_OLD_KEYS)`)
  if (sealed.ciphertext.length <= TAG) throw new VaultError('sealed credentials are truncated')
  const d = createDecipheriv('aes-256-gcm', mk.key, sealed.nonce)
  d.setAAD(Buffer.from(`lnm-gateway/credentials/v1:${userId}`))
  d.setAuthTag(sealed.ciphertext.subarray(sealed.ciphertext.length - TAG))
  let text: string
  try {
    text = Buffer.concat([d.update(sealed.ciphertext.subarray(0, sealed.ciphertext.length - TAG)), d.final()]).toString('utf8')
  } catch {
    throw new VaultError('sealed credentials failed authentication')
  }
  const v = JSON.parse(text) as ExchangeSecret
  return { key: v.key, secret: v.secret, passphrase: v.passphrase }
}

/**
 * "abc…uvwxyz": enough for the owner to tell two keys apart (mostly the end: keys often share a prefix), useless
 * to anyone else — never more than a quarter of the key, and at most 12 characters.
 */
export function maskKey(key: string): string {
  const visible = Math.min(12, Math.floor(key.length / 4))
  const head = Math.min(4, Math.floor(visible / 3))
  const tail = visible - head
  return `${key.slice(0, head)}…${tail > 0 ? key.slice(-tail) : ''}`
}
