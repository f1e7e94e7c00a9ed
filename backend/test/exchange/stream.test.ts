/** LnmStream against a local JSON-RPC ws server: hello/subscribe, merged ticker, reconnect+resubscribe, dead link, rate. */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Registry } from 'prom-client'
import { WebSocketServer, type WebSocket } from 'ws'
import { createMetrics } from '../../metrics.ts'
import { LnmStream, TOPIC_INDEX, TOPIC_LAST_PRICE, TOPIC_TICKER, type StreamTicker } from '../../exchange/stream.ts'
import { maxPerWindow, tripwire } from './helpers.ts'
import { until } from '../streaming/helpers.ts'

const wire = tripwire()

interface Received {
  method: string
  params: unknown
  at: number
}

async function rpcServer(opts: { answerPing?: () => boolean } = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await once(wss, 'listening')
  const received: Received[] = []
  const sockets = new Set<WebSocket>()
  let connections = 0
  wss.on('connection', (ws) => {
    connections++
    sockets.add(ws)
    ws.on('close', () => sockets.delete(ws))
    ws.on('message', (raw) => {
      const msg = JSON.parse(raw.toString()) as { id: string; method: string; params?: unknown }
      received.push({ method: msg.method, params: msg.params, at: Date.now() })
      const reply = (result: unknown) =>
        ws.send(
          JSON.stringify({ jsonrpc: '2.0', id: msg.id, result, usIn: 1, usOut: 2, usDiff: 1, rateLimit: { remaining: 9, limit: 10 } }),
        )
      if (msg.method === 'hello') return reply({ version: '1.0.0' })
      if (msg.method === 'subscribe') return reply({ subscribed: (msg.params as { topics: string[] }).topics })
      if (msg.method === 'ping') return opts.answerPing?.() === false ? undefined : reply('pong')
      if (msg.method === 'time') return reply({ time: Date.now() })
      ws.send(
        JSON.stringify({
          jsonrpc: '2.0',
          id: msg.id,
          error: { code: -32601, message: 'Method not found', data: { code: 'METHOD_NOT_FOUND' } },
        }),
      )
    })
  })
  const port = (wss.address() as AddressInfo).port
  return {
    url: `ws://127.0.0.1:${port}/v1`,
    received,
    get connections() {
      return connections
    },
    broadcast(topic: string, data: unknown) {
      for (const s of sockets) s.send(JSON.stringify({ jsonrpc: '2.0', method: 'subscription', params: { topic, data } }))
    },
    raw(text: string) {
      for (const s of sockets) s.send(text)
    },
    dropAll() {
      for (const s of sockets) s.terminate()
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.terminate()
        wss.close(() => resolve())
      }),
  }
}

t.test('connects, hello + subscribe, merged ticker, reconnect and resubscribe', async (t) => {
  const server = await rpcServer()
  const metrics = createMetrics(new Registry())
  const stream = new LnmStream({ url: server.url, metrics, reconnect: { baseMs: 50, capMs: 200 } })
  t.teardown(async () => {
    await stream.close()
    await server.close()
  })
  const warns: unknown[] = []
  stream.on('warn', (w) => warns.push(w))
  t.equal(stream.isUp, false, 'down before connect')
  stream.connect()
  await once(stream, 'up')
  t.equal(stream.isUp, true, 'isUp after hello + subscribe')
  t.equal((await metrics.streamConnected.get()).values[0]!.value, 1, 'streamConnected gauge = 1')
  t.same(
    server.received.map((r) => r.method),
    ['hello', 'subscribe'],
    'hello then subscribe',
  )
  t.same(
    (server.received[1]!.params as { topics: string[] }).topics,
    [TOPIC_TICKER, TOPIC_LAST_PRICE, TOPIC_INDEX],
    'ticker, lastPrice and index topics',
  )

  const updates: StreamTicker[] = []
  stream.on('ticker', (u: StreamTicker) => updates.push(u))
  server.broadcast(TOPIC_TICKER, { time: 1000, lastPrice: 67520, index: 67500, funding: { rate: 0.0001, time: Date.UTC(2026, 6, 17, 16) } })
  server.broadcast(TOPIC_LAST_PRICE, { time: 2000, lastPrice: 67600 })
  server.broadcast(TOPIC_INDEX, { time: 3000, index: 67590 })
  server.broadcast(TOPIC_TICKER, { time: 4000, lastPrice: null, index: null, funding: { rate: null, time: null } })
  server.raw('not json')
  server.broadcast(TOPIC_INDEX, { time: 'x', index: 'garbage' })
  // frames are handled in order: once both garbage frames warned, every notification above has been handled
  await until(() => updates.length >= 4 && warns.length >= 2, 3000, 'four updates and two warnings')
  t.equal(updates.length, 4, 'one merged update per valid notification')
  t.same(
    updates[0],
    { index: 67500, lastPrice: 67520, fundingRate: 0.0001, fundingTime: '2026-07-17T16:00:00.000Z', time: 1000 },
    'full ticker',
  )
  t.same(
    updates[1],
    { index: 67500, lastPrice: 67600, fundingRate: 0.0001, fundingTime: '2026-07-17T16:00:00.000Z', time: 2000 },
    'lastPrice merged',
  )
  t.same(updates[2], { ...updates[1], index: 67590, time: 3000 }, 'index merged')
  t.same(updates[3], { ...updates[2], time: 4000 }, 'nulls do not erase known values')
  t.equal(warns.length, 2, 'garbage frames produce warnings, not crashes')

  const down = once(stream, 'down')
  server.dropAll()
  await down
  t.equal(stream.isUp, false, 'isUp false after the drop')
  t.equal((await metrics.streamConnected.get()).values[0]!.value, 0, 'gauge = 0')
  await once(stream, 'up')
  t.equal(server.connections, 2, 'reconnected')
  t.equal(server.received.filter((r) => r.method === 'subscribe').length, 2, 'resubscribed after reconnect')

  await stream.close()
  const before = server.connections
  await sleep(300) // proves no reconnect within 300 ms of close()
  t.equal(server.connections, before, 'no reconnect after close()')
})

t.test('reconnects with backoff while the server is unreachable', async (t) => {
  const server = await rpcServer()
  const url = server.url
  await server.close()
  const stream = new LnmStream({ url, reconnect: { baseMs: 30, capMs: 100 } })
  t.teardown(() => stream.close())
  stream.connect()
  await sleep(400) // proves it stays down (and alive) over several reconnect attempts
  t.equal(stream.isUp, false, 'stays down, no crash')
})

t.test('ping: no pong within the timeout → link declared dead, reconnect', async (t) => {
  let answer = true
  const server = await rpcServer({ answerPing: () => answer })
  const stream = new LnmStream({ url: server.url, pingIntervalMs: 100, pongTimeoutMs: 150, reconnect: { baseMs: 50, capMs: 100 } })
  t.teardown(async () => {
    await stream.close()
    await server.close()
  })
  stream.connect()
  await once(stream, 'up')
  await until(() => server.received.filter((r) => r.method === 'ping').length >= 2, 3000, 'two JSON-RPC pings')
  t.ok(server.received.filter((r) => r.method === 'ping').length >= 2, 'JSON-RPC ping sent periodically')
  t.equal(stream.isUp, true, 'answered pings keep the link up')
  answer = false
  const [reason] = await once(stream, 'down')
  t.ok(String(reason).length > 0, `down with a reason (${reason})`)
  answer = true
  await once(stream, 'up')
  t.equal(server.connections, 2, 'reconnected after the dead link')
})

t.test('requests: matched by id, RPC errors typed, timeout, and ≤ maxMsgsPerSec outgoing', async (t) => {
  const server = await rpcServer()
  const stream = new LnmStream({ url: server.url, requestTimeoutMs: 200, maxMsgsPerSec: 8 })
  t.teardown(async () => {
    await stream.close()
    await server.close()
  })
  stream.connect()
  await once(stream, 'up')
  const tm = (await stream.request('time')) as { time: number }
  t.ok(typeof tm.time === 'number', 'time result matched by id')
  await t.rejects(stream.request('nope'), { code: 'METHOD_NOT_FOUND' }, 'RPC error → StreamRpcError with data.code')
  const t0 = Date.now()
  await Promise.all(Array.from({ length: 16 }, () => stream.request('ping')))
  const pings = server.received.filter((r) => r.method !== 'hello' && r.method !== 'subscribe').map((r) => r.at)
  t.ok(maxPerWindow(pings) <= 8, `at most 8 messages in any 1 s window (max ${maxPerWindow(pings)})`)
  t.ok(Date.now() - t0 >= 900, 'the burst was spread out instead of being sent at once')
})

t.test('no uncaught exceptions or unhandled rejections', async (t) => {
  await sleep(50) // proves no late exception or rejection surfaces within 50 ms of the last test
  wire.stop()
  t.same(wire.seen.map(String), [], 'tripwire saw nothing')
})
