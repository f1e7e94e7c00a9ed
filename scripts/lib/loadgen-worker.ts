/**
 * One load-generator process (forked by scripts/lib/loadgen.ts). It holds many WebSocket clients and
 * keeps each as light as it can: `ws` without permessage-deflate, UTF-8 validation off, and no JSON.parse
 * on data frames (channel, epoch, seq, ts and sourceTs are read straight out of the received bytes).
 *
 * Three kinds of server speak to it:
 *  - gateway: /ws, authenticates (first message or Authorization header), ready on the `connection` frame
 *  - ws:      a bare `ws` broadcast server, ready on open
 *  - sio:     a Socket.IO server over its websocket transport, spoken natively (Engine.IO v4 packets:
 *             `0` open → send `40`, ready on `40`, answer `2` with `3`, events arrive as `42[...]`)
 */
import WebSocket from 'ws'
import { Samples } from './stats.ts'

type Kind = 'gateway' | 'ws' | 'sio'

interface ConnectOp {
  op: 'connect'
  id: number
  kind: Kind
  url: string
  count: number
  tokens?: string[]
  /** index of the first connection (so tokens and source addresses spread across workers) */
  offset?: number
  authVia?: 'message' | 'header'
  localAddresses?: string[]
  concurrency?: number
  /** connections per second (0 = as fast as `concurrency` allows) */
  ratePerSec?: number
  timeoutMs?: number
  /** forget the connect times and failures of earlier connect ops */
  reset?: boolean
  /** retries after a retryable refusal (HTTP 503, close 1013, timeout, reset), with backoff, as a dashboard would */
  retries?: number
  /**
   * reconnect a ready socket the server closed (any code but one the client asked for), as the dashboard does:
   * full-jitter backoff over baseMs·2^attempt capped at capMs, at most `attempts` tries per drop
   */
  reconnect?: { attempts: number; baseMs: number; capMs: number }
}

const CH = { a: 0, p: 1, t: 2 } as Record<string, number>
const CH_NAMES = ['account', 'positions', 'ticker']

interface Conn {
  ws: WebSocket
  ready: boolean
  lastSeq: Float64Array
  lastEpoch: Float64Array
}

const conns: Conn[] = []
let measuring = false
const st = {
  frames: 0,
  bytes: 0,
  dataFrames: [0, 0, 0],
  otherFrames: 0,
  statusFrames: 0,
  errorFrames: 0,
  gaps: 0,
  gapEvents: 0,
  dupes: 0,
  closedByCode: {} as Record<string, number>,
  unexpectedCloses: 0,
}
let latTs = new Samples(500_000)
let latSource = new Samples(500_000)
let connectMs = new Samples(200_000)
let failures: Record<string, number> = {}
/** first-attempt refusals that a retry then turned into a connection (or not): by reason */
let retried: Record<string, number> = {}
/** connections that needed at least one retry and then connected */
let connectedAfterRetry = 0
/** server-closed sockets that reconnected (or gave up), and when the last one came back (wall ms) */
const reconnects = { started: 0, done: 0, failed: 0, lastDoneAt: 0 }
let closing = false
let firstFrameAt = 0
let lastFrameAt = 0
let lastAnyFrameAt = 0
let measureStartedAt = 0
let measureEndedAt = 0

const K_DU = Buffer.from('"data_update"')
const K_CH = Buffer.from('"channel":"')
const K_SEQ = Buffer.from('"seq":')
const K_TS = Buffer.from('"ts":')
const K_SRC = Buffer.from('"sourceTs":')
const K_EPOCH = Buffer.from('"epoch":')

function numAfter(buf: Buffer, key: Buffer): number {
  const i = buf.indexOf(key)
  if (i < 0) return NaN
  let j = i + key.length
  let neg = false
  if (buf[j] === 45) {
    neg = true
    j++
  }
  let v = 0
  let c = buf[j]
  while (c! >= 48 && c! <= 57) {
    v = v * 10 + (c! - 48)
    c = buf[++j]
  }
  if (c === 46) {
    // fractional ms
    let f = 0.1
    c = buf[++j]
    while (c! >= 48 && c! <= 57) {
      v += (c! - 48) * f
      f /= 10
      c = buf[++j]
    }
  }
  return neg ? -v : v
}

const nowMs = () => performance.timeOrigin + performance.now()

function onData(c: Conn, buf: Buffer): void {
  // data_update frames: the hot path, no JSON.parse
  const du = buf.indexOf(K_DU)
  if (du >= 0 && du < 40) {
    lastAnyFrameAt = performance.now()
    if (!measuring) {
      trackSeq(c, buf, false)
      return
    }
    const t = nowMs()
    st.frames++
    st.bytes += buf.length
    if (firstFrameAt === 0) firstFrameAt = t
    lastFrameAt = t
    const ch = trackSeq(c, buf, true)
    if (ch >= 0) st.dataFrames[ch]!++
    const ts = numAfter(buf, K_TS)
    if (ts > 0) latTs.add(t - ts)
    const src = numAfter(buf, K_SRC)
    if (src > 0) latSource.add(t - src)
    return
  }
  if (measuring) {
    st.frames++
    st.bytes += buf.length
    st.otherFrames++
  }
}

function trackSeq(c: Conn, buf: Buffer, count: boolean): number {
  const ci = buf.indexOf(K_CH)
  if (ci < 0) return -1
  const ch = CH[String.fromCharCode(buf[ci + K_CH.length]!)]
  if (ch === undefined) return -1
  const seq = numAfter(buf, K_SEQ)
  const epoch = numAfter(buf, K_EPOCH)
  if (!Number.isFinite(seq)) return ch
  const last = c.lastSeq[ch]
  if (last! >= 0 && c.lastEpoch[ch] === epoch && count) {
    if (seq > last! + 1) {
      st.gaps += seq - last! - 1
      st.gapEvents++
    } else if (seq <= last!) st.dupes++
  }
  c.lastSeq[ch] = seq
  c.lastEpoch[ch] = Number.isFinite(epoch) ? epoch : 0
  return ch
}

function fail(reason: string): void {
  failures[reason] = (failures[reason] ?? 0) + 1
}

const RETRYABLE = /^(HTTP 503|HTTP 429|closed 1013|closed 1001|timeout|error: (ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT))/

/** full-jitter backoff as the dashboard's (frontend/src/lib/frame-policy.ts backoffDelay) */
const fullJitter = (attempt: number, baseMs: number, capMs: number) =>
  Math.floor(Math.random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30)))

async function openOne(op: ConnectOp, index: number): Promise<boolean> {
  const t0 = nowMs()
  const max = op.retries ?? 0
  for (let attempt = 0; ; attempt++) {
    const reason = await attemptOne(op, index, t0)
    if (reason === null) {
      if (attempt > 0) connectedAfterRetry++
      return true
    }
    if (attempt >= max || !RETRYABLE.test(reason) || closing) {
      fail(reason)
      return false
    }
    retried[reason] = (retried[reason] ?? 0) + 1
    const delay = op.reconnect
      ? fullJitter(attempt + 1, op.reconnect.baseMs, op.reconnect.capMs)
      : Math.min(5000, 500 * 2 ** attempt) * (0.5 + Math.random())
    await new Promise((r) => setTimeout(r, delay))
  }
}

/** a ready socket the server dropped: come back like a dashboard (first try after fullJitter(0)) */
async function reopen(op: ConnectOp, index: number): Promise<void> {
  const rc = op.reconnect as NonNullable<ConnectOp['reconnect']>
  reconnects.started++
  await new Promise((r) => setTimeout(r, fullJitter(0, rc.baseMs, rc.capMs)))
  if (closing) {
    reconnects.failed++
    return
  }
  const ok = await openOne({ ...op, retries: rc.attempts }, index)
  if (ok) {
    reconnects.done++
    reconnects.lastDoneAt = nowMs()
  } else reconnects.failed++
}

/** one connection attempt: null when ready, else the reason it failed */
function attemptOne(op: ConnectOp, index: number, t0: number): Promise<string | null> {
  return new Promise((resolve) => {
    const token = op.tokens && op.tokens.length ? op.tokens[index % op.tokens.length] : undefined
    const headers: Record<string, string> = {}
    if (op.kind === 'gateway' && token && op.authVia === 'header') headers.authorization = `Bearer ${token}`
    const localAddress = op.localAddresses && op.localAddresses.length ? op.localAddresses[index % op.localAddresses.length] : undefined
    let ws: WebSocket
    try {
      ws = new WebSocket(op.url, {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        handshakeTimeout: op.timeoutMs ?? 15_000,
        headers,
        localAddress,
        maxPayload: 16 * 1024 * 1024,
      })
    } catch (e) {
      resolve(`construct: ${(e as Error).message}`)
      return
    }
    const c: Conn = { ws, ready: false, lastSeq: new Float64Array([-1, -1, -1]), lastEpoch: new Float64Array(3) }
    let settled = false
    const timer = setTimeout(() => done(false, 'timeout before ready'), op.timeoutMs ?? 15_000)
    const done = (ok: boolean, reason?: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (ok) {
        c.ready = true
        connectMs.add(nowMs() - t0)
        conns.push(c)
        resolve(null)
      } else {
        try {
          ws.terminate()
        } catch {
          /* ignore */
        }
        resolve(reason ?? 'failed')
      }
    }
    ws.on('open', () => {
      if (op.kind === 'ws') done(true)
      else if (op.kind === 'gateway' && op.authVia !== 'header') ws.send(JSON.stringify({ type: 'auth', request_id: '1', token }))
    })
    ws.on('message', (data: Buffer) => {
      if (c.ready) {
        if (op.kind === 'sio' && data.length === 1 && data[0] === 0x32) {
          ws.send('3')
          return
        }
        onData(c, data)
        if (op.kind === 'gateway' && data[0] === 0x7b && data.indexOf('"type":"status"') >= 0) st.statusFrames++
        else if (op.kind === 'gateway' && data.indexOf('"type":"error"') >= 0) st.errorFrames++
        return
      }
      if (op.kind === 'gateway') {
        if (data.indexOf('"type":"connection"') >= 0) done(true)
        else if (data.indexOf('"type":"error"') >= 0 || data.indexOf('"status":"error"') >= 0)
          done(false, `auth refused: ${data.toString().slice(0, 120)}`)
      } else if (op.kind === 'sio') {
        const s = data.toString()
        if (s[0] === '0') ws.send('40')
        else if (s.startsWith('40')) done(true)
        else if (s === '2') ws.send('3')
        else if (s.startsWith('44')) done(false, `sio connect error: ${s.slice(0, 120)}`)
      }
    })
    ws.on('unexpected-response', (_req, res) => {
      done(false, `HTTP ${res.statusCode}`)
    })
    ws.on('error', (e: NodeJS.ErrnoException) => {
      done(false, `error: ${e.code ?? e.message}`)
    })
    ws.on('close', (code) => {
      if (!settled) {
        done(false, `closed ${code} before ready`)
        return
      }
      // a failed attempt's own close (we terminated it) is not a dropped connection
      if (!c.ready) return
      const k = String(code)
      st.closedByCode[k] = (st.closedByCode[k] ?? 0) + 1
      if (!closing) st.unexpectedCloses++
      c.ready = false
      if (!closing && op.reconnect) void reopen(op, index)
    })
  })
}

async function connect(op: ConnectOp): Promise<Record<string, unknown>> {
  if (op.reset) {
    connectMs = new Samples(200_000)
    failures = {}
    retried = {}
    connectedAfterRetry = 0
    Object.assign(reconnects, { started: 0, done: 0, failed: 0, lastDoneAt: 0 })
  }
  closing = false
  const conc = Math.max(1, op.concurrency ?? 100)
  const offset = op.offset ?? 0
  const interval = op.ratePerSec && op.ratePerSec > 0 ? 1000 / op.ratePerSec : 0
  const before = conns.length
  const t0 = performance.now()
  let next = 0
  const inflight = new Set<Promise<void>>()
  while (next < op.count) {
    if (interval > 0) {
      const due = t0 + next * interval
      const wait = due - performance.now()
      if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    }
    const p = openOne(op, offset + next).then(() => undefined)
    next++
    inflight.add(p)
    void p.then(() => inflight.delete(p))
    if (inflight.size >= conc) await Promise.race(inflight)
  }
  await Promise.all(inflight)
  return { connected: conns.length - before, open: openCount(), wallMs: performance.now() - t0 }
}

function openCount(): number {
  let n = 0
  for (const c of conns) if (c.ready && c.ws.readyState === WebSocket.OPEN) n++
  return n
}

function resetCounters(): void {
  st.frames = 0
  st.bytes = 0
  st.dataFrames = [0, 0, 0]
  st.otherFrames = 0
  st.statusFrames = 0
  st.errorFrames = 0
  st.gaps = 0
  st.gapEvents = 0
  st.dupes = 0
  latTs = new Samples(500_000)
  latSource = new Samples(500_000)
  firstFrameAt = 0
  lastFrameAt = 0
}

function report(): Record<string, unknown> {
  return {
    open: openCount(),
    frames: st.frames,
    bytes: st.bytes,
    dataFrames: Object.fromEntries(CH_NAMES.map((n, i) => [n, st.dataFrames[i]])),
    otherFrames: st.otherFrames,
    statusFrames: st.statusFrames,
    errorFrames: st.errorFrames,
    gaps: st.gaps,
    gapEvents: st.gapEvents,
    dupes: st.dupes,
    closedByCode: st.closedByCode,
    unexpectedCloses: st.unexpectedCloses,
    failures,
    retried,
    connectedAfterRetry,
    reconnects: { ...reconnects },
    latTs: Float64Array.from(latTs.values()),
    latTsCount: latTs.count,
    latTsMax: latTs.max,
    latSource: Float64Array.from(latSource.values()),
    latSourceCount: latSource.count,
    latSourceMax: latSource.max,
    connectMs: Float64Array.from(connectMs.values()),
    firstFrameAt,
    lastFrameAt,
    windowMs: measureStartedAt > 0 ? (measureEndedAt || nowMs()) - measureStartedAt : 0,
  }
}

async function closeAll(timeoutMs: number): Promise<Record<string, unknown>> {
  closing = true
  const open = conns.filter((c) => c.ws.readyState === WebSocket.OPEN || c.ws.readyState === WebSocket.CONNECTING)
  let clean = 0
  await Promise.all(
    open.map(
      (c) =>
        new Promise<void>((r) => {
          const t = setTimeout(() => {
            try {
              c.ws.terminate()
            } catch {
              /* ignore */
            }
            r()
          }, timeoutMs)
          c.ws.once('close', () => {
            clearTimeout(t)
            clean++
            r()
          })
          try {
            c.ws.close(1000, 'bench done')
          } catch {
            clearTimeout(t)
            r()
          }
        }),
    ),
  )
  const n = conns.length
  conns.length = 0
  return { closed: n, cleanCloses: clean, attempted: open.length }
}

process.on('message', (m: any) => {
  const reply = (body: Record<string, unknown>) => process.send?.({ id: m.id, ...body })
  const run = async (): Promise<Record<string, unknown>> => {
    switch (m.op) {
      case 'connect':
        return connect(m as ConnectOp)
      case 'measure':
        resetCounters()
        measuring = true
        measureStartedAt = nowMs()
        measureEndedAt = 0
        return { open: openCount() }
      case 'pause':
        measuring = false
        measureEndedAt = nowMs()
        return report()
      case 'report':
        return report()
      case 'idleFor':
        return { idleMs: lastAnyFrameAt === 0 ? Infinity : performance.now() - lastAnyFrameAt }
      case 'send': {
        let n = 0
        for (const c of conns)
          if (c.ws.readyState === WebSocket.OPEN) {
            c.ws.send(m.data as string)
            n++
          }
        return { sent: n }
      }
      case 'close':
        return closeAll(m.timeoutMs ?? 5000)
      case 'exit':
        setTimeout(() => process.exit(0), 10)
        return {}
      default:
        throw new Error(`unknown op ${String(m.op)}`)
    }
  }
  run().then(reply, (e: Error) => reply({ error: e.message }))
})
process.on('disconnect', () => process.exit(0))
process.send?.({ ready: true, pid: process.pid })
