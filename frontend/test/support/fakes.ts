/**
 * Fakes shared by the dashboard's unit tests: a WebSocket class to pass as `WebSocketImpl` (the test plays the
 * server's side) and a /api/dashboard body with one account channel.
 */
import type { DashboardResponse } from '../../../backend/schemas/ws-protocol.ts'

export class FakeWebSocket {
  /** every socket made since the test last emptied this list, in order */
  static instances: FakeWebSocket[] = []
  readyState = 0
  /** the client's messages, parsed */
  sent: Array<Record<string, unknown>> = []
  /** what the client closed it with (null: not closed by the client) */
  closedWith: { code: number; reason: string } | null = null
  onopen: (() => void) | null = null
  onmessage: ((ev: { data: string }) => void) | null = null
  onclose: ((ev: { code: number; reason: string }) => void) | null = null
  onerror: (() => void) | null = null
  constructor(readonly url: string) {
    FakeWebSocket.instances.push(this)
  }
  send(data: string) {
    this.sent.push(JSON.parse(data) as Record<string, unknown>)
  }
  close(code: number, reason = '') {
    this.closedWith = { code, reason }
    this.readyState = 3
  }
  // the server's side
  open() {
    this.readyState = 1
    this.onopen?.()
  }
  receive(frame: unknown) {
    this.onmessage?.({ data: JSON.stringify(frame) })
  }
  /** the server accepts the socket's auth: a `connection` frame */
  accept() {
    this.receive({
      type: 'connection',
      connectionId: 'c',
      userId: 'u',
      serverTime: Date.now(),
      heartbeatMs: 25_000,
      protocol: 1,
      source: 'simulator',
    })
  }
  serverClose(code: number, reason = '') {
    this.readyState = 3
    this.onclose?.({ code, reason })
  }
}

/**
 * A /api/dashboard body at server time `now` whose account channel is at `seq`: fresh, `sourceAgeMs` old at the
 * source (default 100 ms), with the server's stale limit `staleAfterMs` (default 30 s).
 */
export function dashboardBody(
  now: number,
  seq: number,
  { staleAfterMs = 30_000, sourceAgeMs = 100 }: { staleAfterMs?: number; sourceAgeMs?: number } = {},
): DashboardResponse {
  return {
    account: { username: 'demo', balance: 1000 + seq, syntheticUsdBalance: 0, feeTier: 1, equity: 1000 + seq },
    positions: null,
    ticker: null,
    cross: null,
    history: null,
    meta: {
      serverTime: now,
      source: 'simulator',
      staleAfterMs,
      upstream: 'ok',
      lastSuccessTs: now,
      reason: null,
      hasCredentials: true,
      channels: { account: { epoch: 1, seq, sourceTs: now - sourceAgeMs, stale: false } },
    },
  }
}
