/**
 * A gateway in live mode against a simulator this test owns (so the test picks the accounts, rate limits
 * and faults, and counts the requests the exchange sees).
 */
import { startSimulator, type SimAccountInput, type Simulator, type SimulatorOptions } from '../../simulator/index.ts'
import type { BuildOptions } from '../../app.ts'
import { startTestApp, testAccounts, type TestApp, type TestUser } from '../helpers/app.ts'

type Tap = { teardown(fn: () => unknown): void }

export interface LiveGateway {
  g: TestApp
  sim: Simulator
  accounts: SimAccountInput[]
  /** a new user holding the credentials of simulator account i */
  user(i: number): Promise<TestUser>
  /** requests the simulator saw on account + positions endpoints in [from, to) */
  accountRequests(from: number, to: number): number
}

export const ACCOUNT_PATHS = ['/v3/account', '/v3/futures/isolated/trades/running', '/v3/futures/isolated/trades/open']

export async function liveGateway(
  t: Tap,
  o: { accounts?: SimAccountInput[]; env?: Record<string, string>; sim?: SimulatorOptions; build?: BuildOptions } = {},
): Promise<LiveGateway> {
  const accounts = o.accounts ?? testAccounts(5)
  const sim = await startSimulator({
    port: 0,
    host: '127.0.0.1',
    accounts,
    admin: true,
    rateLimit: { publicPerSec: 1000, authPerSec: 1000 },
    ...o.sim,
  })
  t.teardown(() => sim.close())
  const g = await startTestApp(t, { LNM_API_URL: sim.url, LNM_STREAM_URL: sim.streamUrl, SHUTDOWN_DRAIN_MS: '100', ...o.env }, o.build)
  return {
    g,
    sim,
    accounts,
    async user(i) {
      const u = await g.register()
      const user = await g.login(u.username, u.password)
      const acc = accounts[i]!
      const r = await g.http('PUT', '/api/credentials', {
        token: user.token,
        body: { apiKey: acc.key, apiSecret: acc.secret, passphrase: acc.passphrase },
      })
      if (r.status !== 200) throw new Error(`credentials failed: ${r.status} ${r.text}`)
      return user
    },
    accountRequests(from, to) {
      return sim.stats.log().filter((e) => e.ts >= from && e.ts < to && ACCOUNT_PATHS.includes(e.path)).length
    },
  }
}
