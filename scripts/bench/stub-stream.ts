/**
 * A minimal stand-in for the simulator's Stream v1 ticker and its price admin route, used only by the
 * smoke test of the bench machinery (and while the real simulator is unavailable): JSON-RPC `subscribe`
 * on ws://…/v1, `POST /__sim/price {price}` pushes one ticker notification to every subscriber.
 * env: PORT. Tells its parent {ready, port} over IPC.
 */
import { createServer } from 'node:http'
import { WebSocketServer, WebSocket } from 'ws'

const subs = new Set<WebSocket>()
let price = 100_000
let pushes = 0
const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/__sim/price') {
    let body = ''
    req.on('data', (d) => { body += d })
    req.on('end', () => {
      try { price = Number(JSON.parse(body).price) || price } catch { /* keep */ }
      const now = Date.now()
      const msg = JSON.stringify({ jsonrpc: '2.0', method: 'subscription', params: { topic: 'futures/inverse/btc_usd/ticker', data: {
        time: now, lastPrice: price, index: Math.round(price * 100.01) / 100,
        prices: [{ minSize: 0, maxSize: 100000, bidPrice: price - 0.5, askPrice: price + 0.5 }], funding: { rate: 0.0001, time: now + 3600_000 },
      } } })
      for (const s of subs) if (s.readyState === WebSocket.OPEN) s.send(msg)
      pushes++
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
    })
    return
  }
  if (req.url === '/__sim/stats') { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ pushes, subscribers: subs.size })); return }
  res.writeHead(404).end()
})
const wss = new WebSocketServer({ server, path: '/v1', perMessageDeflate: false })
wss.on('connection', (ws) => {
  ws.on('message', (b: Buffer) => {
    let m: any
    try { m = JSON.parse(b.toString()) } catch { return }
    if (m.method === 'subscribe') { subs.add(ws); ws.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { subscribed: m.params?.topics ?? [] } })) }
    else ws.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: null }))
  })
  ws.on('close', () => subs.delete(ws))
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const a = server.address()
  process.send?.({ ready: true, port: typeof a === 'object' && a ? a.port : 0 })
})
