/**
 * One process per embedded database: PGlite is a single-process PostgreSQL, two processes writing
 * the same directory would corrupt it. The lock is a file holding the owner's pid, created with
 * O_EXCL; a lock whose pid is no longer alive (crash, kill -9) is taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'

export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError'
  constructor(
    message: string,
    readonly pid: number,
  ) {
    super(message)
  }
}

/** lock files held by this process (a second open in the same process must fail too) */
const held = new Set<string>()

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: the process exists but belongs to someone else
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function readOwner(file: string): { pid: number; host?: string } | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { pid?: unknown; host?: unknown }
    return { pid: Number(parsed.pid), ...(typeof parsed.host === 'string' && { host: parsed.host }) }
  } catch {
    return undefined // unreadable/partial: treated as stale
  }
}

export interface DataDirLock {
  file: string
  release(): void
}

/**
 * Take `${dataDir}/pglite.lock`. Throws DataDirLockedError naming the owning pid when another live
 * process (or this one) holds it.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true })
  const file = join(dataDir, 'pglite.lock')
  if (held.has(file)) {
    throw new DataDirLockedError(`DATA_DIR ${dataDir} is already open in this lnm-gateway process (pid ${process.pid})`, process.pid)
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number
    try {
      fd = openSync(file, 'wx', 0o600)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = readOwner(file)
      if (owner && owner.pid !== process.pid && pidAlive(owner.pid)) {
        throw new DataDirLockedError(
          `DATA_DIR ${dataDir} is in use by another lnm-gateway process (pid ${owner.pid}); stop it or use another DATA_DIR`,
          owner.pid,
        )
      }
      // stale: move it aside atomically, then make sure what we moved is the stale lock we saw
      const aside = `${file}.stale-${process.pid}-${Date.now()}`
      try {
        renameSync(file, aside)
      } catch {
        continue // someone else moved it first
      }
      const moved = readOwner(aside)
      if (moved && moved.pid !== process.pid && pidAlive(moved.pid)) {
        // a live process took it between our read and our rename (the one we read was dead): give it back
        try {
          renameSync(aside, file)
        } catch {
          /* nothing better to do */
        }
        throw new DataDirLockedError(`DATA_DIR ${dataDir} is in use by another lnm-gateway process (pid ${moved.pid})`, moved.pid)
      }
      try {
        unlinkSync(aside)
      } catch {
        /* already gone */
      }
      continue
    }
    try {
      writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }) + '\n')
    } finally {
      closeSync(fd)
    }
    held.add(file)
    const onExit = () => {
      try {
        unlinkSync(file)
      } catch {
        /* ignore */
      }
    }
    process.once('exit', onExit)
    let released = false
    return {
      file,
      release() {
        if (released) return
        released = true
        held.delete(file)
        process.removeListener('exit', onExit)
        const owner = readOwner(file)
        if (owner?.pid === process.pid) {
          try {
            unlinkSync(file)
          } catch {
            /* ignore */
          }
        }
      },
    }
  }
  throw new Error(`could not take the lock on DATA_DIR ${dataDir} (${file}); remove it if no lnm-gateway process is running`)
}
