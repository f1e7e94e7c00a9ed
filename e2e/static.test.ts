/**
 * The dashboard's files as the gateway serves them: brotli or gzip twins written at build time, a year of
 * immutable caching for content-hashed files, and index.html always revalidated.
 */
import t from 'tap'
import { request } from 'node:http'
import { e2eEnv } from './support/harness.ts'

const env = e2eEnv()

function get(
  path: string,
  acceptEncoding: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(`${env.base}${path}`, { headers: { 'accept-encoding': acceptEncoding } }, (res) => {
      let bytes = 0
      res.on('data', (c: Buffer) => (bytes += c.length))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('static assets are served pre-compressed with the right caching', async (t) => {
  const index = await get('/', 'identity')
  t.equal(index.status, 200, 'index.html is served')
  t.equal(index.headers['cache-control'], 'no-cache', 'index.html is always revalidated (it names the current bundle)')
  const html = await (await fetch(`${env.base}/`)).text()
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]!)
  t.ok(assets.length >= 2, `index.html names its hashed script and stylesheet (${assets.join(', ')})`)
  for (const a of assets) {
    const plain = await get(a, 'identity')
    const br = await get(a, 'br, gzip')
    const gz = await get(a, 'gzip')
    t.equal(br.headers['content-encoding'], 'br', `${a}: brotli when the browser accepts it`)
    t.equal(gz.headers['content-encoding'], 'gzip', `${a}: gzip for browsers without brotli`)
    t.equal(plain.headers['content-encoding'], undefined, `${a}: uncompressed only when nothing else is accepted`)
    t.ok(br.bytes < plain.bytes * 0.4, `${a}: ${plain.bytes} B raw → ${br.bytes} B brotli, ${gz.bytes} B gzip`)
    t.equal(br.headers['cache-control'], 'public, max-age=31536000, immutable', `${a}: hashed file cached for a year, immutable`)
    t.match(String(br.headers.vary ?? ''), /accept-encoding/i, `${a}: Vary: Accept-Encoding`)
    t.match(String(br.headers['content-type'] ?? ''), a.endsWith('.js') ? /javascript/ : /css/, `${a}: with its own content type`)
  }
})
