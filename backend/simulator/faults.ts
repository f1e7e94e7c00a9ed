/** Fault-injection state: validated partial updates, defaults = a healthy exchange. */
import { SimError, type Faults } from './types.ts'

export const DEFAULT_FAULTS: Readonly<Faults> = Object.freeze({
  latencyMs: 0,
  timeoutRate: 0,
  errorRate: 0,
  errorStatus: 503,
  rateLimitStorm: false,
  malformedRate: 0,
  truncatedRate: 0,
  dropRate: 0,
  clockSkewMs: 0,
  outage: false,
  privateStreamDropMs: 0,
})

const RATES = ['timeoutRate', 'errorRate', 'malformedRate', 'truncatedRate', 'dropRate'] as const
const BOOLS = ['rateLimitStorm', 'outage'] as const

/** throws SimError(400) naming the first bad field; unknown fields are rejected too */
export function validateFaults(input: unknown): Partial<Faults> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new SimError(400, 'badRequest', 'faults must be an object')
  const f = input as Record<string, unknown>
  for (const k of Object.keys(f)) {
    if (!(k in DEFAULT_FAULTS)) throw new SimError(400, 'badRequest', `unknown fault "${k}"`)
  }
  for (const k of RATES) {
    if (k in f && (typeof f[k] !== 'number' || !(f[k] >= 0 && f[k] <= 1)))
      throw new SimError(400, 'badRequest', `${k} must be a number in [0, 1]`)
  }
  for (const k of BOOLS) {
    if (k in f && typeof f[k] !== 'boolean') throw new SimError(400, 'badRequest', `${k} must be a boolean`)
  }
  if ('latencyMs' in f && (typeof f.latencyMs !== 'number' || !(f.latencyMs >= 0 && f.latencyMs <= 600_000)))
    throw new SimError(400, 'badRequest', 'latencyMs must be a number in [0, 600000]')
  if (
    'privateStreamDropMs' in f &&
    (typeof f.privateStreamDropMs !== 'number' ||
      !(f.privateStreamDropMs === 0 || (f.privateStreamDropMs >= 100 && f.privateStreamDropMs <= 3_600_000)))
  ) {
    throw new SimError(400, 'badRequest', 'privateStreamDropMs must be 0 (off) or a number in [100, 3600000]')
  }
  if ('clockSkewMs' in f && (typeof f.clockSkewMs !== 'number' || !Number.isFinite(f.clockSkewMs)))
    throw new SimError(400, 'badRequest', 'clockSkewMs must be a finite number')
  if ('errorStatus' in f && ![500, 502, 503, 504].includes(f.errorStatus as number))
    throw new SimError(400, 'badRequest', 'errorStatus must be 500, 502, 503 or 504')
  return f
}

export function createFaults(onChange: (f: Faults) => void): { set(f: Partial<Faults>): void; reset(): void; get(): Faults } {
  let current: Faults = { ...DEFAULT_FAULTS }
  return {
    set(f) {
      current = { ...current, ...validateFaults(f) }
      onChange(current)
    },
    reset() {
      current = { ...DEFAULT_FAULTS }
      onChange(current)
    },
    get: () => current,
  }
}
