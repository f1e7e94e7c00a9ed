/**
 * A hub on a bare `ws` server (no database, no exchange): fake token verification and a fake producer that
 * publishes on the in-process bus. For protocol, backpressure and close-code tests.
 */
import { WebSocketServer } from 'ws'
import { createMetrics } from '../../metrics.ts'
import { CONTROL_TOPIC, InProcessBus, TICKER_TOPIC, accountTopic, type ControlEvent } from '../../streaming/bus.ts'
import { Hub, type HubOptions, type VerifiedToken } from '../../streaming/hub.ts'

type Tap = { teardown(fn: () => unknown): void }

export class FakeAuthError extends Error {
  constructor(readonly reason: string) {
    super(reason)
  }
}

export interface Harness {
  hub: Hub
  bus: InProcessBus
  url: string
  metrics: ReturnType<typeof createMetrics>
  wss: WebSocketServer
  /** tokens: `tok:<userId>:<expSecondsFromNow>` are valid; anything else is invalid */
  control: ControlEvent[]
  publishAccount(
    userId: string,
    channel: 'account' | 'positions',
    data: unknown,
    o?: { epoch?: number; seq?: number; sourceTs?: number },
  ): void
  publishTicker(data: unknown, o?: { seq?: number; sourceTs?: number }): void
  metric(name: string, labels?: Record<string, string>): Promise<number>
}

export const token = (userId: string, expInS = 600) => `tok:${userId}:${expInS}`

export async function startHub(
  t: Tap,
  over: Partial<HubOptions> & { maxPayload?: number; verify?: HubOptions['verify'] } = {},
): Promise<Harness> {
  const metrics = createMetrics()
  const bus = new InProcessBus()
  const control: ControlEvent[] = []
  bus.subscribe(CONTROL_TOPIC, (e) => control.push(e as ControlEvent))
  const verify =
    over.verify ??
    (async (tok: string): Promise<VerifiedToken> => {
      const m = /^tok:([^:]+):(-?\d+)$/.exec(tok)
      if (!m) throw new FakeAuthError('invalid')
      if (m[1] === 'deleted') throw new FakeAuthError('unknown_user')
      const exp = Math.floor(Date.now() / 1000) + Number(m[2])
      if (Number(m[2]) <= 0) throw new FakeAuthError('expired')
      return { userId: m[1]!, exp, tokenHash: `h:${tok}` }
    })
  const hub = new Hub({
    bus,
    verify,
    source: 'simulator',
    metrics,
    maxConnections: 1000,
    maxConnectionsPerUser: 600,
    authTimeoutMs: 10_000,
    heartbeatMs: 25_000,
    maxBufferedBytes: 1 << 20,
    rateLimitPerSec: 20,
    staleAfterMs: 30_000,
    graceMs: 1000,
    ...over,
  })
  hub.start()
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    maxPayload: over.maxPayload ?? 16384,
    perMessageDeflate: false,
    clientTracking: false,
  })
  wss.on('connection', (ws) => hub.accept(ws))
  await new Promise<void>((r) => wss.once('listening', () => r()))
  const addr = wss.address() as { port: number }
  const seqs = new Map<string, number>()
  const epoch = Date.now()
  t.teardown(async () => {
    await hub.stop()
    await new Promise<void>((r) => wss.close(() => r()))
  })
  return {
    hub,
    bus,
    wss,
    url: `ws://127.0.0.1:${addr.port}`,
    metrics,
    control,
    publishAccount(userId, channel, data, o = {}) {
      const k = `${userId}:${channel}`
      const seq = o.seq ?? (seqs.get(k) ?? 0) + 1
      seqs.set(k, seq)
      bus.publish(accountTopic(userId), {
        kind: 'snapshot',
        channel,
        epoch: o.epoch ?? epoch,
        seq,
        sourceTs: o.sourceTs ?? Date.now(),
        json: JSON.stringify(data),
      })
    },
    publishTicker(data, o = {}) {
      const seq = o.seq ?? (seqs.get('ticker') ?? 0) + 1
      seqs.set('ticker', seq)
      bus.publish(TICKER_TOPIC, {
        kind: 'snapshot',
        channel: 'ticker',
        epoch,
        seq,
        sourceTs: o.sourceTs ?? Date.now(),
        json: JSON.stringify(data),
      })
    },
    async metric(name, labels = {}) {
      const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name)
      if (!m) return 0
      return m.values
        .filter((v) => Object.entries(labels).every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val))
        .reduce((a, v) => a + v.value, 0)
    },
  }
}
