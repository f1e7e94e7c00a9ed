/** Runs the real gateway entry point (`backend/server.ts` through tsx, or its compiled bundle with node) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { ROOT_DIR } from '../../paths.ts'

/** the repository (found from package.json, so the same from the sources and from the compiled suites) */
export const ROOT = ROOT_DIR

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      const port = typeof a === 'object' && a ? a.port : 0
      s.close(() => resolve(port))
    })
  })
}

export interface GatewayProcess {
  child: ChildProcess
  stdout(): string
  stderr(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>
  kill(signal?: NodeJS.Signals): void
}

export function spawnGateway(env: Record<string, string>, script = 'backend/server.ts'): GatewayProcess {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) =>
        !/^(PORT|HOST|DATA_DIR|DATABASE_URL|REDIS_URL|JWT_SECRET|CREDENTIALS_KEY|LNM_|POLL_|STALE_|MAX_CONN|METRICS_TOKEN|NODE_ENV|SIM_)/.test(
          k,
        ),
    ),
  )
  // a compiled entry (dist/…/server.js) runs with plain node, as `npm start` does; a .ts one with node --import tsx,
  // not the tsx CLI: the CLI relays SIGTERM to its child and SIGKILLs it (exit 143) when the child has not
  // acknowledged the signal within 30 ms, which a busy machine easily misses
  const args = script.endsWith('.js') ? [script] : ['--import', 'tsx', script]
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...clean, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  const started = Date.now()
  let killedAt = 0
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - (killedAt || started) })),
  )
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      killedAt ||= Date.now()
      child.kill(signal)
    },
    waitFor(re: RegExp, ms = 30_000) {
      return new Promise((resolve, reject) => {
        const deadline = setTimeout(() => {
          clearInterval(iv)
          reject(new Error(`timeout waiting for ${re} — stdout: ${out.slice(-500)} stderr: ${err.slice(-1500)}`))
        }, ms)
        const iv = setInterval(() => {
          const m = re.exec(out) ?? re.exec(err)
          if (m) {
            clearInterval(iv)
            clearTimeout(deadline)
            resolve(m)
          } else if (child.exitCode !== null) {
            clearInterval(iv)
            clearTimeout(deadline)
            reject(new Error(`exited ${child.exitCode} — stderr: ${err.slice(-1500)}`))
          }
        }, 50)
      })
    },
  }
}
