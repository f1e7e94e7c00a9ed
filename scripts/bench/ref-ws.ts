/**
 * Reference 1: a bare `ws` broadcast server (the ws README's broadcast idiom), in its own process.
 * It subscribes to the same Stream v1 ticker feed as the gateway and, per notification, serializes one
 * data_update frame (same shape as the gateway's) once and sends that buffer to every open client.
 * env: PORT, FEED_URL. Tells its parent {ready, port} over IPC.
 */
import { createServer } from 'node:http'
import { WebSocketServer, WebSocket } from 'ws'
import { subscribeFeed, tickerSnapshot, TICKER_TOPIC } from '../lib/feed.ts'
import { FrameWriter, frameText } from '../../backend/streaming/frame-writer.ts'

const port = Number(process.env.PORT ?? 0)
/**
 * Experiment, not the reference (GATED=batch|conflate): at most one write in flight per socket, as Engine.IO
 * does; frames that arrive meanwhile are written together once it completes (batch) or only the latest (conflate).
 */
const gated = process.env.GATED as 'batch' | 'conflate' | 'framewriter' | undefined
/** GATED=framewriter: the gateway's own writer (backend/streaming/frame-writer.ts): pre-framed, one write in flight */
const kWriter = Symbol('writer')
const kBusy = Symbol('busy')
const kQueue = Symbol('queue')
type Gated = WebSocket & { [kBusy]?: boolean; [kQueue]?: Buffer[] }
function gatedSend(c: Gated, frames: Buffer[]): void {
  c[kBusy] = true
  const sock = (c as unknown as { _socket: { cork(): void; uncork(): void } })._socket
  if (frames.length > 1) sock.cork()
  for (let i = 0; i < frames.length; i++) c.send(frames[i]!, { binary: false }, i === frames.length - 1 ? () => onWritten(c) : undefined)
  if (frames.length > 1) sock.uncork()
}
function onWritten(c: Gated): void {
  c[kBusy] = false
  const q = c[kQueue]
  if (q && q.length && c.readyState === WebSocket.OPEN) {
    c[kQueue] = []
    gatedSend(c, q)
  }
}
const feedUrl = process.env.FEED_URL
const server = createServer((_req, res) => {
  res.writeHead(404).end()
})
const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false, maxPayload: 16 * 1024 })
wss.on('connection', (ws) => {
  ws.on('error', () => ws.terminate())
})

let seq = 0
const epoch = Date.now()
let broadcasts = 0
let fanoutSeconds = 0
if (feedUrl) {
  subscribeFeed(feedUrl, [TICKER_TOPIC], (topic, data) => {
    if (topic !== TICKER_TOPIC) return
    const t0 = process.hrtime.bigint()
    const frame = Buffer.from(
      JSON.stringify({
        type: 'data_update',
        channel: 'ticker',
        epoch,
        seq: ++seq,
        sourceTs: data?.time ?? Date.now(),
        ts: Date.now(),
        source: 'simulator',
        data: tickerSnapshot(data ?? {}),
      }),
    )
    if (gated === 'framewriter') {
      const framed = frameText(frame)
      for (const c of wss.clients as Set<WebSocket & { [kWriter]?: FrameWriter }>) {
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- an optional symbol-keyed property can be absent; with exactOptionalPropertyTypes the rule misses that (typescript-eslint#10440)
        if (c.readyState === WebSocket.OPEN) (c[kWriter] ??= new FrameWriter(c)).write(framed)
      }
    } else if (gated) {
      for (const c of wss.clients as Set<Gated>) {
        if (c.readyState !== WebSocket.OPEN) continue
        if (c[kBusy]) {
          if (gated === 'conflate') c[kQueue] = [frame]
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- an optional symbol-keyed property can be absent; with exactOptionalPropertyTypes the rule misses that (typescript-eslint#10440)
          else (c[kQueue] ??= []).push(frame)
        } else gatedSend(c, [frame])
      }
    } else {
      for (const c of wss.clients) if (c.readyState === WebSocket.OPEN) c.send(frame, { binary: false })
    }
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
