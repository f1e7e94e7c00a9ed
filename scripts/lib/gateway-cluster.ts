/**
 * A Node cluster of gateway processes behind one port, for connection counts one process cannot hold:
 * every process here may open at most `ulimit -Hn` descriptors (20 000 on the reference machine, not
 * raisable without CAP_SYS_RESOURCE), so 20 000 sockets need two processes. The primary accepts and hands
 * each connection to a worker (round-robin); each worker is backend/server.ts unchanged. Workers share the
 * database (DATABASE_URL) and, when REDIS_URL is set, polling and fan-out through Redis (CONTRACT §2).
 * Usage: node --import tsx scripts/lib/gateway-cluster.ts <workers> [entry.js]; tells its parent {workerPids} over IPC.
 */
import cluster, { type Worker } from 'node:cluster'
import { resolve } from 'node:path'
import { ROOT } from './proc.ts'

const n = Math.max(2, Number(process.argv[2] ?? 2))
cluster.schedulingPolicy = cluster.SCHED_RR
/** the gateway's entry: the compiled dist/backend/server.js when given (what `npm start` runs), else the sources */
const entry = process.argv[3] ?? resolve(ROOT, 'backend/server.ts')
cluster.setupPrimary({ exec: entry, execArgv: process.execArgv, silent: false })

const workers: Worker[] = []
let stopping = false

function forkOne(): Promise<Worker> {
  return new Promise((res, rej) => {
    const w = cluster.fork()
    workers.push(w)
    w.once('listening', () => res(w))
    w.once('exit', (code, sig) => {
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- Node passes a null code when a signal ended the worker
      if (!stopping) { process.stderr.write(`gateway-cluster: worker ${w.process.pid} exited (${code ?? sig})\n`); rej(new Error('worker exited')) }
    })
  })
}

// one at a time: the first applies the migrations, the next ones find them applied
for (let i = 0; i < n; i++) await forkOne()
process.send?.({ workerPids: workers.map((w) => w.process.pid) })

const stop = () => {
  if (stopping) return
  stopping = true
  for (const w of workers) w.process.kill('SIGTERM')
  const force = setTimeout(() => { for (const w of workers) w.process.kill('SIGKILL'); process.exit(0) }, 11_000)
  force.unref()
  let left = workers.length
  for (const w of workers) w.once('exit', () => { if (--left === 0) process.exit(0) })
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.on('disconnect', stop)
