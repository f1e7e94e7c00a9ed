/**
 * The upstream feed of the reference servers: the same LN Markets Stream v1 (JSON-RPC 2.0) socket the
 * gateway subscribes to, so the bare-ws and Socket.IO references receive the same bytes at the same rate.
 */
import WebSocket from 'ws'

export const TICKER_TOPIC = 'futures/inverse/btc_usd/ticker'

export interface StreamTicker {
  time?: number
  lastPrice?: number
  index?: number
  funding?: { rate?: number; time?: number }
  prices?: Array<{ minSize: number; maxSize: number; bidPrice: number; askPrice: number }>
  bidPrice?: number
  askPrice?: number
  fundingRate?: number
  fundingTime?: string | number
}

export interface Feed {
  close(): void
  connected(): boolean
}

export function subscribeFeed(url: string, topics: string[], onData: (topic: string, data: any, rawBytes: number) => void): Feed {
  let ws: WebSocket | null = null
  let closed = false
  let up = false
  let retries = 0
  const open = () => {
    if (closed) return
    ws = new WebSocket(url, { perMessageDeflate: false })
    ws.on('open', () => {
      up = true
      retries = 0
      ws?.send(JSON.stringify({ jsonrpc: '2.0', id: 'sub1', method: 'subscribe', params: { topics } }))
    })
    ws.on('message', (buf: Buffer) => {
      let m: any
      try {
        m = JSON.parse(buf.toString())
      } catch {
        return
      }
      if (m && m.method === 'subscription' && m.params) onData(String(m.params.topic ?? m.params.channel), m.params.data, buf.length)
    })
    ws.on('error', () => {
      /* close follows */
    })
    ws.on('close', () => {
      up = false
      if (!closed && retries++ < 100) setTimeout(open, 250)
    })
  }
  open()
  return {
    close() {
      closed = true
      try {
        ws?.close()
      } catch {
        /* ignore */
      }
    },
    connected: () => up,
  }
}

/** The ticker snapshot (CONTRACT §6) built from a Stream v1 ticker notification, as the gateway builds it. */
export function tickerSnapshot(d: StreamTicker): {
  index: number
  lastPrice: number
  bidPrice: number
  askPrice: number
  fundingRate: number
  fundingTime: string
} {
  const best = d.prices?.[0]
  const ft = d.funding?.time ?? d.fundingTime
  return {
    index: d.index ?? 0,
    lastPrice: d.lastPrice ?? 0,
    bidPrice: best?.bidPrice ?? d.bidPrice ?? 0,
    askPrice: best?.askPrice ?? d.askPrice ?? 0,
    fundingRate: d.funding?.rate ?? d.fundingRate ?? 0,
    fundingTime: typeof ft === 'number' ? new Date(ft).toISOString() : String(ft ?? ''),
  }
}
