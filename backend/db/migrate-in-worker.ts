/**
 * Apply pending migrations in a short-lived worker thread. The schema engine is WebAssembly (hundreds
 * of MB once instantiated) that the gateway never needs again after start; loaded in the gateway's own
 * isolate it stayed resident for the life of the process. In a worker, the isolate and its memory go
 * away when the worker exits.
 *
 * The worker's file is `migrate-worker.ts` beside this one when running from sources (tsx: workers
 * inherit its loader), `migrate-worker.js` beside the compiled bundle (dist/backend/).
 */
import { Worker } from 'node:worker_threads'
import type { Log } from '../logger.ts'
import { DataDirLockedError } from './lock.ts'

export interface MigrateRequest {
  dataDir: string
  databaseUrl?: string
  migrationsDir: string
}

export interface MigrateReply {
  ok: boolean
  applied?: string[]
  error?: { name: string; message: string; pid?: number }
  logs: Array<{ level: 'info' | 'warn' | 'debug' | 'error'; obj: object; msg?: string }>
}

export function workerFile(): URL {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'
  return new URL(`./migrate-worker.${ext}`, import.meta.url)
}

/**
 * A worker for a TypeScript entry that registers tsx itself. Started with `node --import tsx` (Node 20), the
 * loader is registered in the main thread only, and the worker would refuse the `.ts` file.
 */
function tsWorker(file: URL, req: MigrateRequest): Worker {
  const tsx = import.meta.resolve('tsx/esm/api')
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(file.href)}) })`
  return new Worker(code, { eval: true, workerData: req })
}

/** runs the migrations in a worker; resolves with the names applied, rejects with the engine's error */
export function migrateInWorker(req: MigrateRequest, log: Log, bootstrapTs = false): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const file = workerFile()
    const worker = bootstrapTs ? tsWorker(file, req) : new Worker(file, { workerData: req })
    let reply: MigrateReply | undefined
    let retried = false
    worker.once('message', (m: MigrateReply) => {
      reply = m
    })
    worker.once('error', (err) => {
      if (!bootstrapTs && (err as { code?: string }).code === 'ERR_UNKNOWN_FILE_EXTENSION') {
        retried = true
        migrateInWorker(req, log, true).then(resolve, reject)
        return
      }
      reject(err)
    })
    worker.once('exit', (code) => {
      if (retried) return
      if (!reply) return reject(new Error(`the migration worker exited (code ${code}) without an answer`))
      for (const l of reply.logs) log[l.level](l.obj, l.msg)
      if (reply.ok) return resolve(reply.applied ?? [])
      const e = reply.error!
      const err = e.name === 'DataDirLockedError' ? new DataDirLockedError(e.message, e.pid ?? 0) : new Error(e.message)
      if (e.name !== 'DataDirLockedError') err.name = e.name
      reject(err)
    })
  })
}
