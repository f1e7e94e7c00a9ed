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
  logs: Array<{ level: 'info' | 'warn' | 'debug'; obj: object; msg?: string }>
}

interface Log {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  debug(obj: object, msg?: string): void
}

export function workerFile(): URL {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'
  return new URL(`./migrate-worker.${ext}`, import.meta.url)
}

/** runs the migrations in a worker; resolves with the names applied, rejects with the engine's error */
export function migrateInWorker(req: MigrateRequest, log: Log): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerFile(), { workerData: req })
    let reply: MigrateReply | undefined
    worker.once('message', (m: MigrateReply) => { reply = m })
    worker.once('error', (err) => reject(err))
    worker.once('exit', (code) => {
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
