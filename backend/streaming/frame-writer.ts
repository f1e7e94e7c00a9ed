/**
 * Every frame the hub writes to a socket goes through here, for two savings.
 *
 * 1. **Pre-framed fan-out.** A broadcast is framed once — WebSocket header + payload in one Buffer,
 *    unmasked, as a server sends it (`frameText`) — and that same Buffer is written to every socket,
 *    instead of `ws.send` framing the same payload again for each socket (a header allocation and a
 *    corked two-buffer write per socket and frame).
 * 2. **One write in flight per socket** (Engine.IO's way). While a socket's previous write has not
 *    completed, further frames are queued; when it completes, everything queued is written in one
 *    corked call (one `writev`). On a busy machine this means fewer, larger writes instead of one system
 *    call per frame and socket. The caller's slow-consumer rules see the queue: `buffered()` counts it.
 *
 * The frames are written the way ws's Sender writes a ready frame when it is idle (`sendFrame`, the call
 * `ws.send` ends in, is `socket.write(frame, cb)` for a one-part frame): onto the same socket stream in
 * call order, so they stay ordered with the ping and close frames ws writes itself; nothing is written
 * once the socket is no longer OPEN (no data after a close frame). When the Sender is busy (compressing or
 * reading a Blob: never the case here, permessage-deflate is off and we send no Blobs) the frame goes
 * through `ws.send` and ws's own queue instead.
 *
 * ws internals used (ws 8.23.0, lib/sender.js and lib/websocket.js): `Sender.frame(data, options)` (static,
 * public in the ESM wrapper), `ws._sender` with `_state` (0 = DEFAULT), and `ws._socket` (the net.Socket).
 * Checked at run time: if they are missing, every frame takes `ws.send`.
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
  cork(): void
  uncork(): void
  write(chunk: Buffer, cb?: (err?: Error | null) => void): boolean
  destroyed: boolean
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
 * The write state of one socket: created on its first frame, one per socket, with one completion
 * callback (never a closure per write).
 *
 * Per frame, on the path every broadcast takes for every socket, it costs one `socket.write(frame, done)`
 * (what `sender.sendFrame([frame], cb)` does, without the one-element array) and, while nothing of ours is
 * in flight, no buffered-bytes reading at all: everything written before has been taken by the kernel, so
 * the only bytes the socket can owe are ws's own ping/pong/close frames (≤ 131 bytes each).
 */
export class FrameWriter {
  private inFlight = false
  private queue: Buffer[] = []
  private queuedBytes = 0
  /** the completion of our write in flight: the next queued frames go out together */
  private readonly done = (err?: Error | null): void => {
    const ws = this.ws as WsInternals
    if (err || ws.readyState !== OPEN || this.queue.length === 0) {
      // closed or closing: nothing more goes out (never data after a close frame)
      this.inFlight = false
      if (this.queue.length !== 0) {
        this.queue.length = 0
        this.queuedBytes = 0
      }
      return
    }
    this.writeQueued(ws)
  }

  constructor(private readonly ws: WebSocket) {}

  /** bytes not yet taken by the kernel: ws's own buffer plus the frames queued here */
  buffered(): number {
    return this.ws.bufferedAmount + this.queuedBytes
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
    if (this.inFlight) {
      if (this.queuedBytes + ws.bufferedAmount > cap) return OVER_CAP
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
    this.inFlight = true
    socket.write(frame, this.done)
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

  /** everything queued, in one corked write; the last write's completion opens the gate */
  private writeQueued(ws: WsInternals): void {
    const frames = this.queue
    this.queue = []
    this.queuedBytes = 0
    const sender = ws._sender!
    if (sender._state !== SENDER_DEFAULT) {
      this.inFlight = false
      for (const f of frames) ws.send(f.subarray(headerLength(f)), SEND_OPTIONS)
      return
    }
    const socket = ws._socket!
    if (frames.length === 1) {
      socket.write(frames[0]!, this.done)
      return
    }
    socket.cork()
    for (let i = 0; i < frames.length - 1; i++) socket.write(frames[i]!)
    socket.write(frames[frames.length - 1]!, this.done)
    socket.uncork()
  }
}
