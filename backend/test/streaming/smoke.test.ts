import t from 'tap'
import { startTestApp } from '../helpers/app.ts'
import { WsClient } from './helpers.ts'

t.test('smoke', async (t) => {
  const g = await startTestApp(t, { POLL_INTERVAL_MS: '500', SHUTDOWN_DRAIN_MS: '100' })
  const u = await g.userWithCredentials(0)
  const c = await WsClient.authed(g.wsUrl, u.token)
  const acc = await c.next((f) => f.type === 'data_update' && f.channel === 'account', 5000)
  const pos = await c.next((f) => f.type === 'data_update' && f.channel === 'positions', 5000)
  console.log(c.frames.map((f) => JSON.stringify(f).slice(0, 200)))
  const d = await g.http('GET', '/api/dashboard', { token: u.token })
  console.log(d.status, d.headers.get('etag'), d.text.slice(0, 300))
  t.ok(acc && pos)
  c.close()
})
