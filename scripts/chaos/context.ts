/** What every cell receives from the runner, and the user helpers the cells share. */
import { randomBytes } from 'node:crypto'
import { api, type ApiAnswer, type PgInstance } from './lib.ts'
import type { SimAccount } from '../lib/servers.ts'

export interface Ctx {
  short: boolean
  /** scratch directory, removed at the end */
  dir: string
  /** the suite's own PostgreSQL (started on first use, shared by the cells that need one) */
  pg(): Promise<PgInstance>
  /** cell 1: connected dashboards (load generators) */
  dashboards: number
  /** cell 1: the exchange outage, seconds */
  outageS: number
  /** cell 1: each other fault, seconds */
  faultS: number
  /** cell 2: sockets at SIGTERM */
  sigtermSockets: number
  /** cell 3: dashboards at SIGKILL */
  sigkillSockets: number
  /** cell 6: kill -9 rounds */
  killRounds: number
}

export interface User {
  username: string
  password: string
  token: string
  account?: SimAccount
}

export const runId = randomBytes(3).toString('hex')

/** register (201), log in (200) and optionally store the exchange credentials (200); throws with the answer otherwise */
export async function makeUser(origin: string, username: string, account: SimAccount | undefined, localAddress?: string): Promise<User> {
  const password = `Chaos!${randomBytes(6).toString('hex')}`
  const want = async (what: string, a: Promise<ApiAnswer>, ok: number) => {
    const r = await a
    if (r.status !== ok) throw new Error(`${what} ${username}: ${r.status} ${JSON.stringify(r.json ?? r.error)}`)
    return r
  }
  await want('register', api(origin, 'POST', '/api/auth/register', { username, password }, { localAddress }), 201)
  const login = await want('login', api(origin, 'POST', '/api/auth/login', { username, password }, { localAddress }), 200)
  const token = login.json.accessToken as string
  if (account)
    await want(
      'PUT /api/credentials',
      api(
        origin,
        'PUT',
        '/api/credentials',
        { apiKey: account.key, apiSecret: account.secret, passphrase: account.passphrase },
        { token, localAddress, timeoutMs: 30_000 },
      ),
      200,
    )
  return { username, password, token, ...(account && { account }) }
}

/** simulator accounts with one running position each, so positions (P&L) change with every price tick */
export function withPosition<T extends SimAccount>(
  accounts: T[],
): Array<T & { positions: Array<{ side: 'buy'; quantity: number; leverage: number }> }> {
  return accounts.map((a, i) => ({ ...a, positions: [{ side: 'buy' as const, quantity: 100 + i, leverage: 10 }] }))
}
