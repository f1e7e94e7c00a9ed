#!/usr/bin/env node
/**
 * `npm run test:e2e`: the dashboard in headless Debian Chromium (playwright-core) against a real gateway.
 *
 * 1. builds the dashboard if needed (scripts/ensure-built.mjs);
 * 2. starts `backend/server.ts` in demo mode as a child process on free loopback ports, with a fresh
 *    DATA_DIR and a faster poll/stale cadence so the states are reached quickly;
 * 3. waits for GET /health/ready, runs e2e/*.test.ts with tap (the gateway's and the simulator's URLs
 *    are passed in the environment), and stops the gateway (SIGTERM, then SIGKILL) whatever happens.
 * Screenshots and the gateway's log go to test-artifacts/e2e/.
 */
import { spawn } from 'node:child_process'
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureBuilt } from './ensure-built.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const artifacts = join(root, 'test-artifacts', 'e2e')
const CHROMIUM = '/usr/bin/chromium'
const READY_TIMEOUT_MS = 120_000

const log = (msg) => process.stdout.write(`# run-e2e: ${msg}\n`)

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

async function waitReady(url, child, deadline) {
  let last = ''
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`the gateway exited with code ${child.exitCode} before it was ready (see test-artifacts/e2e/gateway.log)`)
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) })
      if (res.ok) return
      last = `HTTP ${res.status}`
    } catch (e) {
      last = e.message
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`the gateway was not ready within ${READY_TIMEOUT_MS / 1000} s (${last})`)
}

function stop(child) {
  return new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve()
    const kill = setTimeout(() => child.kill('SIGKILL'), 12_000)
    child.once('exit', () => {
      clearTimeout(kill)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

async function main() {
  if (!existsSync(CHROMIUM)) {
    process.stderr.write(`run-e2e: ${CHROMIUM} is missing; install Debian's chromium (apt-get install -y chromium)\n`)
    return 1
  }
  mkdirSync(artifacts, { recursive: true })
  for (const f of readdirSync(artifacts)) if (f.endsWith('.png')) rmSync(join(artifacts, f))
  if (!ensureBuilt({ quiet: true })) return 1

  const [port, simPort] = [await freePort(), await freePort()]
  const dataDir = mkdtempSync(join(tmpdir(), 'lnm-e2e-'))
  const env = {
    ...process.env,
    NODE_ENV: 'development',
    HOST: '127.0.0.1',
    PORT: String(port),
    SIM_PORT: String(simPort),
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    // faster than the defaults so every state is reached in seconds, not minutes
    POLL_INTERVAL_MS: '1000',
    STALE_AFTER_MS: '10000',
    // short-lived access tokens, so the in-band token refresh happens several times during the run
    ACCESS_TOKEN_TTL_S: '30',
    // the e2e shares a small machine: the overload guard (503 while the event loop lags > 1 s) would refuse the
    // page's own files when the box is busy; it is tested in backend/test, not here
    MAX_EVENT_LOOP_DELAY_MS: '0',
  }
  for (const k of ['DATABASE_URL', 'REDIS_URL', 'LNM_NETWORK', 'LNM_API_URL', 'LNM_STREAM_URL', 'SIM_ACCOUNTS_FILE', 'METRICS_TOKEN'])
    delete env[k]

  const gatewayLog = createWriteStream(join(artifacts, 'gateway.log'))
  const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs')
  log(`starting the gateway on 127.0.0.1:${port} (simulator :${simPort}, DATA_DIR ${dataDir})`)
  const gateway = spawn(process.execPath, [tsx, 'backend/server.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  gateway.stdout.pipe(gatewayLog, { end: false })
  gateway.stderr.pipe(gatewayLog, { end: false })

  let code
  const onSignal = () => void stop(gateway).then(() => process.exit(130))
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const base = `http://127.0.0.1:${port}`
    const started = Date.now()
    await waitReady(`${base}/health/ready`, gateway, started + READY_TIMEOUT_MS)
    log(`gateway ready in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    // `npm run test:e2e -- e2e/x.test.ts` runs only the files named
    const named = process.argv.slice(2).filter((a) => a.endsWith('.test.ts'))
    const files = named.length
      ? named
      : readdirSync(join(root, 'e2e'))
          .filter((f) => f.endsWith('.test.ts'))
          .sort()
          .map((f) => `e2e/${f}`)
    const tap = join(root, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs')
    const runner = existsSync(tap) ? [process.execPath, [tap]] : ['npx', ['tap']]
    const child = spawn(
      runner[0],
      [...runner[1], '--reporter=tap', '--disable-coverage', '--allow-empty-coverage', '--jobs=1', '--timeout=300', ...files],
      {
        cwd: root,
        stdio: 'inherit',
        env: {
          ...process.env,
          E2E_BASE_URL: base,
          E2E_SIM_URL: `http://127.0.0.1:${simPort}`,
          E2E_ARTIFACTS: artifacts,
          E2E_STALE_AFTER_MS: env.STALE_AFTER_MS,
          CHROMIUM_PATH: CHROMIUM,
        },
      },
    )
    code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))))
  } catch (e) {
    process.stderr.write(`run-e2e: ${e.message}\n`)
    code = 1
  } finally {
    await stop(gateway)
    gatewayLog.end()
    rmSync(dataDir, { recursive: true, force: true })
  }
  const shots = existsSync(artifacts) ? readdirSync(artifacts).filter((f) => f.endsWith('.png')) : []
  log(`${shots.length} screenshots in test-artifacts/e2e/; exit ${code}`)
  return code
}

process.exitCode = await main()
