import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT_DIR } from '../../paths.ts'
import t from 'tap'
import { demoAccounts, loadAccountsFile, startSimulator } from '../../simulator/index.ts'
import { call, raw, relaxed } from './helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'sim-accounts-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const file = (name: string, content: unknown) => {
  const p = join(dir, name)
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content))
  return p
}

t.test('demoAccounts: demo trader with running positions and one open limit order', async (t) => {
  const accounts = demoAccounts()
  t.equal(accounts[0]!.username, 'demo', "first account is 'demo'")
  t.ok(accounts.length >= 3, 'plus a couple more')
  t.not(demoAccounts()[0]!.secret, accounts[0]!.secret, 'fresh credentials per call')
  const sim = await startSimulator({ accounts, tickMs: 3_600_000, rateLimit: relaxed })
  t.teardown(() => sim.close())
  const demo = sim.accounts[0]!
  const running = (await call(sim, demo, 'GET', '/futures/isolated/trades/running')).json
  const open = (await call(sim, demo, 'GET', '/futures/isolated/trades/open')).json
  t.ok(running.length >= 2 && running.length <= 3, '2–3 running positions')
  t.equal(open.length, 1, 'one open limit order')
  const short = running.find((x: { side: string }) => x.side === 'sell')
  t.ok(
    short.stoploss > short.entryPrice && short.stoploss < short.liquidation,
    `the short has a stop-loss between entry and liquidation (${short.entryPrice} < ${short.stoploss} < ${short.liquidation})`,
  )
  t.ok(short.takeprofit > 0 && short.takeprofit < short.entryPrice, `and a take-profit below entry (${short.takeprofit})`)
  t.ok(
    running
      .filter((x: { side: string }) => x.side === 'buy')
      .every((x: { stoploss: number; takeprofit: number }) => x.stoploss === 0 && x.takeprofit === 0),
    'the longs have none (0 = not set)',
  )
  t.ok((await call(sim, demo, 'GET', '/account')).json.balance > 0, 'a balance')
})

t.test('loadAccountsFile validates SIM_ACCOUNTS_FILE', async (t) => {
  const good = [
    {
      username: 'x',
      key: 'k1',
      secret: 's1',
      passphrase: 'p1',
      balance: 1000,
      positions: [{ side: 'buy', quantity: 10, leverage: 5, entryPrice: 100000 }],
    },
    { username: 'y', key: 'k2', secret: 's2', passphrase: 'p2', balance: 0 },
  ]
  t.same(loadAccountsFile(file('good.json', good)), good, 'a valid file round-trips')
  t.throws(() => loadAccountsFile(join(dir, 'missing.json')), /SIM_ACCOUNTS_FILE/, 'missing file')
  t.throws(() => loadAccountsFile(file('bad.json', '{nope')), /SIM_ACCOUNTS_FILE/, 'not JSON')
  t.throws(() => loadAccountsFile(file('obj.json', { username: 'x' })), /array/, 'not an array')
  t.throws(
    () => loadAccountsFile(file('nokey.json', [{ username: 'x', secret: 's', passphrase: 'p', balance: 1 }])),
    /\[0\]\.key/,
    'missing key named',
  )
  t.throws(
    () => loadAccountsFile(file('bal.json', [{ username: 'x', key: 'k', secret: 's', passphrase: 'p', balance: -1 }])),
    /balance/,
    'negative balance',
  )
  t.throws(() => loadAccountsFile(file('dup.json', [good[1], good[1]])), /duplicated/, 'duplicate key')
  const stops = [{ ...good[1], positions: [{ side: 'sell', quantity: 10, leverage: 10, stoplossPct: 2, takeprofitPct: 3 }] }]
  t.same(loadAccountsFile(file('stops.json', stops)), stops, 'stop-loss/take-profit percentages round-trip')
  t.throws(
    () =>
      loadAccountsFile(file('stops2.json', [{ ...good[1], positions: [{ side: 'sell', quantity: 10, leverage: 10, stoplossPct: -2 }] }])),
    /positions\[0\]\.stoplossPct/,
    'a negative stop-loss % is refused',
  )
  t.throws(
    () => loadAccountsFile(file('pos.json', [{ ...good[1], positions: [{ side: 'long', quantity: 1, leverage: 1 }] }])),
    /positions\[0\]\.side/,
    'bad position side',
  )
  const withCross = [
    {
      ...good[1],
      cross: { margin: 1000, leverage: 5, side: 'sell', quantity: 10, orders: [{ side: 'buy', quantity: 1, price: 90000 }] },
      history: { closedTrades: 2 },
    },
  ]
  t.same(loadAccountsFile(file('cross.json', withCross)), withCross, 'cross and history round-trip')
  t.throws(
    () => loadAccountsFile(file('c1.json', [{ ...good[1], cross: { margin: 0 } }])),
    /\[0\]\.cross\.margin/,
    'cross margin must be positive',
  )
  t.throws(
    () => loadAccountsFile(file('c2.json', [{ ...good[1], cross: { margin: 1, side: 'buy' } }])),
    /side and quantity/,
    'cross side without quantity',
  )
  t.throws(
    () => loadAccountsFile(file('c3.json', [{ ...good[1], cross: { margin: 1, orders: [{ side: 'buy', quantity: 1, extra: 1 }] } }])),
    /orders\[0\]\.extra/,
    'unknown order field',
  )
  t.throws(
    () => loadAccountsFile(file('h1.json', [{ ...good[1], history: { closedTrades: -1 } }])),
    /history\.closedTrades/,
    'bad history count',
  )
})

t.test('standalone entry: npm run simulator', async (t) => {
  const accountsFile = file('standalone.json', [
    { username: 'solo', key: 'solo-key', secret: 'solo-secret', passphrase: 'solo-pass', balance: 4242 },
  ])
  const child = spawn(process.execPath, ['--import', 'tsx', 'backend/simulator/main.ts'], {
    cwd: ROOT_DIR,
    env: { SIM_PORT: '0', HOST: '127.0.0.1', SIM_ACCOUNTS_FILE: accountsFile, DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let out = ''
  child.stderr.on('data', (d) => {
    out += d
  })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listen line: ${out}`)), 20_000)
    child.stdout.on('data', (d) => {
      out += d
      const m = /REST v3\s+http:\/\/127\.0\.0\.1:(\d+)\/v3/.exec(out)
      if (m && /solo-pass/.test(out)) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
  })
  t.match(out, /solo\s+key=solo-key secret=solo-secret passphrase=solo-pass/, 'prints each account once at start')
  t.equal((await raw(port, { method: 'GET', path: '/v3/ping' })).json, 'pong', 'serves REST v3')
  t.equal((await raw(port, { method: 'GET', path: '/__sim/faults' })).status, 200, 'admin routes on')
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  child.kill('SIGTERM')
  t.equal(await exit, 0, 'SIGTERM closes gracefully with exit code 0')
})
