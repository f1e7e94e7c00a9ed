/**
 * Password hashing with scrypt (memory-hard, in node:crypto, runs on the libuv pool so the event loop stays free).
 * Format: scrypt$N$r$p$salt_b64$hash_b64
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const scrypt = (pw: string, salt: Buffer, len: number, opts: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(pw, salt, len, opts, (err, key) => (err ? reject(err) : resolve(key))))

const R = 8
const P = 1
const KEYLEN = 32

/** log2 of scrypt's cost N in production: 2^15 (32 MiB, tens of ms a hash) */
export const PASSWORD_HASH_LOG2N = 15
/** below this outside production (tests) the hash would be a formality; production never goes below the default */
const MIN_TEST_LOG2N = 4

const scryptOptions = (n: number, r: number, p: number): ScryptOptions => ({ N: n, r, p, maxmem: 128 * n * r * 2 })

/**
 * Hashes with one scrypt cost and verifies hashes of any cost (the stored format carries N, r and p). The dummy
 * hash the unknown-user path verifies against is made with the same cost as real ones, so both paths take the
 * same time.
 */
export interface PasswordHasher {
  /** log2 of the N new hashes use */
  readonly log2N: number
  hash(password: string): Promise<string>
  verify(password: string, stored: string): Promise<boolean>
  dummyHash(): Promise<string>
}

/**
 * The hasher of one app. `log2N` defaults to production's 2^15; tests lower it through the app builder (never an
 * environment variable an operator could set by accident), and a production app refuses anything below 2^15.
 */
export function passwordHasher(log2N = PASSWORD_HASH_LOG2N, nodeEnv = 'production'): PasswordHasher {
  if (!Number.isInteger(log2N) || log2N > 20) throw new Error(`password hash cost 2^${log2N} is not an integer power of two up to 2^20`)
  const floor = nodeEnv === 'production' ? PASSWORD_HASH_LOG2N : MIN_TEST_LOG2N
  if (log2N < floor) throw new Error(`password hash cost 2^${log2N} is below the ${nodeEnv} floor of 2^${floor}`)
  const n = 2 ** log2N
  const hash = async (password: string) => {
    const salt = randomBytes(16)
    const key = await scrypt(password.normalize('NFKC'), salt, KEYLEN, scryptOptions(n, R, P))
    return `scrypt$${n}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`
  }
  let dummy: Promise<string> | undefined
  return {
    log2N,
    hash,
    verify: verifyPassword,
    dummyHash: () => (dummy ??= hash(randomBytes(16).toString('hex'))),
  }
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])]
  const salt = Buffer.from(parts[4]!, 'base64')
  const expected = Buffer.from(parts[5]!, 'base64')
  const key = await scrypt(password.normalize('NFKC'), salt, expected.length, scryptOptions(n, r, p))
  return key.length === expected.length && timingSafeEqual(key, expected)
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
