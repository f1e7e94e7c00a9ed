/**
 * Password hashing with scrypt (memory-hard, in node:crypto, runs on the libuv pool so the event loop stays free).
 * Format: scrypt$N$r$p$salt_b64$hash_b64
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const scrypt = (pw: string, salt: Buffer, len: number, opts: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(pw, salt, len, opts, (err, key) => (err ? reject(err) : resolve(key))))

const N = 2 ** 15
const R = 8
const P = 1
const KEYLEN = 32
const MAXMEM = 128 * N * R * 2

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scrypt(password.normalize('NFKC'), salt, KEYLEN, { N, r: R, p: P, maxmem: MAXMEM })
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])]
  const salt = Buffer.from(parts[4]!, 'base64')
  const expected = Buffer.from(parts[5]!, 'base64')
  const key = await scrypt(password.normalize('NFKC'), salt, expected.length, { N: n, r, p, maxmem: 128 * n * r * 2 })
  return key.length === expected.length && timingSafeEqual(key, expected)
}

/** a real hash to verify against for unknown users, so both paths cost the same time */
let dummyHash: Promise<string> | undefined
export function dummyPasswordHash(): Promise<string> {
  dummyHash ??= hashPassword(randomBytes(16).toString('hex'))
  return dummyHash
}

/** the minimum policy beyond length: not the username, and not a single character class of digits */
export function passwordProblem(username: string, password: string): string | null {
  if (password.length < 8) return 'password must be at least 8 characters'
  if (password.toLowerCase().includes(username.toLowerCase())) return 'password must not contain the username'
  if (/^\d+$/.test(password)) return 'password must not be digits only'
  if (new Set(password).size < 4) return 'password must use at least 4 different characters'
  return null
}
