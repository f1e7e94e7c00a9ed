/**
 * An upgrade request refused before the WebSocket handshake (shutdown 503, overload 503, rate limit 429,
 * Origin 403…) is answered on the raw socket node handed to the `upgrade` event. Node's HTTP server no longer
 * owns that socket, so nothing closes it after the answer: it would stay established until the client gives up,
 * keep a shutting-down process alive and count against the machine's sockets. @fastify/websocket closes it only
 * when its own onRequest hook ran before the refusal, which is not the case for hooks registered earlier.
 *
 * This onResponse hook closes every answered upgrade request's socket once the answer is written. An accepted
 * upgrade is hijacked and never reaches onResponse.
 */
import type { FastifyInstance } from 'fastify'

export function closeRefusedUpgrades(app: FastifyInstance): void {
  app.addHook('onResponse', async (request) => {
    const raw = request.raw as typeof request.raw & { upgrade?: boolean }
    if (!raw.upgrade) return
    const socket = raw.socket
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- Node can null message.socket once it is detached; @types/node says it never is
    if (!socket || socket.destroyed) return
    // the answer has been handed to the kernel ('finish'): half-close, and destroy in case the peer never reads
    socket.end()
    setTimeout(() => socket.destroy(), 1000).unref()
  })
}
