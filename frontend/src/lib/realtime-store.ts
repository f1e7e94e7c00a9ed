/**
 * The realtime client's state and how it changes: pure functions from (state, frame or HTTP snapshot, now)
 * to a patch, plus a tiny container that holds the state and tells subscribers when it changes.
 *
 * No timers, no DOM, no I/O: the socket (realtime-socket.ts), the HTTP fallback (fallback-poller.ts) and the
 * lifecycle that wires them (realtime-client.ts) do those and hand plain values here.
 */
import type {
  Channel,
  ChannelMeta,
  ConnectionFrame,
  DashboardResponse,
  DataUpdateFrame,
  FreshFrame,
  PongFrame,
  SnapshotByChannel,
  Source,
  StatusFrame,
  UpstreamState,
} from '../../../backend/schemas/ws-protocol.ts'
// the channel table itself (a dependency-free module): the page knows every channel the gateway has
import { CHANNELS, scopeOf, staleLimitOf } from '../../../backend/schemas/channels.ts'
import type { CrossSnapshot, HistorySnapshot } from '../features/dashboard/account-data/types.ts'
import { isNewer, isSameVersionFresher, judgeFrame } from './frame-policy.ts'

/** the channels this page shows: every channel of the table */
export type PageChannel = Channel
export type PageSnapshots = SnapshotByChannel & { cross: CrossSnapshot; history: HistorySnapshot }

/** what the connection chip says */
export type Transport = 'connecting' | 'live' | 'silent' | 'polling' | 'reconnecting' | 'offline' | 'stopped'

export interface ChannelView<C extends PageChannel = PageChannel> {
  data: PageSnapshots[C]
  epoch: number
  seq: number
  /** when the exchange data was true (server clock, ms) */
  sourceTs: number
  /** when this page received it (client clock, ms) */
  receivedAt: number
  via: 'ws' | 'http'
}

export interface UpstreamView {
  state: UpstreamState
  reason: string | null
  lastSuccessTs: number | null
}

export interface RealtimeState {
  transport: Transport
  /** client ms of the next HTTP fallback poll, while polling */
  nextPollAt: number | null
  /** the wait before that poll, ms (the chip's countdown never shows more) */
  pollWaitMs: number
  /** client ms since when the open socket has not answered (no frame, unanswered ping); null when it talks */
  silentSince: number | null
  /** client ms of the next reconnect attempt, while the socket is down */
  nextReconnectAt: number | null
  lastPollOk: boolean | null
  channels: { [C in PageChannel]?: ChannelView<C> }
  /** upstream health per affected part ('account' polling, 'ticker' feed, or 'all' from the HTTP fallback) */
  upstream: Record<string, UpstreamView>
  source: Source | null
  hasCredentials: boolean | null
  /** server clock minus client clock, ms */
  serverOffsetMs: number
  staleAfterMs: number
  rejectedFrames: { too_old: number; not_newer: number }
}

/** a change to the state; null: nothing changes */
export type Patch = Partial<RealtimeState> | null

export function initialState(staleAfterMs: number): RealtimeState {
  return {
    transport: 'stopped',
    nextPollAt: null,
    pollWaitMs: 0,
    silentSince: null,
    nextReconnectAt: null,
    lastPollOk: null,
    channels: {},
    upstream: {},
    source: null,
    hasCredentials: null,
    serverOffsetMs: 0,
    staleAfterMs,
    rejectedFrames: { too_old: 0, not_newer: 0 },
  }
}

/** the state with `patch` applied; the very same object when no field changes (so selectors stay stable) */
export function mergeState(state: RealtimeState, patch: Patch): RealtimeState {
  if (!patch) return state
  const changed = (Object.keys(patch) as Array<keyof RealtimeState>).some((k) => state[k] !== patch[k])
  return changed ? { ...state, ...patch } : state
}

/** server-clock "now" as this page best knows it, from the client clock `now` */
export function serverNow(state: RealtimeState, now: number): number {
  return now + state.serverOffsetMs
}

/** the server confirmed the socket: its clock, its data source, and the chip says LIVE */
export function onConnectionFrame(frame: ConnectionFrame, now: number): Patch {
  return { serverOffsetMs: frame.serverTime - now, source: frame.source, nextReconnectAt: null, transport: 'live' }
}

export function onPongFrame(frame: PongFrame, now: number): Patch {
  return { serverOffsetMs: frame.serverTime - now }
}

/**
 * A data frame replaces what is shown only when fresh and newer (frame-policy.ts judgeFrame); a fresh frame of
 * the very version shown only renews its age; a rejected one is counted by reason. Fresh data for a part proves
 * that part's upstream healthy again.
 */
export function onDataFrame(state: RealtimeState, frame: DataUpdateFrame, now: number): Patch {
  if (!CHANNELS.includes(frame.channel)) return null
  const shown = state.channels[frame.channel]
  const verdict = judgeFrame(shown, frame, serverNow(state, now), staleLimitOf(frame.channel, state.staleAfterMs))
  if (verdict === 'too_old' || verdict === 'not_newer') {
    return { rejectedFrames: { ...state.rejectedFrames, [verdict]: state.rejectedFrames[verdict] + 1 } }
  }
  if (verdict === 'refresh' && shown) {
    return { channels: { ...state.channels, [frame.channel]: { ...shown, sourceTs: frame.sourceTs, receivedAt: now } } }
  }
  const view = { data: frame.data, epoch: frame.epoch, seq: frame.seq, sourceTs: frame.sourceTs, receivedAt: now, via: 'ws' as const }
  const upstream = { ...state.upstream }
  const scope = scopeOf(frame.channel) === 'market' ? 'ticker' : 'account'
  if (upstream[scope]?.state !== 'ok') delete upstream[scope]
  delete upstream.all
  return {
    channels: { ...state.channels, [frame.channel]: view },
    source: frame.source,
    upstream,
    hasCredentials: scope === 'ticker' ? state.hasCredentials : true,
  }
}

/** the gateway re-confirmed unchanged data: only the age of exactly the version shown moves */
export function onFreshFrame(state: RealtimeState, frame: FreshFrame, now: number): Patch {
  let channels: RealtimeState['channels'] | null = null
  for (const f of frame.channels) {
    if (!CHANNELS.includes(f.channel)) continue
    const shown = state.channels[f.channel]
    if (!shown || !isSameVersionFresher(shown, f)) continue
    channels ??= { ...state.channels }
    ;(channels as Record<Channel, unknown>)[f.channel] = { ...shown, sourceTs: f.sourceTs, receivedAt: now }
  }
  return channels ? { channels } : null
}

/** upstream health per scope; 'ok' for 'all' clears every scope */
export function onStatusFrame(state: RealtimeState, frame: StatusFrame): Patch {
  const scope = frame.scope ?? 'all'
  const upstream = { ...state.upstream }
  if (frame.upstream === 'ok') {
    delete upstream[scope]
    if (scope === 'all') for (const k of Object.keys(upstream)) delete upstream[k]
  } else {
    upstream[scope] = { state: frame.upstream, reason: frame.reason || null, lastSuccessTs: frame.lastSuccessTs }
  }
  return { upstream }
}

/**
 * A GET /api/dashboard body. A newer snapshot replaces what is shown even when old (it is then shown as
 * STALE, honestly); the same version known true later renews the age; an older one changes nothing. While the
 * socket is authenticated (`socketAuthed`) its status frames, not the HTTP body, say how the upstream is.
 */
export function onDashboard(state: RealtimeState, body: DashboardResponse, now: number, socketAuthed: boolean): Patch {
  const channels = { ...state.channels } as Record<PageChannel, ChannelView | undefined>
  // the body carries cross/history where the gateway serves them (CONTRACT §4 /api/dashboard)
  const wide = body as unknown as Record<PageChannel, unknown> & { meta: { channels: Partial<Record<PageChannel, ChannelMeta>> } }
  for (const c of CHANNELS) {
    const data = wide[c]
    const meta: ChannelMeta | undefined = wide.meta.channels[c]
    if (!data || !meta) continue
    const shown = channels[c]
    if (isNewer(shown, meta)) {
      channels[c] = { data, epoch: meta.epoch, seq: meta.seq, sourceTs: meta.sourceTs, receivedAt: now, via: 'http' } as ChannelView
    } else if (shown && isSameVersionFresher(shown, meta)) {
      channels[c] = { ...shown, sourceTs: meta.sourceTs, receivedAt: now }
    }
  }
  const upstream: Record<string, UpstreamView> = {}
  if (body.meta.upstream !== 'ok') {
    upstream.all = { state: body.meta.upstream, reason: body.meta.reason, lastSuccessTs: body.meta.lastSuccessTs }
  }
  return {
    channels: channels as RealtimeState['channels'],
    serverOffsetMs: body.meta.serverTime - now,
    source: body.meta.source,
    hasCredentials: body.meta.hasCredentials,
    staleAfterMs: body.meta.staleAfterMs > 0 ? body.meta.staleAfterMs : state.staleAfterMs,
    upstream: socketAuthed ? state.upstream : upstream,
  }
}

/**
 * The gateway pushes a channel only when its data changes; unchanged data is kept fresh in its cache without
 * a frame. Is a read of that cache due: has half a staleness window (at least 5 s) passed since the last one,
 * and is some shown value more than half its stale limit old?
 */
export function freshnessReadDue(state: RealtimeState, now: number, lastReadAt: number): boolean {
  const half = Math.max(5_000, state.staleAfterMs / 2)
  if (now - lastReadAt < half) return false
  const server = serverNow(state, now)
  return Object.entries(state.channels).some(
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- optional keys: an entry may hold undefined
    ([ch, v]) => v && server - v.sourceTs > staleLimitOf(ch as Channel, state.staleAfterMs) / 2,
  )
}

/** what the connection and the fallback are doing, as the lifecycle knows it */
export interface LinkStatus {
  stopped: boolean
  /** the socket is open and authenticated */
  authed: boolean
  online: boolean
  /** the HTTP fallback is polling */
  polling: boolean
  /** the last poll failed on the network (not an HTTP error) */
  pollFailedNetwork: boolean
  /** a socket was authenticated since start() */
  everConnected: boolean
  /** failed connection attempts since the last good one */
  attempt: number
}

/** what the chip says */
export function deriveTransport(state: RealtimeState, link: LinkStatus): Transport {
  if (link.stopped) return 'stopped'
  if (link.authed) return state.silentSince !== null ? 'silent' : 'live'
  if (!link.online) return 'offline'
  if (state.lastPollOk === true && link.polling) return 'polling'
  if (state.lastPollOk === false && link.pollFailedNetwork) return 'offline'
  if (!link.everConnected && link.attempt <= 1 && !link.polling) return 'connecting'
  return 'reconnecting'
}

type Listener = (state: RealtimeState) => void

/** holds the state; subscribers hear of every change (and only of changes) */
export class RealtimeStore {
  private state: RealtimeState
  private readonly listeners = new Set<Listener>()

  constructor(staleAfterMs: number) {
    this.state = initialState(staleAfterMs)
  }

  getState = (): RealtimeState => this.state

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  update(patch: Patch): void {
    const next = mergeState(this.state, patch)
    if (next === this.state) return
    this.state = next
    for (const l of this.listeners) l(this.state)
  }
}
