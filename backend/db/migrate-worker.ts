/**
 * Worker-thread entry that applies pending migrations and exits (see migrate-in-worker.ts). The schema
 * engine's WebAssembly lives in this thread's isolate, so its memory is returned when the thread ends.
 */
import { parentPort, workerData } from 'node:worker_threads'
import type { Config } from '../config.ts'
import { migrate } from './index.ts'
import type { MigrateRequest, MigrateReply } from './migrate-in-worker.ts'

const req = workerData as MigrateRequest
const logs: MigrateReply['logs'] = []
const log = {
  info(obj: object, msg?: string) {
    logs.push({ level: 'info', obj, ...(msg !== undefined && { msg }) })
  },
  warn(obj: object, msg?: string) {
    logs.push({ level: 'warn', obj, ...(msg !== undefined && { msg }) })
  },
  debug(obj: object, msg?: string) {
    logs.push({ level: 'debug', obj, ...(msg !== undefined && { msg }) })
  },
  error(obj: object, msg?: string) {
    logs.push({ level: 'error', obj, ...(msg !== undefined && { msg }) })
  },
}
try {
  const config = { dataDir: req.dataDir, DATABASE_URL: req.databaseUrl } as Config
  const res = await migrate(config, log, { migrationsDir: req.migrationsDir })
  parentPort!.postMessage({ ok: true, applied: res.applied, logs } satisfies MigrateReply)
} catch (err) {
  const e = err as { name?: string; message?: string; pid?: number } | null | undefined
  parentPort!.postMessage({
    ok: false,
    error: { name: e?.name ?? 'Error', message: e?.message ?? String(err), ...(e?.pid !== undefined && { pid: e.pid }) },
    logs,
  } satisfies MigrateReply)
}
