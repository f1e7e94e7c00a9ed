/**
 * Contract suite: the same read-only calls against the simulator (always) and against LN Markets signet
 * (only when LNM_CONTRACT_KEY / LNM_CONTRACT_SECRET / LNM_CONTRACT_PASSPHRASE are set; the test reads
 * process.env itself, the client never does). Every response has already passed the TypeBox schema of
 * backend/exchange/schemas.ts when a call resolves; the assertions check the semantics on top.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { startSimulator } from '../../simulator/index.ts'
import { LnmClient, LnmError, type Credentials } from '../../exchange/client.ts'
import { toAccountSnapshot, toPositionsSnapshot, toTickerSnapshot } from '../../exchange/snapshots.ts'
import { tripwire } from './helpers.ts'

const SIGNET_URL = 'https://api.signet.lnmarkets.com/v3'
const wire = tripwire()

async function contractSuite(t: Test, client: LnmClient, creds: Credentials) {
  const budget = { deadlineMs: 20_000 }
  t.equal(await client.ping(budget), 'pong', 'ping → "pong"')

  const time = await client.time(budget)
  t.ok(Number.isFinite(Date.parse(time.time)), 'time is an ISO date')
  t.ok(Math.abs(time.offsetMs) < 5 * 60_000, `clock offset learned (${time.offsetMs} ms)`)

  const account = await client.account(creds, budget)
  t.type(account.username, 'string', 'account.username')
  t.ok(Number.isInteger(account.balance) && account.balance >= 0, 'account.balance is a non-negative integer (sats)')
  t.same(
    Object.keys(toAccountSnapshot(account)).sort(),
    ['balance', 'equity', 'feeTier', 'syntheticUsdBalance', 'username'],
    'maps to AccountSnapshot',
  )

  const running = await client.runningTrades(creds, budget)
  t.ok(
    running.every((x) => x.running && !x.closed),
    'running trades are running',
  )
  const open = await client.openTrades(creds, budget)
  t.ok(
    open.every((x) => x.open && !x.running),
    'open trades are resting orders',
  )
  const pos = toPositionsSnapshot(running, open)
  t.equal(pos.totals.count, running.length, 'positions totals count the running trades')

  const closed = await client.closedTrades(creds, { limit: 5 }, budget)
  t.ok(closed.data.length <= 5, 'closed trades honour limit')
  t.ok(closed.nextCursor === null || typeof closed.nextCursor === 'string', 'nextCursor is string | null')
  t.ok(
    closed.data.every((x) => x.closed || x.canceled),
    'closed page holds closed/canceled trades',
  )

  const ticker = await client.ticker(budget)
  t.ok(ticker.lastPrice > 0 && ticker.index > 0, 'ticker prices are positive')
  const snap = toTickerSnapshot(ticker)
  t.ok(snap.bidPrice <= snap.askPrice, 'best bid ≤ best ask')
  t.ok(Number.isFinite(Date.parse(ticker.fundingTime)), 'fundingTime is ISO')

  const from = new Date(Date.now() - 3 * 3600_000)
  const candles = await client.candles({ from, range: '1h', limit: 3 }, budget)
  t.ok(candles.data.length <= 3, 'candles honour limit')
  t.ok(
    candles.data.every((c) => c.low <= c.high),
    'candle low ≤ high',
  )

  const idx = await client.oracleIndex({ from: new Date(Date.now() - 3600_000), limit: 2 }, budget)
  t.ok(
    idx.every((p) => p.index > 0),
    'oracle index values positive',
  )
  const lp = await client.oracleLastPrice({ from: new Date(Date.now() - 3600_000), limit: 2 }, budget)
  t.ok(
    lp.every((p) => p.lastPrice > 0),
    'oracle last prices positive',
  )

  const bad = await client.account({ ...creds, secret: `${creds.secret}-wrong` }, budget).then(
    () => null,
    (e: unknown) => e,
  )
  t.ok(bad instanceof LnmError && bad.kind === 'credentials_rejected', 'a wrong secret is rejected as credentials_rejected')
}

t.test('contract: simulator', async (t) => {
  const sim = await startSimulator({ port: 0, tickMs: 500 })
  // the simulator enforces the documented limits (public 1/s, auth 5/s); the client throttles to them
  const client = new LnmClient({ baseUrl: sim.url, retry: { baseMs: 200, capMs: 1000, retries: 3 } })
  t.teardown(async () => {
    await client.close()
    await sim.close()
  })
  const a = sim.accounts[0]!
  await contractSuite(t, client, { key: a.key, secret: a.secret, passphrase: a.passphrase })
  t.equal(sim.stats.log().filter((e) => e.status === 429).length, 0, 'the client-side throttle avoided every 429')
})

const key = process.env.LNM_CONTRACT_KEY
const secret = process.env.LNM_CONTRACT_SECRET
const passphrase = process.env.LNM_CONTRACT_PASSPHRASE
if (!key || !secret || !passphrase) {
  t.skip(`signet: set LNM_CONTRACT_KEY, LNM_CONTRACT_SECRET and LNM_CONTRACT_PASSPHRASE to run against ${SIGNET_URL}`, async () => {})
} else {
  t.test('contract: LN Markets signet', async (t) => {
    const client = new LnmClient({ baseUrl: SIGNET_URL, timeouts: { connectMs: 10_000, headersMs: 15_000, bodyMs: 15_000 } })
    t.teardown(() => client.close())
    await contractSuite(t, client, { key, secret, passphrase })
  })
}

t.test('no uncaught exceptions or unhandled rejections', async (t) => {
  await sleep(50) // proves no late exception or rejection surfaces within 50 ms of the last test
  wire.stop()
  t.same(wire.seen.map(String), [], 'tripwire saw nothing')
})
