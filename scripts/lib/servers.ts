/** Start the simulator and the reference servers as separate processes. */
import type { ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { captureOutput, forkTs, waitMessage } from './proc.ts'

export interface Child {
  proc: ChildProcess
  pid: number
  port: number
  output: () => string
}

async function startForked(
  file: string,
  env: Record<string, string>,
  what: string,
  timeoutMs = 30_000,
  nodeArgs: string[] = [],
): Promise<Child & { msg: any }> {
  const proc = forkTs(file, [], { env, nodeArgs })
  const out = captureOutput(proc)
  try {
    const msg = await waitMessage<any>(proc, (m) => m && m.ready === true, timeoutMs, what)
    return { proc, pid: proc.pid as number, port: msg.port as number, msg, output: out }
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${out()}`, { cause: e })
  }
}

export interface SimAccount {
  username: string
  key: string
  secret: string
  passphrase: string
  balance: number
}

export function makeSimAccounts(n: number, prefix = 'bench'): SimAccount[] {
  return Array.from({ length: n }, (_, i) => ({
    username: `${prefix}${i}`,
    key: `bench-key-${prefix}-${i}-${Math.random().toString(16).slice(2, 10)}`,
    secret: `bench-secret-${i}-${Math.random().toString(36).slice(2)}`,
    passphrase: `pp${i}${Math.random().toString(16).slice(2, 8)}`,
    balance: 1_000_000 + i,
  }))
}

export async function startSim(dir: string, accounts: SimAccount[]): Promise<Child & { url: string; streamUrl: string }> {
  const file = join(dir, 'sim-accounts.json')
  writeFileSync(file, JSON.stringify(accounts))
  const c = await startForked('scripts/bench/sim-server.ts', { SIM_ACCOUNTS_FILE: file, SIM_PORT: '0' }, 'simulator start')
  return { ...c, url: c.msg.url, streamUrl: c.msg.streamUrl }
}

/** `inspect`: start with an inspector on a free loopback port, so the bench can trigger a GC before RSS readings */
export async function startRef(kind: 'ws' | 'sio', feedUrl: string, inspect = false): Promise<Child & { url: string }> {
  const file = kind === 'ws' ? 'scripts/bench/ref-ws.ts' : 'scripts/bench/ref-sio.ts'
  const c = await startForked(
    file,
    { PORT: '0', FEED_URL: feedUrl },
    `${kind} reference start`,
    30_000,
    inspect ? ['--inspect=127.0.0.1:0'] : [],
  )
  const url = kind === 'ws' ? `ws://127.0.0.1:${c.port}/ws` : `ws://127.0.0.1:${c.port}/socket.io/?EIO=4&transport=websocket`
  return { ...c, url }
}
