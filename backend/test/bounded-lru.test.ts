import t from 'tap'
import { LRUCache } from 'lru-cache'
import { countBound } from '../bounded-lru.ts'

t.test('countBound keeps at most max entries, least recently used out first', async (t) => {
  const cache = new LRUCache<string, number>(countBound(3))
  cache.set('a', 1)
  cache.set('b', 2)
  cache.set('c', 3)
  t.equal(cache.get('a'), 1, 'a is now the most recently used')
  cache.set('d', 4)
  t.equal(cache.size, 3)
  t.notOk(cache.has('b'), 'b, the least recently used, went')
  t.same([...cache.keys()].sort(), ['a', 'c', 'd'])
  for (let i = 0; i < 100; i++) cache.set(`k${i}`, i)
  t.equal(cache.size, 3, 'never more than max')
  t.same([...cache.keys()], ['k99', 'k98', 'k97'])
})

t.test('countBound works with ttl (entries expire, the bound holds)', async (t) => {
  let now = 1000
  const cache = new LRUCache<string, true>({ ...countBound(2), ttl: 50, perf: { now: () => now } })
  cache.set('a', true)
  cache.set('b', true)
  cache.set('c', true)
  t.equal(cache.size, 2)
  t.notOk(cache.has('a'))
  now += 51
  t.notOk(cache.has('b'), 'expired')
  t.notOk(cache.has('c'), 'expired')
})

t.test('countBound does not allocate for max entries up front', async (t) => {
  const before = process.memoryUsage().heapUsed
  const caches = [1, 2, 3, 4].map(() => new LRUCache<string, number>({ ...countBound(1_000_000), ttl: 60_000 }))
  const grown = process.memoryUsage().heapUsed - before
  // with { max: 1_000_000, ttl } each of these would fill four 8 MB arrays at once
  t.ok(grown < 4 * 1024 * 1024, `heap grew ${Math.round(grown / 1024)} KiB for four caches bounded at 1,000,000`)
  caches[0]!.set('x', 1)
  t.equal(caches[0]!.get('x'), 1)
})

t.test('countBound refuses a bound that is not a positive integer', async (t) => {
  t.throws(() => countBound(0), /positive integer/)
  t.throws(() => countBound(1.5), /positive integer/)
})
