/**
 * Summarise a V8 .cpuprofile (node --cpu-prof): the functions with the most self time, and the share of
 * time per package (node_modules/<pkg>, node internals, the project's own files).
 * Usage: npx tsx scripts/bench/profile-top.ts <file.cpuprofile> [top=25] [fromS] [toS]
 * fromS/toS restrict it to a window (seconds since the profile started), e.g. the load phase without start-up;
 * a busy-% timeline per second is printed first to find that window.
 */
import { readFileSync } from 'node:fs'

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
  children?: number[]
}
interface Profile {
  nodes: Node[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

const file = process.argv[2]
const top = Number(process.argv[3] ?? 25)
const fromUs = Number(process.argv[4] ?? 0) * 1e6
const toUs = process.argv[5] !== undefined ? Number(process.argv[5]) * 1e6 : Infinity
if (!file) {
  process.stderr.write('usage: profile-top.ts <file.cpuprofile> [top]\n')
  process.exit(2)
}
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(p.nodes.map((n) => [n.id, n]))
const self = new Map<number, number>()
const idleIds = new Set(p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id))
const busyPerS: number[] = []
let tUs = 0
for (let i = 0; i < p.samples.length; i++) {
  const dt = p.timeDeltas[i] ?? 0
  tUs += dt
  const sec = Math.floor(tUs / 1e6)
  if (!idleIds.has(p.samples[i]!)) busyPerS[sec] = (busyPerS[sec] ?? 0) + dt
  if (tUs < fromUs || tUs > toUs) continue
  self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt)
}
process.stdout.write(`busy % per second: ${Array.from(busyPerS, (b) => Math.round(b / 1e4)).join(' ')}\n`)
const total = [...self.values()].reduce((a, b) => a + b, 0)
const fnTime = new Map<string, number>()
const pkgTime = new Map<string, number>()
for (const [id, t] of self) {
  const n = byId.get(id)!
  const url = n.callFrame.url
  const short = url
    .replace(/^file:\/\//, '')
    .replace(/.*\/node_modules\//, 'nm:')
    .replace(/.*\/work\/[^/]+\//, '')
  const key = `${n.callFrame.functionName || '(anonymous)'}  ${short}:${n.callFrame.lineNumber + 1}`
  fnTime.set(key, (fnTime.get(key) ?? 0) + t)
  const pkg = !url
    ? `(${n.callFrame.functionName || 'native'})`
    : url.includes('/node_modules/')
      ? url
          .replace(/.*\/node_modules\//, '')
          .split('/')
          .slice(0, url.includes('/node_modules/@') ? 2 : 1)
          .join('/')
      : url.startsWith('node:')
        ? 'node internals'
        : short.split('/').slice(0, 2).join('/')
  pkgTime.set(pkg, (pkgTime.get(pkg) ?? 0) + t)
}
const pct = (t: number) => ((t / total) * 100).toFixed(1).padStart(5) + ' %'
process.stdout.write(
  `profile ${file}: ${(total / 1000).toFixed(0)} ms sampled over ${((p.endTime - p.startTime) / 1000).toFixed(0)} ms\n\nby package / area:\n`,
)
for (const [k, t] of [...pkgTime].sort((a, b) => b[1] - a[1]).slice(0, 15)) process.stdout.write(`  ${pct(t)}  ${k}\n`)
process.stdout.write(`\ntop ${top} functions by self time:\n`)
for (const [k, t] of [...fnTime].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`  ${pct(t)}  ${k}\n`)
