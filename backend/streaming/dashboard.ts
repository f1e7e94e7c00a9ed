/**
 * GET /api/dashboard from the node-local cache: the same snapshots the WebSocket pushes, stale ones marked
 * `stale: true`, and a weak ETag over (epoch, seq, stale) per channel plus the upstream state, so an
 * unchanged dashboard costs a 304 and never an exchange call.
 */
import { staleLimitOf } from '../schemas/channels.ts'
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { countBound } from '../bounded-lru.ts'
import { CHANNEL_TABLE, type Channel } from '../schemas/channels.ts'
import type { ChannelMeta, DashboardResponse, Source, UpstreamState } from '../schemas/ws-protocol.ts'
import { TICKER_TOPIC, accountTopic, type StatusEvent } from './bus.ts'
import type { CachedSnapshot, SnapshotCache } from './cache.ts'

export interface DashboardView {
  /** the JSON body (snapshots spliced in as serialized upstream, never re-serialized) */
  body: string
  etag: string
}

const RANK: Record<UpstreamState, number> = { ok: 0, degraded: 1, down: 2 }

export function buildDashboard(
  cache: SnapshotCache,
  userId: string,
  o: { now: number; staleAfterMs: number; source: Source },
  memo?: DashboardMemo,
): DashboardView {
  const topic = accountTopic(userId)
  const accStatus = cache.status(topic)
  const tickStatus = cache.status(TICKER_TOPIC)
  const hasCredentials = accStatus?.hasCredentials !== false
  // one key per channel of the table, in table order; account channels only while there are credentials
  const entries = {} as Record<Channel, CachedSnapshot | undefined>
  for (const row of CHANNEL_TABLE) {
    entries[row.name] = row.scope === 'market' ? cache.get(TICKER_TOPIC, row.name) : hasCredentials ? cache.get(topic, row.name) : undefined
  }
  const accountEntries = CHANNEL_TABLE.filter((r) => r.scope === 'account').map((r) => entries[r.name])
  const marketEntries = CHANNEL_TABLE.filter((r) => r.scope === 'market').map((r) => entries[r.name])
  const channels: Partial<Record<Channel, ChannelMeta>> = {}
  const tag: string[] = []
  for (const { name: ch } of CHANNEL_TABLE) {
    const e = entries[ch]
    if (!e) {
      tag.push('-')
      continue
    }
    const stale = o.now - e.sourceTs > staleLimitOf(ch, o.staleAfterMs)
    channels[ch] = { epoch: e.epoch, seq: e.seq, sourceTs: e.sourceTs, stale }
    tag.push(`${e.epoch}.${e.seq}.${stale ? 1 : 0}`)
  }
  // the account's state matters most; the ticker's counts when it is worse (or there is no account)
  let worst: StatusEvent | null = hasCredentials ? accStatus : null
  if (tickStatus && (!worst || RANK[tickStatus.upstream] > RANK[worst.upstream])) worst = tickStatus
  const meta: DashboardResponse['meta'] = {
    serverTime: o.now,
    source: o.source,
    staleAfterMs: o.staleAfterMs,
    upstream: worst?.upstream ?? 'ok',
    lastSuccessTs: lastSuccess(hasCredentials ? accStatus : tickStatus, hasCredentials ? accountEntries : marketEntries),
    reason: hasCredentials ? (worst && worst.upstream !== 'ok' ? worst.reason : null) : 'no_credentials',
    hasCredentials,
    channels,
  }
  tag.push(meta.upstream, meta.reason ?? '', hasCredentials ? '1' : '0')
  const key = tag.join('|')
  // everything but serverTime is a function of `key` and lastSuccessTs (and the options): reuse the ETag
  // and the serialized body around serverTime while they hold, instead of hashing and serializing again
  const memoKey = `${key}|${meta.lastSuccessTs}|${o.source}|${o.staleAfterMs}`
  let m = memo?.get(userId)
  if (!m || m.key !== memoKey) {
    const etag = `W/"${createHash('sha1').update(key).digest('base64url').slice(0, 22)}"`
    const { serverTime: _omit, ...rest } = meta
    const restJson = JSON.stringify(rest)
    m = {
      key: memoKey,
      etag,
      // {…,"meta":{"serverTime":<now>,<rest>}}: the same bytes JSON.stringify(meta) gives, serverTime first
      head: `{${CHANNEL_TABLE.map(({ name }) => `"${name}":${entries[name]?.json ?? 'null'},`).join('')}"meta":{"serverTime":`,
      tail: restJson === '{}' ? '}}' : `,${restJson.slice(1)}}`,
    }
    memo?.set(userId, m)
  }
  return { body: `${m.head}${o.now}${m.tail}`, etag: m.etag }
}

interface MemoEntry {
  key: string
  etag: string
  head: string
  tail: string
}

export interface DashboardMemo {
  get(userId: string): MemoEntry | undefined
  set(userId: string, entry: MemoEntry): unknown
}

/**
 * Per-user memory of the last dashboard built (its ETag and body around serverTime), for buildDashboard's
 * `memo`: a dashboard polled while its snapshots do not change is then two string concatenations.
 * Bounded: the least recently used users are forgotten past `max`.
 */
export function createDashboardMemo(max = 10_000): DashboardMemo {
  return new LRUCache<string, MemoEntry>(countBound(max))
}

/** RFC 9110 weak comparison against an If-None-Match list */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false
  if (ifNoneMatch.trim() === '*') return true
  const bare = etag.replace(/^W\//, '')
  return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === bare)
}

/** a status's lastSuccessTs is frozen while ok (only transitions travel): the cached snapshots know better */
function lastSuccess(s: StatusEvent | null, entries: Array<CachedSnapshot | undefined>): number | null {
  let ts = s?.lastSuccessTs ?? null
  for (const e of entries) if (e && (ts === null || e.sourceTs > ts)) ts = e.sourceTs
  return ts
}
