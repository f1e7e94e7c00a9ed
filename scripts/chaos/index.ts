/**
 * npm run chaos [-- --short] [--only 1,4] [--dashboards N] [--outage-s S] [--fault-s S] [--sigterm-sockets N]
 *               [--sigkill-sockets N] [--kill-rounds R] [--out FILE]
 *
 * The reliability matrix on this machine, loopback only: each cell starts what it needs (the simulator, gateway
 * processes, load generators, its own PostgreSQL with initdb/pg_ctl, its own redis-server), injects one kind of
 * fault, asserts what "nothing lost" means for it, and stops everything it started. Prints a table of
 * cell → held / failed with its figures and writes bench/results/chaos-<date>.json. Exit 0 when every cell
 * held, 2 when one failed. `--short` is the CI subset (fewer connections, shorter faults, < 3 minutes).
 * Every wait is bounded; each cell also has a hard time limit. Everything started is killed on exit, also on
 * Ctrl-C or failure (scripts/lib/proc.ts for child processes, onExit for the PostgreSQL daemon).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os, { tmpdir } from 'node:os'
import { join } from 'node:path'
import { intArg, parseArgs } from '../lib/args.ts'
import { describeMachine, machineLine } from '../lib/machine.ts'
import { fdLimits, killChildren, ROOT, sleep } from '../lib/proc.ts'
import { markdownTable } from '../lib/stats.ts'
import { closeAgents, log, PgInstance, type CellResult } from './lib.ts'
import type { Ctx } from './context.ts'
import { exchangeFaults } from './cells/exchange-faults.ts'
import { sigtermDrain } from './cells/sigterm.ts'
import { sigkillRestart } from './cells/sigkill.ts'
import { postgresOutage } from './cells/postgres.ts'
import { redisCluster } from './cells/redis.ts'
import { pgliteKill } from './cells/pglite.ts'

type CellFn = (ctx: Ctx) => Promise<Omit<CellResult, 'id' | 'name' | 'seconds'>>
export const CELLS: Array<{ id: string; name: string; run: CellFn; limitS: (c: Ctx) => number }> = [
  { id: '1', name: 'exchange faults under dashboards', run: exchangeFaults, limitS: (c) => 240 + c.outageS + 10 * (c.faultS + 25) },
  { id: '2', name: 'SIGTERM under sockets', run: sigtermDrain, limitS: () => 300 },
  { id: '3', name: 'SIGKILL + restart, dashboards reconnect', run: sigkillRestart, limitS: () => 420 },
  { id: '4', name: 'PostgreSQL stopped and started', run: postgresOutage, limitS: () => 200 },
  { id: '5', name: 'two nodes on Redis: Redis down, node killed', run: redisCluster, limitS: () => 200 },
  { id: '6', name: 'kill -9 on the embedded database', run: pgliteKill, limitS: (c) => 180 + 120 * c.killRounds },
]

/** a plain-text table, every column left-aligned (the figures are prose) */
function table(rows: string[][]): string {
  const widths: number[] = []
  for (const r of rows)
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length)
    })
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n')
}

async function main(): Promise<void> {
  const args = parseArgs()
  const short = args.has('short') && args.get('short') !== 'false'
  const only = args
    .get('only')
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  for (const id of only ?? [])
    if (!CELLS.some((c) => c.id === id)) throw new Error(`--only: no cell "${id}" (cells: ${CELLS.map((c) => c.id).join(', ')})`)
  const fd = fdLimits()
  const started = new Date()
  const dir = mkdtempSync(join(tmpdir(), 'lnm-chaos-'))
  let pg: PgInstance | null = null
  let pgStarting: Promise<PgInstance> | null = null
  const ctx: Ctx = {
    short,
    dir,
    pg: () => (pgStarting ??= PgInstance.create().then((p) => (pg = p))),
    dashboards: intArg(args, 'dashboards', short ? 100 : 2000, 1, 19_000),
    outageS: intArg(args, 'outage-s', short ? 10 : 120, 1, 900),
    faultS: intArg(args, 'fault-s', short ? 3 : 8, 1, 120),
    sigtermSockets: intArg(args, 'sigterm-sockets', short ? 300 : 5000, 1, 19_000),
    sigkillSockets: intArg(args, 'sigkill-sockets', short ? 300 : 10_000, 1, 19_000),
    killRounds: intArg(args, 'kill-rounds', short ? 1 : 2, 1, 20),
  }
  const outFile = args.get('out') ?? join(ROOT, 'bench/results', `chaos-${started.toISOString().replace(/[:.]/g, '-')}.json`)
  const machine = describeMachine()
  log(
    `chaos suite${short ? ' (short)' : ''} on ${machineLine(machine)}; load ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}; fd limit ${fd.hard}/process`,
  )
  const results: CellResult[] = []
  let interrupted = false
  process.once('SIGINT', () => {
    interrupted = true
  })
  try {
    for (const cell of CELLS) {
      if (only && !only.includes(cell.id)) continue
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by the SIGINT handler
      if (interrupted) break
      const limit = cell.limitS(ctx)
      log(`— cell ${cell.id}: ${cell.name} (limit ${Math.round(limit)} s)`)
      const t0 = Date.now()
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`cell did not finish within its ${Math.round(limit)} s limit`)), limit * 1000)
      })
      let r: CellResult
      try {
        const out = await Promise.race([cell.run(ctx), timeout])
        r = { id: cell.id, name: cell.name, ...out, seconds: Math.round((Date.now() - t0) / 100) / 10 }
      } catch (e) {
        // a cell that overran its limit is abandoned: everything it started goes with it, before the next cell
        if (Date.now() - t0 >= limit * 1000) {
          killChildren()
          await sleep(2000)
        }
        const err = e as Error
        log(`cell ${cell.id} error: ${err.stack ?? err.message}`)
        r = {
          id: cell.id,
          name: cell.name,
          held: false,
          summary: `error: ${err.message.split('\n')[0]}`,
          checks: [],
          figures: {},
          error: err.stack ?? err.message,
          seconds: Math.round((Date.now() - t0) / 100) / 10,
        }
      } finally {
        clearTimeout(timer)
      }
      log(`cell ${cell.id}: ${r.held ? 'HELD' : 'FAILED'} in ${r.seconds} s — ${r.summary}`)
      for (const c of r.checks) log(`   ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}: ${c.detail}`)
      results.push(r)
      await sleep(1000)
    }
  } finally {
    await closeAgents()
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- assigned by the context's Postgres starter, a closure
    if (pg) (pg as PgInstance).destroy()
    rmSync(dir, { recursive: true, force: true })
  }

  const rows = [['cell', 'result', 'figures'], ...results.map((r) => [`${r.id}. ${r.name}`, r.held ? 'held' : 'FAILED', r.summary])]
  const failedRows = results
    .filter((r) => !r.held)
    .flatMap((r) =>
      (r.checks.length ? r.checks.filter((c) => !c.ok) : [{ what: 'error', detail: r.summary }]).map(
        (c) => `  cell ${r.id}: ${c.what} — ${c.detail}`,
      ),
    )
  const report = {
    kind: 'lnm-gateway chaos',
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    short,
    settings: { ...ctx, dir: undefined, pg: undefined },
    machine,
    loadAvgAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
    held: results.every((r) => r.held),
    cells: results,
    table: rows,
  }
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
  writeFileSync(outFile, JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n')
  process.stdout.write(
    `\nlnm-gateway chaos${short ? ' (short)' : ''} — ${machineLine(machine)}\n${started.toISOString()}, load ${machine.loadAvgAtStart.join(' ')} → ${report.loadAvgAtEnd.join(' ')}\n\n` +
      `${table(rows)}\n` +
      (failedRows.length ? `\nfailed checks:\n${failedRows.join('\n')}\n` : '') +
      (args.has('markdown') ? `\n${markdownTable(rows)}\n` : '') +
      `\nwritten: ${outFile}\n`,
  )
  process.exitCode = report.held ? 0 : 2
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (e: Error) => {
    process.stderr.write(`chaos failed: ${e.stack ?? e.message}\n`)
    process.exit(1)
  },
)
