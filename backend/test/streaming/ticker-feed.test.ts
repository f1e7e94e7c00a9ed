import t from 'tap'
import { EventEmitter } from 'node:events'
import { CONTROL_TOPIC, InProcessBus, TICKER_TOPIC, type UpstreamEvent } from '../../streaming/bus.ts'
import { TickerFeed } from '../../streaming/ticker-feed.ts'
import type { StreamTick } from '../../streaming/sources.ts'
import { sleep, until } from './helpers.ts'

const T = { index: 100, lastPrice: 100, bidPrice: 99, askPrice: 101, fundingRate: 0.0001, fundingTime: '2026-01-01T00:00:00.000Z' }

class FakeStream extends EventEmitter {
  isUp = false
}

t.test('ticker: REST while the stream is down, stream ticks merged while up, status on failure', async (t) => {
  const bus = new InProcessBus()
  const stream = new FakeStream()
  let calls = 0
  let fail = false
  let price = 100
  const feed = new TickerFeed({
    bus,
    stream,
    intervalMs: 100,
    source: {
      fetchTicker: async () => {
        calls++
        if (fail) throw Object.assign(new Error('x'), { kind: 'unavailable' })
        return { data: { ...T, lastPrice: price }, ts: Date.now() }
      },
    },
  })
  feed.start()
  t.teardown(() => feed.stop())
  const events: UpstreamEvent[] = []
  bus.subscribe(TICKER_TOPIC, (e) => events.push(e as UpstreamEvent))
  await sleep(150) // proves no poll within 150 ms (1.5 intervals) while nobody watches
  t.equal(calls, 0, 'nothing polled before anyone watches')
  bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'ticker' })
  await until(() => events.some((e) => e.kind === 'snapshot'), 1000)
  t.match(
    events.find((e) => e.kind === 'snapshot'),
    { channel: 'ticker', seq: 1 },
    'first REST ticker published',
  )
  price = 101
  await until(() => events.filter((e) => e.kind === 'snapshot').length === 2, 1000, 'a second ticker snapshot')
  const second = events.filter((e) => e.kind === 'snapshot').at(-1) as { seq: number; json: string }
  t.equal(second.seq, 2, 'a REST change is published with the next seq')
  t.match(JSON.parse(second.json), { lastPrice: 101 }, 'carrying the changed price')
  stream.isUp = true
  stream.emit('up')
  stream.emit('ticker', { index: 105, lastPrice: 106, fundingRate: null, fundingTime: null, time: Date.now() } satisfies StreamTick)
  const last = events.filter((e) => e.kind === 'snapshot').at(-1) as { json: string }
  t.match(JSON.parse(last.json), { lastPrice: 106, index: 105, bidPrice: 99 }, 'stream tick merged into the REST base (bid/ask kept)')
  fail = true
  stream.isUp = false
  stream.emit('down')
  await until(() => events.some((e) => e.kind === 'status' && e.upstream === 'down'), 1000)
  t.match(
    events.find((e) => e.kind === 'status' && e.upstream === 'down'),
    { scope: 'ticker' },
    'stream and REST both failing → ticker down',
  )
  fail = false
  const lastStatus = () => (events.filter((e) => e.kind === 'status').at(-1) as { upstream: string }).upstream
  await until(() => lastStatus() === 'ok', 3000, 'the ticker status to return to ok')
  t.equal(lastStatus(), 'ok', 'recovers: the latest ticker status is ok')
  bus.publish(CONTROL_TOPIC, { kind: 'unwatch', key: 'ticker' })
  const n = calls
  await sleep(300) // proves no poll within 300 ms (3 intervals) after unwatch
  t.equal(calls, n, 'unwatch stops REST polling')
})
