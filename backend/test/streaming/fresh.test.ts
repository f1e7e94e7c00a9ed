import t from 'tap'
import WebSocket from 'ws'
import { startTestApp, testAccounts } from '../helpers/app.ts'
import { until } from './helpers.ts'

t.test('unchanged account data is re-confirmed with small fresh frames, never re-sent as data_update', async (t) => {
  // no price walk: a trader with no positions has a constant balance, so every poll finds it unchanged. 1 s polls:
  // a poll is 3 signed calls plus 2 for cross every other poll, inside the client's 5 calls/s per key
  const accounts = testAccounts(1).map((a) => ({ ...a, positions: [] }))
  const g = await startTestApp(t, { POLL_INTERVAL_MS: '1000', STALE_AFTER_MS: '4000' }, { simulator: { accounts, tickMs: 0 } })
  const u = await g.userWithCredentials(0)
  const ws = new WebSocket(g.wsUrl, { headers: { authorization: `Bearer ${u.token}` } })
  t.teardown(() => ws.terminate())
  const frames: any[] = []
  ws.on('message', (m) => frames.push(JSON.parse(String(m))))
  await new Promise((r) => ws.once('open', r))
  // the first ~2.5 s go to the first poll and the first history load (11 signed calls at the client's 5/s per key)
  const freshOf = () => frames.filter((f) => f.type === 'fresh' && f.channels.some((c: any) => c.channel === 'account'))
  const t0 = Date.now()
  await until(() => freshOf().length >= 2, 20_000, 'two fresh frames for the account channel')
  const accountUpdates = frames.filter((f) => f.type === 'data_update' && f.channel === 'account')
  const fresh = freshOf()
  t.equal(accountUpdates.length, 1, 'the balance went out once (it never changed)')
  t.ok(fresh.length >= 2, `fresh frames keep its age honest (${fresh.length} in ${Date.now() - t0} ms)`)
  const first = accountUpdates[0]
  const last = fresh.at(-1).channels.find((c: any) => c.channel === 'account')
  t.ok(last, 'the fresh frame names the account channel')
  t.equal(last.epoch, first.epoch, 'same epoch')
  t.equal(last.seq, first.seq, 'same seq: the version shown is still true')
  t.ok(last.sourceTs > first.sourceTs + 1000, 'confirmed later than the data_update')
  t.ok(Date.now() - last.sourceTs < 4000, 'and recent enough never to look stale')
  const gaps = fresh.slice(1).map((f, i) => f.ts - fresh[i].ts)
  t.ok(
    gaps.every((gap) => gap >= 1000 - 5),
    `at most one fresh frame per STALE_AFTER_MS/4 (gaps ${gaps.join(', ')} ms)`,
  )
})
