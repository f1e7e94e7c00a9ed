/**
 * Reference 1: a bare `ws` broadcast server (the ws README's broadcast idiom), in its own process.
 * It subscribes to the same Stream v1 ticker feed as the gateway and, per notification, serializes one
 * data_update frame (same shape as the gateway's) once and sends that buffer to every open client.
 * env: PORT, FEED_URL. Tells its parent {ready, port} over IPC.
 */
import { createServer } from 'node:http'
import { WebSocketServer, WebSocket } from 'ws'
import { subscribeFeed, tickerSnapshot, TICKER_TOPIC } from '../lib/feed.ts'

const port = Number(process.env.PORT ?? 0)
const feedUrl = process.env.FEED_URL
const server = createServer((_req, res) => { res.writeHead(404).end() })
const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false, maxPayload: 16 * 1024 })
wss.on('connection', (ws) => { ws.on('error', () => ws.terminate()) })

let seq = 0
const epoch = Date.now()
let broadcasts = 0
let fanoutSeconds = 0
if (feedUrl) {
  subscribeFeed(feedUrl, [TICKER_TOPIC], (topic, data) => {
    if (topic !== TICKER_TOPIC) return
    const t0 = process.hrtime.bigint()
    const frame = Buffer.from(JSON.stringify({
      type: 'data_update', channel: 'ticker', epoch, seq: ++seq, sourceTs: data?.time ?? Date.now(), ts: Date.now(), source: 'simulator', data: tickerSnapshot(data ?? {}),
    }))
    for (const c of wss.clients) if (c.readyState === WebSocket.OPEN) c.send(frame, { binary: false })
    fanoutSeconds += Number(process.hrtime.bigint() - t0) / 1e9
    broadcasts++
  })
}

process.on('message', (m: any) => {
  if (m?.op === 'stats') process.send?.({ id: m.id, clients: wss.clients.size, broadcasts, seq, fanoutSeconds, fanouts: broadcasts })
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
server.listen(port, '127.0.0.1', 4096, () => {
  const a = server.address()
  process.send?.({ ready: true, port: typeof a === 'object' && a ? a.port : port })
})
