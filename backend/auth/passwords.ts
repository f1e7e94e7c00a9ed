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

/** the passwords tried first by anyone guessing (lower-cased, trailing digits and symbols removed) */
const COMMON = new Set([
  'password',
  'passw0rd',
  'passwort',
  'motdepasse',
  'qwerty',
  'qwertyuiop',
  'azerty',
  'asdfghjkl',
  'letmein',
  'iloveyou',
  'welcome',
  'admin',
  'administrator',
  'abcdefgh',
  'abcdef',
  'abc',
  'monkey',
  'dragon',
  'football',
  'baseball',
  'sunshine',
  'princess',
  'trustno',
  'master',
  'secret',
  'changeme',
  'bitcoin',
  'satoshi',
  'lnmarkets',
  'trading',
  'default',
  'login',
])

/**
 * The minimum policy: each rule broken is one sentence, all of them at once so the user fixes everything in
 * one go. Empty when the password is acceptable.
 */
export function passwordProblems(username: string, password: string): string[] {
  const problems: string[] = []
  if (password.length < 8) problems.push('The password must be at least 8 characters long.')
  if (password.length > 256) problems.push('The password must be at most 256 characters long.')
  if (username.length > 0 && password.toLowerCase().includes(username.toLowerCase()))
    problems.push('The password must not contain the username.')
  if (/^\d+$/.test(password)) problems.push('The password must not be made of digits only.')
  if (new Set(password).size < 4) problems.push('The password must use at least 4 different characters.')
  const core = password
    .toLowerCase()
    .replace(/[\d\W_]+$/u, '')
    .replace(/^[\d\W_]+/u, '')
  if (COMMON.has(password.toLowerCase()) || COMMON.has(core))
    problems.push('The password is one of the most common passwords; choose another.')
  return problems
}

/** the first problem, or null (kept for callers that need one sentence) */
export function passwordProblem(username: string, password: string): string | null {
  return passwordProblems(username, password)[0] ?? null
}
