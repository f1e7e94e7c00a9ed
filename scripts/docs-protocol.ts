/**
 * Generates the tables of docs/protocol.md from the code they describe, so the document cannot drift:
 * channels and snapshot fields (the TypeBox schemas of backend/schemas/ws-protocol.ts), client messages,
 * close codes, and the metrics catalogue (backend/metrics.ts).
 *
 *   npm run docs          rewrite the generated blocks in docs/protocol.md
 *   npm run docs -- --check   exit 1 (naming the block) when the document is out of date
 *
 * A generated block sits between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`; the prose around the
 * blocks is written by hand.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Registry } from 'prom-client'
import * as P from '../backend/schemas/ws-protocol.ts'
import { createMetrics } from '../backend/metrics.ts'
import { ROOT_DIR } from '../backend/paths.ts'

export const DOC_PATH = join(ROOT_DIR, 'docs', 'protocol.md')

/** what each close code tells a client; a code without a sentence here fails the generator */
const CLOSE_MEANING: Record<string, string> = {
  NORMAL: 'normal closure (logout, the client closed)',
  GOING_AWAY: 'the server is shutting down: reconnect with backoff',
  TOO_BIG: 'a message was larger than the limit',
  INTERNAL: 'an internal error on the server: reconnect with backoff',
  TRY_AGAIN_LATER: 'over capacity: reconnect later, with backoff',
  TOKEN_EXPIRED: 'the access token expired and no new one arrived in-band: refresh it and reconnect',
  SLOW_CONSUMER: 'the client did not read fast enough: reconnect (it will receive the latest snapshots)',
  RATE_LIMITED: 'too many messages from the client: reconnect after a pause',
  BAD_REQUEST: 'bad request or protocol violation: do not reconnect as is',
  INVALID_TOKEN: 'invalid token: log in again',
  AUTH_TIMEOUT: 'no `auth` message within 10 s: do not reconnect as is',
  FORBIDDEN: 'forbidden (credentials deleted, user deleted): do not reconnect',
}

type Schema = {
  type?: string | string[]
  anyOf?: Schema[]
  const?: unknown
  properties?: Record<string, Schema>
  required?: string[]
  items?: Schema
  description?: string
  minItems?: number
  maxItems?: number
  minLength?: number
  maxLength?: number
}

/** the exported `<Name>Schema` objects of ws-protocol.ts, so a nested one is written by its name */
const NAMED = new Map<unknown, string>(
  Object.entries(P).flatMap(([k, v]) =>
    /^\w+Schema$/.test(k) && k !== 'ClientMessageSchema' && typeof v === 'object'
      ? [[v, k.replace(/Schema$/, '').replace(/Snapshot$/, 'Snapshot')]]
      : [],
  ),
)

/** a short type expression for a JSON schema */
export function typeOf(s: Schema): string {
  const named = NAMED.get(s)
  if (named && s.type === 'object') return `\`${named}\``
  if (s.anyOf) return s.anyOf.map(typeOf).join(' \\| ')
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``
  if (s.type === 'array') return `${s.items ? typeOf(s.items) : 'unknown'}[]`
  if (s.type === 'object' && s.properties) return `{ ${Object.keys(s.properties).join(', ')} }`
  return Array.isArray(s.type) ? s.type.join(' \\| ') : (s.type ?? 'unknown')
}

function fieldTable(schema: Schema): string {
  const req = new Set(schema.required ?? [])
  const rows = Object.entries(schema.properties ?? {}).map(
    ([name, f]) => `| \`${name}\` | ${typeOf(f)} | ${req.has(name) ? 'yes' : 'no'} | ${f.description ?? ''} |`,
  )
  return ['| field | type | always present | note |', '|---|---|---|---|', ...rows].join('\n')
}

function snapshotSchemas(): Array<[string, Schema]> {
  // every exported `<Name>SnapshotSchema` is a channel's data; the channel list itself decides the order
  const byName = new Map<string, Schema>()
  for (const [k, v] of Object.entries(P)) {
    const m = /^(\w+)SnapshotSchema$/.exec(k)
    if (m) byName.set(m[1]!.toLowerCase(), v as Schema)
  }
  return P.CHANNELS.map((c) => {
    const s = byName.get(c)
    if (!s) throw new Error(`channel ${c} has no exported ${c[0]!.toUpperCase()}${c.slice(1)}SnapshotSchema in ws-protocol.ts`)
    return [c, s]
  })
}

function channelsBlock(): string {
  const out: string[] = [`Channels (protocol ${P.PROTOCOL_VERSION}): ${P.CHANNELS.map((c) => `\`${c}\``).join(', ')}.`, '']
  for (const [c, s] of snapshotSchemas()) {
    out.push(`#### \`${c}\``, '', fieldTable(s), '')
  }
  // the nested objects the snapshots name, when the schema module exports them
  const nested: Array<[string, string]> = [
    ['FuturesTrade', 'an isolated-margin trade'],
    ['FuturesCrossPosition', 'the cross-margin position'],
    ['CrossOrder', 'a cross-margin order'],
    ['FundingFeeEntry', 'a funding fee, with its margin scope'],
    ['Realized', 'realised totals over a window, in sats'],
  ]
  for (const [name, what] of nested) {
    const schema = (P as Record<string, unknown>)[`${name}Schema`] as Schema | undefined
    if (schema?.properties) out.push(`#### \`${name}\` (${what}; LN Markets v3 field names)`, '', fieldTable(schema), '')
  }
  return out.join('\n').trimEnd()
}

function clientBlock(): string {
  const union = (P.ClientMessageSchema as Schema).anyOf ?? []
  const rows: string[] = ['| `type` | fields | limits |', '|---|---|---|']
  for (const m of union) {
    const props = m.properties ?? {}
    const type = typeOf(props['type']!)
    const fields = Object.keys(props).filter((k) => k !== 'type')
    const limits = fields
      .map((k) => {
        const f = props[k]!
        const parts = [
          f.minLength !== undefined ? `≥ ${f.minLength} chars` : '',
          f.maxLength !== undefined ? `≤ ${f.maxLength} chars` : '',
          f.maxItems !== undefined ? `≤ ${f.maxItems} items` : '',
        ]
        const txt = parts.filter(Boolean).join(', ')
        return txt ? `\`${k}\` ${txt}` : ''
      })
      .filter(Boolean)
      .join('; ')
    rows.push(`| ${type} | ${fields.map((f) => `\`${f}\``).join(', ')} | ${limits} |`)
  }
  return rows.join('\n')
}

function closeBlock(): string {
  const rows = ['| code | name | meaning | reconnect? |', '|---|---|---|---|']
  for (const [name, code] of Object.entries(P.CloseCode)) {
    const meaning = CLOSE_MEANING[name]
    if (!meaning) throw new Error(`close code ${name} (${code}) has no meaning in scripts/docs-protocol.ts`)
    rows.push(`| ${code} | ${name} | ${meaning} | ${P.isTerminalClose(code) ? 'no' : 'yes, with backoff'} |`)
  }
  return rows.join('\n')
}

function metricsBlock(): string {
  const registry = new Registry()
  const m = createMetrics(registry)
  const ours = new Set(
    Object.values(m).flatMap((v) => (typeof v === 'object' && 'name' in v ? [String((v as { name: string }).name)] : [])),
  )
  const rows = ['| metric | type | labels | help |', '|---|---|---|---|']
  const defaults: string[] = []
  for (const metric of registry.getMetricsAsArray() as unknown as Array<{
    name: string
    help: string
    type: string
    labelNames?: string[]
  }>) {
    if (!ours.has(metric.name)) {
      defaults.push(metric.name)
      continue
    }
    rows.push(`| \`${metric.name}\` | ${metric.type} | ${(metric.labelNames ?? []).join(', ')} | ${metric.help} |`)
  }
  return `${rows.join('\n')}\n\nPlus Node's default process metrics under the same prefix (${defaults.length} series families, e.g. \`${defaults.slice(0, 3).join('`, `')}\`).`
}

export const BLOCKS: Record<string, () => string> = {
  channels: channelsBlock,
  'client-messages': clientBlock,
  'close-codes': closeBlock,
  metrics: metricsBlock,
}

/** the document with every generated block brought up to date, and the names of the blocks that changed */
export function render(doc: string): { text: string; changed: string[]; missing: string[] } {
  const changed: string[] = []
  const missing: string[] = []
  let text = doc
  for (const [name, gen] of Object.entries(BLOCKS)) {
    const open = `<!-- generated:${name} -->`
    const close = `<!-- /generated:${name} -->`
    const a = text.indexOf(open)
    const b = text.indexOf(close)
    if (a < 0 || b < a) {
      missing.push(name)
      continue
    }
    const body = `\n${gen()}\n`
    if (text.slice(a + open.length, b) !== body) changed.push(name)
    text = text.slice(0, a + open.length) + body + text.slice(b)
  }
  return { text, changed, missing }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.includes('--check')
  const doc = readFileSync(DOC_PATH, 'utf8')
  const { text, changed, missing } = render(doc)
  if (missing.length) {
    console.error(`docs/protocol.md lacks the generated block(s): ${missing.join(', ')}`)
    process.exit(1)
  }
  if (check) {
    if (changed.length) {
      console.error(`docs/protocol.md is out of date (${changed.join(', ')}): run npm run docs`)
      process.exit(1)
    }
    console.log('docs/protocol.md is up to date')
  } else {
    writeFileSync(DOC_PATH, text)
    console.log(changed.length ? `docs/protocol.md: updated ${changed.join(', ')}` : 'docs/protocol.md: already up to date')
  }
}
