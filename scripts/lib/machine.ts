/** What the figures were measured on: written into every result file. */
import os from 'node:os'
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { fdLimits, ROOT } from './proc.ts'

function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch {
    return fallback
  }
}

export interface MachineInfo {
  hostname: string
  os: string
  kernel: string
  arch: string
  cpuModel: string
  cores: number
  memoryBytes: number
  node: string
  v8: string
  fdLimit: { soft: number | string; hard: number | string }
  ephemeralPorts: string
  somaxconn: string
  loadAvgAtStart: number[]
  gitCommit: string
  gitDirty: boolean
  packages: Record<string, string>
}

function pkgVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(`${ROOT}/node_modules/${name}/package.json`, 'utf8')) as { version: string }).version
  } catch {
    return '?'
  }
}

export function describeMachine(): MachineInfo {
  const cpus = os.cpus()
  const lim = fdLimits()
  let gitCommit = '?'
  let gitDirty = false
  try {
    gitCommit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    gitDirty =
      execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== ''
  } catch {
    /* not a git tree */
  }
  const osRelease = /PRETTY_NAME="([^"]+)"/.exec(readOr('/etc/os-release'))?.[1] ?? `${os.type()} ${os.release()}`
  return {
    hostname: os.hostname(),
    os: osRelease,
    kernel: os.release(),
    arch: os.arch(),
    cpuModel: cpus[0]?.model ?? '?',
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    node: process.version,
    v8: process.versions.v8,
    fdLimit: { soft: Number.isFinite(lim.soft) ? lim.soft : 'unlimited', hard: Number.isFinite(lim.hard) ? lim.hard : 'unlimited' },
    ephemeralPorts: readOr('/proc/sys/net/ipv4/ip_local_port_range').replace(/\s+/g, '-'),
    somaxconn: readOr('/proc/sys/net/core/somaxconn'),
    loadAvgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    gitCommit,
    gitDirty,
    packages: Object.fromEntries(
      ['fastify', '@fastify/websocket', 'ws', 'socket.io', 'autocannon', 'undici'].map((p) => [p, pkgVersion(p)]),
    ),
  }
}

export function machineLine(m: MachineInfo): string {
  return `${m.cpuModel}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, ${m.os}, Linux ${m.kernel}, Node ${m.node}`
}
