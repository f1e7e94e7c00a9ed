/**
 * Every frame the hub writes to a socket goes through here, for three savings.
 *
 * 1. **Pre-framed fan-out.** A broadcast is framed once — WebSocket header + payload in one Buffer,
 *    unmasked, as a server sends it (`frameText`) — and that same Buffer is written to every socket,
 *    instead of `ws.send` framing the same payload again for each socket (a header allocation and a
 *    corked two-buffer write per socket and frame).
 * 2. **One write in flight per socket** (Engine.IO's way). While a socket's previous write has not
 *    completed (nor the tick it completed in ended), further frames are queued; then everything queued is
 *    written in one call (one buffer). On a busy machine this means fewer, larger writes instead of one
 *    system call per frame and socket. The caller's slow-consumer rules see the queue: `buffered()` counts it.
 * 3. **No stream machinery per frame.** A frame goes straight into the socket's stream handle when the
 *    socket's Writable holds nothing (see FrameWriter), without a `process.nextTick` per write.
 *
 * Ordering: frames go onto the same socket as the ping and close frames ws writes itself, in call order
 * (the handle's write queue is FIFO, and the direct call is skipped while the Writable holds anything);
 * nothing is written once the socket is no longer OPEN (no data after a close frame). When ws's Sender is
 * busy (compressing or reading a Blob: never the case here, permessage-deflate is off and we send no
 * Blobs) the frame goes through `ws.send` and ws's own queue instead.
 *
 * Internals used. ws 8.23.0 (lib/sender.js and lib/websocket.js): `Sender.frame(data, options)` (static,
 * public in the ESM wrapper), `ws._sender` with `_state` (0 = DEFAULT), and `ws._socket` (the net.Socket).
 * Node (lib/net.js, unchanged from Node 12 to 24): `net.Socket.prototype._writeGeneric(writev, data,
 * encoding, cb)`. Checked at run time: without `_writeGeneric` frames take `socket.write`, without ws's
 * internals every frame takes `ws.send`.
 */
import * as wsModule from 'ws'
import type { WebSocket } from 'ws'

const OPEN = 1
/** ws 8.x Sender state: DEFAULT (not deflating, not reading a Blob) */
const SENDER_DEFAULT = 0

interface SenderInternals {
  _state: number
}
interface SocketInternals {
  write(chunk: Buffer, cb?: (err?: Error | null) => void): boolean
  destroy(err?: Error): void
  readonly writableLength: number
  readonly writableCorked: number
  /** net.Socket's write into its stream handle (lib/net.js, Node 20 and 24): `cb` runs inside the call when the kernel takes it all */
  _writeGeneric?: (writev: boolean, data: Buffer, encoding: string, cb: (err?: Error | null) => void) => void
}
/** ws's private fields this module writes through (ws 8.23.0) */
type WsInternals = WebSocket & { _sender?: SenderInternals; _socket?: SocketInternals }

/** ws's Sender class (exported by ws's ESM entry; @types/ws does not declare it). Checked with ws 8.23.0, @types/ws 8.18.2. */
const FrameOf = (wsModule as unknown as { Sender: unknown }).Sender as {
  frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[]
}
const TEXT_OPTIONS = { fin: true, opcode: 0x01, mask: false, readOnly: false, rsv1: false }
const SEND_OPTIONS = { binary: false, compress: false, fin: true } as const

/** a complete server-to-client text frame (FIN, opcode 1, unmasked, no extension bits) of `payload` */
export function frameText(payload: Buffer | string): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload
  const parts = FrameOf.frame(data, TEXT_OPTIONS)
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, parts[0]!.length + data.length)
}

/** the header length of a frame built by frameText (2, 4 or 10 bytes) */
function headerLength(frame: Buffer): number {
  const len = frame[1]! & 0x7f
  return len < 126 ? 2 : len === 126 ? 4 : 10
}

/** FrameWriter.write's answers */
export const WRITTEN = 1
/** the socket is not open: the frame was dropped */
export const DROPPED = 0
/** the socket already owes more than the cap: the frame was not written (the caller collapses the socket) */
export const OVER_CAP = -1

/**
 * The tick clock: a write the kernel took at once holds its socket's gate until `tick` changes, at the end
 * of the current tick (one shared nextTick, scheduled by the first such write). Writers that queued frames
 * meanwhile are on `reopening` and write them then; the others have nothing to do and are not visited.
 */
let tick = 0
let tickScheduled = false
let reopening: FrameWriter[] = []
function endTick(): void {
  tick++
  tickScheduled = false
  if (reopening.length === 0) return
  const list = reopening
  reopening = []
  for (let i = 0; i < list.length; i++) list[i]!.reopen()
}

/**
 * The write state of one socket: created on its first frame, one per socket, with one completion
 * callback (never a closure per write).
 *
 * Per frame, on the path every broadcast takes for every socket, it costs one call into the socket's
 * stream handle, `socket._writeGeneric(false, frame, 'buffer', done)` — the call net.Socket's own
 * `_write` makes once the Writable machinery has decided to write — and, while nothing of ours is in
 * flight, no buffered-bytes reading at all (everything written before has been taken by the kernel, so
 * the only bytes the socket can owe are ws's own ping/pong/close frames, ≤ 131 bytes each). What that
 * skips, per frame and socket: `Writable.write`'s checks and state, `onwrite`, and the `process.nextTick`
 * (one TickObject) every completed write schedules for its callback. The direct call is taken only when
 * the Writable holds nothing (`writableLength === 0`): then no frame of ws's own is waiting in it, and
 * the handle's write queue (libuv, FIFO) keeps our frames and ws's in call order. Otherwise (or while the
 * socket is corked) the frame goes through `socket.write`, behind what waits. A write the kernel takes at
 * once completes inside the call; the gate still stays closed until the end of the tick (the tick clock
 * above: one shared nextTick, and only writers that queued something are visited), so frames of several
 * broadcasts in the same tick are still written together.
 */
export class FrameWriter {
  private inFlight = false
  /** inside our direct write call: a completion now is synchronous */
  private sync = false
  private queue: Buffer[] = []
  private queuedBytes = 0
  /** bytes of our direct write the kernel has not taken yet (the Writable does not count them) */
  private pendingBytes = 0
  /** the tick in which our last write completed at once: the gate is closed until that tick ends */
  private heldAt = -1
  /** the completion of our write in flight */
  private readonly done = (err?: Error | null): void => {
    this.pendingBytes = 0
    if (err) {
      // what the Writable does on a failed write: the socket is destroyed (ws then closes the WebSocket)
      this.inFlight = false
      this.queue.length = 0
      this.queuedBytes = 0
      ;(this.ws as WsInternals)._socket?.destroy(err)
      return
    }
    this.inFlight = false
    if (!this.sync) return this.reopen()
    // taken at once: the gate stays closed to the end of this tick (`heldAt`), no per-socket work then
    this.heldAt = tick
    if (!tickScheduled) {
      tickScheduled = true
      process.nextTick(endTick)
    }
  }

  constructor(private readonly ws: WebSocket) {}

  /** bytes not yet taken by the kernel: ws's own buffer, our write in flight and the frames queued here */
  buffered(): number {
    return this.ws.bufferedAmount + this.pendingBytes + this.queuedBytes
  }

  /** frames queued behind the write in flight */
  get queued(): number {
    return this.queue.length
  }

  /**
   * Write one frame built by frameText: WRITTEN, DROPPED (the socket is not open) or, when the socket
   * already owes more than `cap` bytes (`buffered()`), OVER_CAP without writing it.
   */
  write(frame: Buffer, cap = Infinity): number {
    const ws = this.ws as WsInternals
    if (ws.readyState !== OPEN) return DROPPED
    if (this.inFlight || this.heldAt === tick) {
      if (this.buffered() > cap) return OVER_CAP
      // held to the end of the tick: the tick's end writes the queue (an async completion does it otherwise)
      if (!this.inFlight && this.queue.length === 0) reopening.push(this)
      this.queue.push(frame)
      this.queuedBytes += frame.length
      return WRITTEN
    }
    const sender = ws._sender
    const socket = ws._socket
    if (!sender || !socket || sender._state !== SENDER_DEFAULT || typeof socket.write !== 'function') {
      // ws is busy with a frame of its own (or its internals changed): its queue keeps the order
      if (ws.bufferedAmount > cap) return OVER_CAP
      ws.send(frame.subarray(headerLength(frame)), SEND_OPTIONS)
      return WRITTEN
    }
    // nothing of ours in flight: no need to read the socket's buffer (see the class comment)
    this.send(socket, frame)
    return WRITTEN
  }

  /**
   * Write the queued frames now, without waiting for the write in flight: before a close frame, so
   * what was sent before the close arrives before it. The gate stays closed until this write completes.
   */
  flush(): void {
    const ws = this.ws as WsInternals
    if (this.queue.length === 0 || ws.readyState !== OPEN) return
    this.writeQueued(ws)
  }

  /** the write in flight is done (or its tick ended): what was queued meanwhile goes out together */
  reopen(): void {
    const ws = this.ws as WsInternals
    if (this.inFlight) return // flushed meanwhile: that write's completion comes back here
    if (ws.readyState !== OPEN || this.queue.length === 0) {
      // closed or closing: nothing more goes out (never data after a close frame)
      if (this.queue.length !== 0) {
        this.queue.length = 0
        this.queuedBytes = 0
      }
      return
    }
    this.writeQueued(ws)
  }

  private send(socket: SocketInternals, data: Buffer): void {
    this.inFlight = true
    // the Writable empty and not corked: nothing of ws's (nor a corked burst) waits, we may go first
    if (socket.writableLength === 0 && socket.writableCorked === 0 && typeof socket._writeGeneric === 'function') {
      this.pendingBytes = data.length
      this.sync = true
      try {
        socket._writeGeneric(false, data, 'buffer', this.done)
      } finally {
        this.sync = false
      }
    } else socket.write(data, this.done)
  }

  /** everything queued, in one write; its completion opens the gate */
  private writeQueued(ws: WsInternals): void {
    const frames = this.queue
    const bytes = this.queuedBytes
    this.queue = []
    this.queuedBytes = 0
    const sender = ws._sender!
    if (sender._state !== SENDER_DEFAULT) {
      this.inFlight = false
      for (const f of frames) ws.send(f.subarray(headerLength(f)), SEND_OPTIONS)
      return
    }
    this.send(ws._socket!, frames.length === 1 ? frames[0]! : Buffer.concat(frames, bytes))
  }
}
