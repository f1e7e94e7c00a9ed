/**
 * npm run bench:startup — how long the gateway takes from process start to `/health/ready` = 200, and its
 * RSS at ready and after an idle period, as a user would run it (`node --max-semi-space-size=4
 * dist/backend/server.js`, i.e. `npm start` without the npm wrapper; `--tsx` runs backend/server.ts through tsx instead).
 *
 * The runs share one fresh DATA_DIR (embedded database) or, with --database-url, that PostgreSQL database:
 * the first run on a fresh database includes creating it and applying the migrations, the others reopen
 * an up-to-date one. The figures of every run are printed, then the median of the later runs.
 *
 * The CPU time the process used until ready is printed too: on a shared machine the wall time mostly
 * measures the wait for a core.
 *
 * Options: --runs 3 --idle 10 (s before the idle RSS reading) --database-url postgresql://… --tsx
 *          --env KEY=VALUE,KEY=VALUE (extra environment) --root <another checkout> (with --tsx: its sources)
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { intArg, parseArgs, boolArg } from '../lib/args.ts'
import { freePort } from '../lib/net.ts'
import { PRODUCTION_NODE_ARGS } from '../lib/gateway.ts'
import { ROOT, TSX_ARGS, sleep, stopChild, track } from '../lib/proc.ts'

const args = parseArgs()
const runs = intArg(args, 'runs', 3, 1, 20)
const idleS = intArg(args, 'idle', 10, 0, 600)
const databaseUrl = args.get('database-url')
const viaTsx = boolArg(args, 'tsx')
/** another checkout of the project to measure (e.g. an older commit), default this one */
const root = args.get('root') ?? ROOT
const extraEnv = Object.fromEntries(
  (args.get('env') ?? '')
    .split(',')
    .filter(Boolean)
    .map((kv) => {
      const i = kv.indexOf('=')
      return [kv.slice(0, i), kv.slice(i + 1)]
    }),
)

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN
}

async function ready(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) })
    await r.arrayBuffer()
    return r.status === 200
  } catch {
    return false
  }
}

interface Run {
  readyMs: number
  cpuMs: number
  rssReadyMiB: number
  rssIdleMiB: number
}

/** user + system CPU time of a process so far, ms (from /proc; clock ticks of 10 ms) */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(f[11]) + Number(f[12])) * 10
}

/** one DATA_DIR for all runs: the first run creates and migrates the embedded database, the others reopen it */
const dataDir = mkdtempSync(join(tmpdir(), 'lnm-startup-'))

async function once(): Promise<Run> {
  const port = await freePort()
  const env = {
    ...process.env,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    // demo (the built-in simulator): production refuses to pick it by omission
    LNM_NETWORK: 'demo',
    JWT_SECRET: randomBytes(48).toString('base64url'),
    CREDENTIALS_KEY: randomBytes(32).toString('base64'),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...extraEnv,
  }
  const argv = viaTsx ? [...TSX_ARGS, join(root, 'backend/server.ts')] : [...PRODUCTION_NODE_ARGS, join(root, 'dist/backend/server.js')]
  const t0 = performance.now()
  const child = track(spawn(process.execPath, argv, { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] }))
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000)
  })
  try {
    const deadline = Date.now() + 240_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`gateway exited (${child.exitCode}) during start: ${stderr}`)
      if (Date.now() > deadline) throw new Error(`gateway not ready after 240 s: ${stderr}`)
      if (await ready(`http://127.0.0.1:${port}/health/ready`)) break
      await sleep(20)
    }
    const readyMs = Math.round(performance.now() - t0)
    const cpu = cpuMs(child.pid!)
    const rssReadyMiB = rssMiB(child.pid!)
    await sleep(idleS * 1000)
    return { readyMs, cpuMs: cpu, rssReadyMiB, rssIdleMiB: rssMiB(child.pid!) }
  } finally {
    await stopChild(child, 12_000)
  }
}

const results: Run[] = []
for (let i = 0; i < runs; i++) {
  const r = await once()
  results.push(r)
  process.stdout.write(
    `run ${i + 1}: ready in ${r.readyMs} ms (${r.cpuMs} ms of CPU), RSS ${r.rssReadyMiB} MiB at ready, ${r.rssIdleMiB} MiB after ${idleS} s idle\n`,
  )
}
rmSync(dataDir, { recursive: true, force: true })
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const later = results.length > 1 ? results.slice(1) : results
process.stdout.write(
  `${viaTsx ? 'tsx backend/server.ts' : `node ${PRODUCTION_NODE_ARGS.join(' ')} dist/backend/server.js`}, ${databaseUrl ? 'PostgreSQL' : 'embedded PGlite'}: ` +
    `first start (fresh database) ready in ${results[0]!.readyMs} ms (${results[0]!.cpuMs} ms CPU); ` +
    `up-to-date database: median ready ${median(later.map((r) => r.readyMs))} ms (${median(later.map((r) => r.cpuMs))} ms CPU), ` +
    `idle RSS ${median(later.map((r) => r.rssIdleMiB))} MiB\n`,
)
