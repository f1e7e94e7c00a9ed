import t from 'tap'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../config.ts'
import { ROOT_DIR } from '../paths.ts'

const dir = () => mkdtempSync(join(tmpdir(), 'lnm-cfg-'))

t.test('defaults: demo mode on 127.0.0.1:3000 with generated dev secrets', async (t) => {
  const d = dir()
  const c = loadConfig({ DATA_DIR: d })
  t.equal(c.PORT, 3000, 'default port')
  t.equal(c.HOST, '127.0.0.1', 'default host')
  t.equal(c.mode, 'demo', 'no exchange configured → demo')
  t.equal(c.STALE_AFTER_MS, 30000, 'stale threshold default')
  t.equal(c.PRIVATE_STREAMS_PER_NODE, 31, 'private streams: 32 stream connections per IP, one is the public ticker stream')
  t.equal(c.credentialsKey.key.length, 32, '32-byte credentials key')
  const file = join(d, 'secrets.json')
  t.equal(statSync(file).mode & 0o777, 0o600, 'secrets file is 0600')
  const again = loadConfig({ DATA_DIR: d })
  t.equal(again.jwtSecret, c.jwtSecret, 'JWT secret reused across restarts')
  t.same(again.credentialsKey.key, c.credentialsKey.key, 'credentials key reused across restarts')
  t.notOk(readFileSync(file, 'utf8').includes('undefined'), 'secrets file is complete')
})

t.test('invalid values stop start-up with one line naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'abc' }, /^invalid configuration: PORT .*abc/],
    [{ PORT: '70000' }, /^invalid configuration: PORT /],
    [{ STALE_AFTER_MS: '-1' }, /STALE_AFTER_MS/],
    // 32 per IP, and the ticker stream holds one of them
    [{ PRIVATE_STREAMS_PER_NODE: '32' }, /^invalid configuration: PRIVATE_STREAMS_PER_NODE /],
    [{ LNM_NETWORK: 'testnet' }, /LNM_NETWORK/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL/],
    [{ CREDENTIALS_KEY: 'short' }, /CREDENTIALS_KEY/],
    [{ LNM_API_URL: 'http://127.0.0.1:1/v2' }, /LNM_API_URL must end with \/v3/],
    // matches the ^https?:// pattern but is no URL: once a TypeError with a stack trace, not one line
    [{ LNM_API_URL: 'http://' }, /^invalid configuration: LNM_API_URL is not a valid URL/],
    [{ LNM_API_URL: 'http://exa mple.com/v3' }, /^invalid configuration: LNM_API_URL is not a valid URL/],
    [{ LNM_NETWORK: 'signet', LNM_STREAM_URL: 'ws://' }, /^invalid configuration: LNM_STREAM_URL is not a valid URL/],
  ]
  for (const [env, re] of cases) {
    const err = t.throws(() => loadConfig({ DATA_DIR: dir(), ...env })) as Error
    t.ok(err instanceof ConfigError, `${Object.keys(env)[0]}: a ConfigError`)
    t.match(err.message, re, `${JSON.stringify(env)} → ${err.message}`)
    t.notMatch(err.message, /\n/, 'one line')
  }
})

t.test('a secret is never echoed in a config error', async (t) => {
  const err = t.throws(() => loadConfig({ DATA_DIR: dir(), CREDENTIALS_KEY: 'not-a-valid-key-but-secret-ish' })) as Error
  t.notMatch(err.message, /not-a-valid-key/, 'the bad key value is not echoed')
})

t.test('production refuses to start without JWT_SECRET and CREDENTIALS_KEY', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production', DATA_DIR: dir() }), /JWT_SECRET is required when NODE_ENV=production/)
  t.throws(() => loadConfig({ NODE_ENV: 'production', DATA_DIR: dir(), JWT_SECRET: 'x'.repeat(40) }), /CREDENTIALS_KEY is required/)
  const secrets = { JWT_SECRET: 'x'.repeat(40), CREDENTIALS_KEY: Buffer.alloc(32, 7).toString('base64') }
  t.throws(
    () => loadConfig({ NODE_ENV: 'production', DATA_DIR: dir(), ...secrets }),
    /^invalid configuration: LNM_NETWORK is required when NODE_ENV=production/,
    'production without LNM_NETWORK refuses to run demo mode by omission',
  )
  t.equal(
    loadConfig({ NODE_ENV: 'production', DATA_DIR: dir(), ...secrets, LNM_NETWORK: 'demo' }).mode,
    'demo',
    'an explicit LNM_NETWORK=demo is allowed',
  )
  t.equal(
    loadConfig({ NODE_ENV: 'production', DATA_DIR: dir(), ...secrets, LNM_API_URL: 'http://127.0.0.1:3100/v3' }).mode,
    'live',
    'an explicit LNM_API_URL needs no LNM_NETWORK',
  )
  const ok = loadConfig({ NODE_ENV: 'production', DATA_DIR: dir(), ...secrets, LNM_NETWORK: 'mainnet' })
  t.equal(ok.NODE_ENV, 'production', 'starts with both set')
})

t.test('live mode from LNM_NETWORK or LNM_API_URL', async (t) => {
  const m = loadConfig({ DATA_DIR: dir(), LNM_NETWORK: 'signet' })
  t.equal(m.mode, 'live')
  t.equal(m.apiUrl, 'https://api.signet.lnmarkets.com/v3')
  t.equal(m.streamUrl, 'wss://stream.signet.lnmarkets.com/v1')
  const u = loadConfig({ DATA_DIR: dir(), LNM_API_URL: 'http://127.0.0.1:3100/v3', LNM_STREAM_URL: 'ws://127.0.0.1:3100/v1' })
  t.equal(u.mode, 'live', 'explicit API URL → live')
  t.equal(u.apiUrl, 'http://127.0.0.1:3100/v3')
})

t.test('old credential keys are parsed for rotation', async (t) => {
  const old = Buffer.alloc(32, 1).toString('base64')
  const c = loadConfig({ DATA_DIR: dir(), CREDENTIALS_KEY: Buffer.alloc(32, 2).toString('base64'), CREDENTIALS_OLD_KEYS: `k1:${old}` })
  t.equal(c.credentialsOldKeys.length, 1)
  t.not(c.credentialsOldKeys[0]!.id, c.credentialsKey.id, 'distinct key ids')
})

t.test('only config.ts reads process.env', async (t) => {
  const { execSync } = await import('node:child_process')
  const out = execSync("grep -rln 'process\\.env' backend --include=*.ts --exclude-dir=generated --exclude-dir=test || true", {
    cwd: ROOT_DIR,
  })
    .toString()
    .trim()
    .split('\n')
    .filter(Boolean)
  t.same(out, ['backend/config.ts'], 'no other backend module reads process.env')
})

t.test('a damaged secrets.json stops start-up with one line and is never overwritten', async (t) => {
  for (const [what, content] of [
    ['not JSON', '{"JWT_SECRET": "abc'],
    ['a key missing', JSON.stringify({ JWT_SECRET: 'x'.repeat(64) })],
  ] as const) {
    const d = dir()
    const file = join(d, 'secrets.json')
    writeFileSync(file, content, { mode: 0o600 })
    const err = t.throws(() => loadConfig({ DATA_DIR: d })) as Error
    t.ok(err instanceof ConfigError, `${what}: a ConfigError, not a crash with a stack trace`)
    t.match(err.message, /^invalid configuration: .*secrets\.json/, `${what}: names the file`)
    t.notMatch(err.message, /\n/, `${what}: one line`)
    t.equal(readFileSync(file, 'utf8'), content, `${what}: the file is left as it was (the stored credentials depend on its keys)`)
  }
})

t.test('WORKERS: 1 by default, a number or auto; above 1 needs DATABASE_URL and a live exchange', async (t) => {
  const live = { DATA_DIR: dir(), LNM_API_URL: 'http://127.0.0.1:3100/v3' }
  const db = { DATABASE_URL: 'postgres://u@127.0.0.1:5432/lnm' }
  t.equal(loadConfig({ DATA_DIR: dir() }).workers, 1, 'no setting: one process (npm start unchanged)')
  t.equal(loadConfig({ ...live, ...db, WORKERS: '3' }).workers, 3)
  t.equal(loadConfig({ ...live, ...db, WORKERS: 'auto' }).workers, (await import('node:os')).availableParallelism(), 'auto: one per core')
  t.equal(loadConfig({ ...live, ...db, WORKERS: '2', LNM_GATEWAY_WORKER_INDEX: '1' }).workerIndex, 1, 'a worker knows its slot')
  t.throws(
    () => loadConfig({ ...live, WORKERS: '2' }),
    new ConfigError('WORKERS>1 needs DATABASE_URL: the embedded database is single-process'),
  )
  t.throws(
    () => loadConfig({ DATA_DIR: dir(), ...db, WORKERS: '2' }),
    /^WORKERS>1 needs LNM_NETWORK or LNM_API_URL: the demo simulator runs inside one process$/,
  )
  for (const bad of ['0', '-1', 'two', '1.5'])
    t.throws(() => loadConfig({ ...live, ...db, WORKERS: bad }), /^invalid configuration: WORKERS /, `WORKERS=${bad} is refused`)
})
