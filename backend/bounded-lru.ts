/**
 * A count bound for lru-cache that costs memory only as entries arrive.
 *
 * With `max`, lru-cache allocates its index arrays for all `max` entries when the cache is built (two
 * filled arrays of 8 bytes per entry, two more with `ttl`, plus typed arrays): the gateway's abuse
 * bounds (200,000 login windows, 100,000 upgrade windows, 100,000 revoked tokens, …) made ≈ 11 MB of
 * resident memory at start for caches that are nearly empty on most nodes. `maxSize` with every entry
 * weighing 1 is the same bound — once a new entry would make it `max + 1` entries, the least recently
 * used ones go first — with arrays that grow as entries arrive.
 */
export function countBound<K, V>(max: number): { maxSize: number; sizeCalculation: (value: V, key: K) => number } {
  if (!Number.isSafeInteger(max) || max < 1) throw new TypeError(`countBound: max must be a positive integer, got ${max}`)
  return { maxSize: max, sizeCalculation: one }
}

function one(): number {
  return 1
}
