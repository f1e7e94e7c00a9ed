/**
 * Reference 2: a Socket.IO 4 server restricted to its websocket transport, in its own process.
 * Same feed and same frame object as ref-ws.ts; broadcast with `io.emit('data_update', frame)`
 * (Socket.IO encodes a broadcast once and writes it to every client).
 * env: PORT, FEED_URL. Tells its parent {ready, port} over IPC.
 */
import { createServer } from 'node:http'
import { Server } from 'socket.io'
import { subscribeFeed, tickerSnapshot, TICKER_TOPIC } from '../lib/feed.ts'

const port = Number(process.env.PORT ?? 0)
const feedUrl = process.env.FEED_URL
const server = createServer()
const io = new Server(server, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: 16 * 1024,
})

let seq = 0
const epoch = Date.now()
let broadcasts = 0
let fanoutSeconds = 0
if (feedUrl) {
  subscribeFeed(feedUrl, [TICKER_TOPIC], (topic, data) => {
    if (topic !== TICKER_TOPIC) return
    const t0 = process.hrtime.bigint()
    io.emit('data_update', {
      type: 'data_update',
      channel: 'ticker',
      epoch,
      seq: ++seq,
      sourceTs: data?.time ?? Date.now(),
      ts: Date.now(),
      source: 'simulator',
      data: tickerSnapshot(data ?? {}),
    })
    fanoutSeconds += Number(process.hrtime.bigint() - t0) / 1e9
    broadcasts++
  })
}

process.on('message', (m: any) => {
  if (m?.op === 'stats') process.send?.({ id: m.id, clients: io.engine.clientsCount, broadcasts, seq, fanoutSeconds, fanouts: broadcasts })
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
server.listen(port, '127.0.0.1', 4096, () => {
  const a = server.address()
  process.send?.({ ready: true, port: typeof a === 'object' && a ? a.port : port })
})
