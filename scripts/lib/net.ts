/** Loopback helpers: free ports and the source addresses clients spread over (ephemeral port range per address). */
import { createServer } from 'node:net'

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer()
    s.unref()
    s.on('error', rej)
    s.listen(0, host, () => {
      const a = s.address()
      const port = typeof a === 'object' && a ? a.port : 0
      s.close(() => res(port))
    })
  })
}

/**
 * Source addresses 127.0.0.2, 127.0.0.3, …: each has its own ephemeral port range
 * (/proc/sys/net/ipv4/ip_local_port_range, ~28 k ports), so 20 k+ client sockets never run short.
 * All of 127.0.0.0/8 is loopback on Linux: no setup is needed.
 */
export function sourceAddresses(count: number, first = 2): string[] {
  const out: string[] = []
  for (let k = 0; k < count; k++) {
    const n = first - 2 + k
    out.push(`127.0.${Math.floor(n / 250)}.${2 + (n % 250)}`)
  }
  return out
}

export async function waitHttp(url: string, timeoutMs: number, ok: (status: number) => boolean = (s) => s < 500): Promise<void> {
  const until = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < until) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) })
      await r.arrayBuffer()
      if (ok(r.status)) return
      last = `status ${r.status}`
    } catch (e) {
      last = (e as Error).message
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (${last})`)
}
