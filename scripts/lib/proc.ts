/**
 * Child processes for the bench and stress scripts: every child is registered and killed when the
 * parent exits (normally, on an uncaught error or on SIGINT/SIGTERM), and its CPU time and RSS are read
 * from /proc so a server's own cost is measured from outside the server.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { ROOT_DIR } from '../../backend/paths.ts'

export const ROOT = ROOT_DIR

const children = new Set<ChildProcess>()
let hooked = false

function killAll(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
      try {
        process.kill(c.pid, signal)
      } catch {
        /* already gone */
      }
    }
  }
  children.clear()
}

function hook(): void {
  if (hooked) return
  hooked = true
  process.on('exit', () => killAll())
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      killAll()
      process.exit(130)
    })
  }
}

/** SIGKILL every registered child now (a runner abandoning a step that overran its time limit) */
export function killChildren(): void {
  killAll()
}

export function track<T extends ChildProcess>(c: T): T {
  hook()
  children.add(c)
  c.once('exit', () => children.delete(c))
  return c
}

/** node with the tsx loader in-process (not the tsx CLI, which would add a wrapper process whose pid is not the server's) */
export const TSX_ARGS = ['--import', 'tsx']

export interface SpawnOpts {
  env?: Record<string, string | undefined>
  /** extra node flags (e.g. --max-old-space-size, --cpu-prof) */
  nodeArgs?: string[]
  /** 'inherit' to see the child's output, 'pipe' to capture it */
  stdio?: 'inherit' | 'pipe' | 'ignore'
  ipc?: boolean
  cwd?: string
}

/** start `node --import tsx <file> [...args]` */
export function spawnTs(file: string, args: string[] = [], opts: SpawnOpts = {}): ChildProcess {
  const stdio = opts.stdio ?? 'pipe'
  const c = spawn(process.execPath, [...TSX_ARGS, ...(opts.nodeArgs ?? []), resolve(ROOT, file), ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdio: opts.ipc ? [stdio, stdio, stdio, 'ipc'] : [stdio, stdio, stdio],
  })
  return track(c)
}

/** fork a TS module with an IPC channel (load generators, reference servers) */
export function forkTs(file: string, args: string[] = [], opts: SpawnOpts = {}): ChildProcess {
  const c = fork(resolve(ROOT, file), args, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    execArgv: [...TSX_ARGS, ...(opts.nodeArgs ?? [])],
    stdio: opts.stdio === 'inherit' ? ['inherit', 'inherit', 'inherit', 'ipc'] : ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'advanced',
  })
  return track(c)
}

/** keep the last `max` characters a child printed (for error messages) */
export function captureOutput(c: ChildProcess, max = 8000): () => string {
  let buf = ''
  const add = (d: Buffer) => {
    buf = (buf + d.toString()).slice(-max)
  }
  c.stdout?.on('data', add)
  c.stderr?.on('data', add)
  return () => buf
}

/** wait for a message from a forked child that satisfies `pred` */
export function waitMessage<T>(c: ChildProcess, pred: (m: any) => boolean, timeoutMs: number, what: string): Promise<T> {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      cleanup()
      rej(new Error(`timeout after ${timeoutMs} ms waiting for ${what}`))
    }, timeoutMs)
    const onMsg = (m: any) => {
      if (pred(m)) {
        cleanup()
        res(m as T)
      }
    }
    const onExit = (code: number | null, sig: string | null) => {
      cleanup()
      rej(new Error(`${what}: child exited (${code ?? sig}) before answering`))
    }
    const cleanup = () => {
      clearTimeout(timer)
      c.off('message', onMsg)
      c.off('exit', onExit)
    }
    c.on('message', onMsg)
    c.once('exit', onExit)
  })
}

/** request/response over IPC: sends {id, ...msg}, resolves with the reply carrying the same id */
let nextId = 1
export function rpc<T = any>(c: ChildProcess, msg: Record<string, unknown>, timeoutMs: number): Promise<T> {
  const id = nextId++
  const p = waitMessage<any>(c, (m) => m && m.id === id, timeoutMs, `${String(msg.op)} from pid ${c.pid}`)
  c.send({ ...msg, id })
  return p.then((m) => {
    if (m.error) throw new Error(`${String(msg.op)} failed in pid ${c.pid}: ${m.error}`)
    return m as T
  })
}

export async function stopChild(c: ChildProcess | undefined, graceMs = 3000): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return
  const exited = new Promise<void>((r) => c.once('exit', () => r()))
  try {
    c.kill('SIGTERM')
  } catch {
    /* gone */
  }
  const t = setTimeout(() => {
    try {
      c.kill('SIGKILL')
    } catch {
      /* gone */
    }
  }, graceMs)
  await exited
  clearTimeout(t)
}

// ---------- /proc readings ----------

const CLK_TCK = 100 // Linux USER_HZ is 100 on every mainstream kernel/arch

export interface ProcSample {
  t: number
  cpuS: number
  rssBytes: number
  userS: number
  sysS: number
}

/** CPU seconds (user+system) and RSS of one pid, read from /proc */
export function procSample(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is state (field 3); utime is field 14, stime field 15 → indexes 11, 12
  const userS = Number(fields[11]) / CLK_TCK
  const sysS = Number(fields[12]) / CLK_TCK
  const cpuS = userS + sysS
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  return { t: performance.now(), cpuS, userS, sysS, rssBytes: m ? Number(m[1]) * 1024 : 0 }
}

/** the sum over several pids (a clustered gateway) */
export function procSampleAll(pids: number[]): ProcSample {
  let cpuS = 0
  let userS = 0
  let sysS = 0
  let rssBytes = 0
  for (const pid of pids) {
    try {
      const s = procSample(pid)
      cpuS += s.cpuS
      userS += s.userS
      sysS += s.sysS
      rssBytes += s.rssBytes
    } catch {
      /* exited */
    }
  }
  return { t: performance.now(), cpuS, userS, sysS, rssBytes }
}

/** CPU use between two samples, in percent of one core */
export function cpuPercent(a: ProcSample, b: ProcSample): number {
  const wall = (b.t - a.t) / 1000
  return wall > 0 ? ((b.cpuS - a.cpuS) / wall) * 100 : 0
}

/** the hard RLIMIT_NOFILE of this process (what a child can raise its soft limit to) */
export function fdLimits(): { soft: number; hard: number } {
  try {
    const txt = readFileSync('/proc/self/limits', 'utf8')
    const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(txt)
    if (m) return { soft: m[1] === 'unlimited' ? Infinity : Number(m[1]), hard: m[2] === 'unlimited' ? Infinity : Number(m[2]) }
  } catch {
    /* not Linux */
  }
  return { soft: Infinity, hard: Infinity }
}

export { setTimeout as sleep } from 'node:timers/promises'

/** whole-machine CPU busy fraction between two readings of /proc/stat (other people's load shows here) */
export function systemCpu(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]
    const v = line!.trim().split(/\s+/).slice(1).map(Number)
    const idle = (v[3] ?? 0) + (v[4] ?? 0)
    const total = v.reduce((a, b) => a + b, 0)
    return { busy: total - idle, total }
  } catch {
    return { busy: 0, total: 0 }
  }
}

/** percent of the whole machine (100 = every core busy) */
export function systemCpuPercent(a: { busy: number; total: number }, b: { busy: number; total: number }): number {
  const dt = b.total - a.total
  return dt > 0 ? ((b.busy - a.busy) / dt) * 100 : NaN
}

/** the inspector URL a child started with --inspect=127.0.0.1:0 printed (null until it has) */
export function inspectorUrl(output: string): string | null {
  const m = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+)/.exec(output)
  return m?.[1] ?? null
}

/**
 * A full garbage collection in another process through its inspector (HeapProfiler.collectGarbage), so
 * RSS readings before and after opening connections compare live memory rather than GC timing.
 * Resolves false when there is no inspector or it does not answer in time.
 */
export async function remoteGc(url: string | null, timeoutMs = 10_000): Promise<boolean> {
  if (!url) return false
  const { default: WebSocket } = await import('ws')
  return new Promise<boolean>((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    const t = setTimeout(() => {
      ws.terminate()
      resolve(false)
    }, timeoutMs)
    ws.on('open', () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })))
    ws.on('message', (d: Buffer) => {
      const m = JSON.parse(d.toString()) as { id?: number }
      if (m.id === 1) {
        clearTimeout(t)
        ws.close()
        resolve(true)
      }
    })
    ws.on('error', () => {
      clearTimeout(t)
      resolve(false)
    })
  })
}
