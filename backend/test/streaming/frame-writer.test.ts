/**
 * frame-writer.ts on real sockets: a ws server on a listening port and ws clients, no mocks.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { DROPPED, FrameWriter, OVER_CAP, WRITTEN, frameText } from '../../streaming/frame-writer.ts'

async function pair(t: Test): Promise<{ server: WebSocket; client: WebSocket; received: string[]; closed: Promise<[number, string]> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false })
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate()
        wss.close(() => r())
      }),
  )
  await once(wss, 'listening')
  const port = (wss.address() as AddressInfo).port
  const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false })
  const received: string[] = []
  client.on('message', (d, isBinary) => {
    received.push(isBinary ? '<binary>' : d.toString())
  })
  const closed = new Promise<[number, string]>((r) => client.once('close', (code, reason) => r([code, reason.toString()])))
  const [server] = (await once(wss, 'connection')) as [WebSocket]
  await once(client, 'open')
  return { server, client, received, closed }
}

/** waits for `cond`, failing the test when it does not hold within `ms` */
async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

t.test('frameText builds the frame ws would send, for each header size', async (t) => {
  const { server, received } = await pair(t)
  const w = new FrameWriter(server)
  const texts = ['hi', 'é'.repeat(100), 'x'.repeat(70_000), '']
  for (const s of texts) {
    w.write(frameText(s))
    await until(() => received.length === texts.indexOf(s) + 1, `frame ${texts.indexOf(s)}`)
  }
  t.same(received, texts, 'short (7-bit), 16-bit and 64-bit lengths, UTF-8 and empty payloads arrive intact as text')
  t.same([...frameText('hi')], [0x81, 2, 0x68, 0x69], 'FIN + text opcode, unmasked, length, payload')
})

t.test('one write in flight: frames queued meanwhile go out together, in order', async (t) => {
  const { server, received } = await pair(t)
  const w = new FrameWriter(server)
  // every write into the socket's handle, by the Writable (_write, _writev) or directly, goes through _writeGeneric
  const socket = (server as unknown as { _socket: { _writeGeneric: unknown } })._socket
  let writeCalls = 0
  const orig = socket._writeGeneric as (...a: unknown[]) => unknown
  socket._writeGeneric = function (this: unknown, ...a: unknown[]) {
    writeCalls++
    return orig.apply(this, a)
  }
  for (let i = 0; i < 50; i++) w.write(frameText(`m${i}`))
  t.equal(w.queued, 49, 'the first frame is written, the next 49 wait for it')
  t.ok(w.buffered() >= 49 * 4, 'buffered() counts the queued bytes')
  await until(() => received.length === 50, 'all 50 frames')
  t.same(
    received,
    Array.from({ length: 50 }, (_, i) => `m${i}`),
    'every frame arrives, in order',
  )
  t.equal(w.queued, 0, 'queue empty once written')
  t.ok(writeCalls <= 3, `the 49 queued frames took one write, not 49 (${writeCalls} socket writes in all)`)
  w.write(frameText('later'))
  await until(() => received.length === 51, 'a later frame')
  t.equal(received[50], 'later', 'the gate reopens after the write completes')
})

t.test('ws.send and pings interleave safely; nothing is written after the close frame', async (t) => {
  const { server, client, received, closed } = await pair(t)
  const w = new FrameWriter(server)
  let pings = 0
  client.on('ping', () => {
    pings++
  })
  w.write(frameText('a'))
  server.ping()
  w.write(frameText('b'))
  server.send('c')
  await until(() => received.length === 3 && pings === 1, 'frames and ping')
  t.same(received.slice().sort(), ['a', 'b', 'c'], 'pre-framed frames and ws.send frames all arrive')
  t.equal(pings, 1, 'the ping arrives')

  // queued frames flushed before the close frame, none written after it
  w.write(frameText('d'))
  w.write(frameText('e (queued)'))
  t.equal(w.queued, 1, 'one frame waits behind the write in flight')
  w.flush()
  server.close(4008, 'slow consumer')
  t.equal(w.write(frameText('after close')), DROPPED, 'a write after close is refused')
  const [code, reason] = await closed
  t.same([code, reason], [4008, 'slow consumer'], 'the close frame arrives')
  t.same(received.slice(3), ['d', 'e (queued)'], 'the frames written before close arrive before it, nothing after it')
})

t.test('the cap: checked against the bytes owed while a write is in flight, never a partial frame', async (t) => {
  const { server, received } = await pair(t)
  const w = new FrameWriter(server)
  const big = frameText('x'.repeat(1000))
  t.equal(w.write(big, 10), WRITTEN, 'nothing in flight: written whatever the cap (the kernel took everything before)')
  t.equal(w.write(big, 5000), WRITTEN, 'in flight, 1 frame queued: under the cap')
  t.equal(w.write(big, 5000), WRITTEN, 'in flight, 2 frames queued: still under the cap')
  t.ok(w.buffered() > 2000, `buffered() counts the queue (${w.buffered()} B)`)
  t.equal(w.write(big, 2000), OVER_CAP, 'over the cap: refused')
  t.equal(w.queued, 2, 'the refused frame was not queued')
  await until(() => received.length === 3, 'the 3 written frames')
  t.equal(w.write(big, 10), WRITTEN, 'once the writes completed, the gate is open again')
  await until(() => received.length === 4, 'the 4th frame')
  t.ok(
    received.every((r) => r.length === 1000),
    'each frame arrived whole',
  )
})

t.test('straight into the stream handle when the Writable is empty; behind it otherwise', async (t) => {
  const { server, client, received } = await pair(t)
  const events: string[] = []
  client.on('ping', () => events.push('ping'))
  client.on('message', (d) => events.push(d.toString()))
  const w = new FrameWriter(server)
  const socket = (server as unknown as { _socket: { _write: unknown; _writev: unknown; cork(): void; uncork(): void } })._socket
  let viaWritable = 0
  for (const k of ['_write', '_writev'] as const) {
    const orig = socket[k] as (...a: unknown[]) => unknown
    socket[k] = function (this: unknown, ...a: unknown[]) {
      viaWritable++
      return orig.apply(this, a)
    }
  }
  t.equal(w.write(frameText('x1')), WRITTEN)
  t.equal(viaWritable, 0, 'an idle socket: the frame skipped the Writable')
  t.equal(w.write(frameText('x2')), WRITTEN)
  t.equal(w.queued, 1, 'the gate stays closed until the end of the tick, so same-tick frames are written together')
  await until(() => received.length === 2, 'x1, x2')
  t.same(received, ['x1', 'x2'], 'in order')

  // ws's own ping held in the Writable (corked): our frame must not overtake it
  socket.cork()
  server.ping()
  t.equal(w.write(frameText('y')), WRITTEN)
  socket.uncork()
  await until(() => events.length === 4, 'ping and y')
  t.same(events, ['x1', 'x2', 'ping', 'y'], 'the frame went out behind the ping the Writable held')
  t.ok(viaWritable >= 1, 'and through the Writable')

  // a corked socket (the post-auth burst) holds our frame too, until it is uncorked
  await new Promise((r) => setImmediate(r))
  const before = viaWritable
  socket.cork()
  t.equal(w.write(frameText('z')), WRITTEN)
  t.equal(viaWritable, before, 'nothing written while corked')
  socket.uncork()
  await until(() => received.length === 4, 'z')
  t.equal(received[3], 'z', 'the corked frame arrives')
  t.ok(viaWritable > before, 'written by the Writable at uncork')
})
