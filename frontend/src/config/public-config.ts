/** The gateway's public configuration (GET /api/config/public), validated, with safe defaults. */
import { DEFAULT_STALE_AFTER_MS } from './constants.ts'

export interface PublicConfig {
  mode: 'demo' | 'live'
  source: string | null
  staleAfterMs: number
  demoLogin?: { username: string; password: string } | undefined
}

const DEFAULTS: PublicConfig = { mode: 'live', source: null, staleAfterMs: DEFAULT_STALE_AFTER_MS }

export function parsePublicConfig(raw: unknown): PublicConfig {
  if (!raw || typeof raw !== 'object') return DEFAULTS
  const r = raw as Record<string, unknown>
  const demo = r.demoLogin as Record<string, unknown> | undefined
  return {
    mode: r.mode === 'demo' ? 'demo' : 'live',
    source: typeof r.source === 'string' ? r.source : null,
    staleAfterMs: typeof r.staleAfterMs === 'number' && r.staleAfterMs > 0 ? r.staleAfterMs : DEFAULT_STALE_AFTER_MS,
    demoLogin:
      demo && typeof demo.username === 'string' && typeof demo.password === 'string'
        ? { username: demo.username, password: demo.password }
        : undefined,
  }
}

export async function loadPublicConfig(): Promise<PublicConfig> {
  try {
    const res = await fetch('/api/config/public', { headers: { accept: 'application/json' }, cache: 'no-store' })
    if (!res.ok) return DEFAULTS
    return parsePublicConfig(await res.json())
  } catch {
    return DEFAULTS
  }
}

/** ws(s)://<this host>/ws — the token never travels in the URL (CONTRACT §5) */
export function wsUrl(loc: Location = window.location): string {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`
}
