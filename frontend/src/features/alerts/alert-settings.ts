/**
 * The trader's alert settings, kept on the gateway (GET/PUT /api/alerts) so they follow the trader to another
 * device. One hook owns them for the page: it loads them, moves a liquidation threshold saved by an older version
 * of the page in localStorage onto the server, saves every change (queued, so two quick changes never race), and
 * answers a version conflict (another device saved meanwhile) by reloading instead of overwriting.
 */
import { useCallback, useEffect, useRef, useState } from 'react'
import { ApiError, type ApiClient } from '../../lib/api-client.ts'
import { DEFAULT_LIQ_ALERT_PCT } from '../../config/constants.ts'
import type { AlertNotify, PriceLevel } from './alert-engine.ts'

export interface AlertSettings {
  liquidationPct: number
  notify: AlertNotify
  browserNotifications: boolean
  priceLevels: PriceLevel[]
  /** 0 while nothing is saved */
  version: number
  updatedAt: string | null
}

export const MAX_PRICE_LEVELS = 20
export const MAX_LEVEL_PRICE = 100_000_000
export const MAX_NOTE_LENGTH = 80

/** the key an older page kept the liquidation threshold under (lib/local-setting.ts prefixes it with "lnm.") */
const LEGACY_PCT_KEY = 'lnm.liqAlertPct'
const isPct = (v: unknown): v is number => typeof v === 'number' && v > 0 && v <= 90

function legacyPct(): number | null {
  try {
    const raw = localStorage.getItem(LEGACY_PCT_KEY)
    if (raw === null) return null
    const v: unknown = JSON.parse(raw)
    return isPct(v) ? v : null
  } catch {
    return null
  }
}

function forgetLegacy(): void {
  try {
    localStorage.removeItem(LEGACY_PCT_KEY)
  } catch {
    /* private mode */
  }
}

export function defaultAlertSettings(): AlertSettings {
  return {
    liquidationPct: legacyPct() ?? DEFAULT_LIQ_ALERT_PCT,
    notify: { connectionLoss: true, exchangeDown: true, fills: true, closes: true, liquidations: true },
    browserNotifications: false,
    priceLevels: [],
    version: 0,
    updatedAt: null,
  }
}

/** why a typed price level cannot be added, in words; null when it can */
export function priceLevelProblem(priceText: string, note: string, count: number): string | null {
  if (count >= MAX_PRICE_LEVELS) return `At most ${MAX_PRICE_LEVELS} price levels: remove one before adding another.`
  const trimmed = priceText.trim().replace(/,/g, '')
  if (trimmed === '') return 'Enter a price in USD, for example 98500.'
  const v = Number(trimmed)
  if (!Number.isFinite(v)) return 'The price must be a number, for example 98500.'
  if (v <= 0) return 'The price must be more than 0.'
  if (v > MAX_LEVEL_PRICE) return `The price must be at most ${MAX_LEVEL_PRICE.toLocaleString('en-US')}.`
  if (note.length > MAX_NOTE_LENGTH) return `The note must be at most ${MAX_NOTE_LENGTH} characters.`
  return null
}

export const newLevelId = (): string => `lvl-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`

const body = (s: AlertSettings) => ({
  liquidationPct: s.liquidationPct,
  notify: s.notify,
  browserNotifications: s.browserNotifications,
  priceLevels: s.priceLevels.map((l) => ({
    id: l.id,
    price: l.price,
    direction: l.direction,
    ...(l.note ? { note: l.note } : {}),
    triggeredAt: l.triggeredAt ?? null,
  })),
  version: s.version,
})

export type SaveState = 'loading' | 'saved' | 'saving' | 'error'

export interface AlertSettingsHandle {
  settings: AlertSettings
  /** false until the server's settings arrived (the defaults and any local threshold are used meanwhile) */
  loaded: boolean
  state: SaveState
  /** the last failure in words, null when the last save worked */
  error: string | null
  /** apply a change now and save it (after `debounceMs`: a threshold being typed is saved once) */
  change: (patch: (cur: AlertSettings) => Partial<AlertSettings>, debounceMs?: number) => void
  /** a price level fired: remember when, on the server too */
  markTriggered: (levelId: string, at: string) => void
}

export function useAlertSettings(api: ApiClient): AlertSettingsHandle {
  const [settings, setSettings] = useState<AlertSettings>(defaultAlertSettings)
  const [loaded, setLoaded] = useState(false)
  const [state, setState] = useState<SaveState>('loading')
  const [error, setError] = useState<string | null>(null)
  const current = useRef(settings)
  const dirty = useRef(false)
  /** triggered marks not yet on the server: re-applied after a conflict reload */
  const marks = useRef(new Map<string, string>())
  const chain = useRef<Promise<void>>(Promise.resolve())
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null)
  const alive = useRef(true)

  const apply = useCallback((s: AlertSettings) => {
    current.current = s
    if (alive.current) setSettings(s)
  }, [])

  const withMarks = (s: AlertSettings): AlertSettings => {
    if (!marks.current.size) return s
    return { ...s, priceLevels: s.priceLevels.map((l) => (marks.current.has(l.id) ? { ...l, triggeredAt: marks.current.get(l.id)! } : l)) }
  }

  const push = useCallback(async (): Promise<void> => {
    if (!dirty.current) return
    dirty.current = false
    const sent = current.current
    const sentMarks = new Map(marks.current)
    if (alive.current) setState('saving')
    try {
      const saved = await api.json<AlertSettings>('PUT', '/api/alerts', { body: body(sent) })
      for (const [id, at] of sentMarks) if (marks.current.get(id) === at) marks.current.delete(id)
      forgetLegacy()
      // a change made while this one was on its way keeps its values; only the version moves on
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- dirty.current may change during the await
      apply(dirty.current ? { ...current.current, version: saved.version, updatedAt: saved.updatedAt } : saved)
      if (alive.current) {
        setError(null)
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- dirty.current may change during the await
        setState(dirty.current ? 'saving' : 'saved')
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        // another device saved first: take its settings, keep only our triggered marks (facts, not choices)
        try {
          const fresh = await api.json<AlertSettings>('GET', '/api/alerts')
          apply(withMarks(fresh))
          if (marks.current.size) dirty.current = true
          if (alive.current) {
            setError(
              'These alert settings were changed on another device or tab: they are reloaded. Make your change again if it is missing.',
            )
            setState('error')
          }
        } catch {
          if (alive.current) setState('error')
        }
        if (dirty.current) chain.current = chain.current.then(push)
        return
      }
      dirty.current = true
      if (alive.current) {
        setError(
          `Not saved: ${e instanceof ApiError ? e.message : 'the gateway could not be reached'}. The change applies on this page; it is saved with the next change.`,
        )
        setState('error')
      }
    }
  }, [api, apply])

  const flush = useCallback(() => {
    timer.current = null
    chain.current = chain.current.then(push)
  }, [push])

  const change = useCallback(
    (patch: (cur: AlertSettings) => Partial<AlertSettings>, debounceMs = 0) => {
      apply({ ...current.current, ...patch(current.current) })
      dirty.current = true
      if (timer.current) clearTimeout(timer.current)
      timer.current = setTimeout(flush, debounceMs)
    },
    [apply, flush],
  )

  const markTriggered = useCallback(
    (levelId: string, at: string) => {
      if (!current.current.priceLevels.some((l) => l.id === levelId)) return
      marks.current.set(levelId, at)
      change((cur) => ({ priceLevels: cur.priceLevels.map((l) => (l.id === levelId ? { ...l, triggeredAt: at } : l)) }))
    },
    [change],
  )

  const load = useCallback(async () => {
    if (dirty.current) return
    try {
      const fresh = await api.json<AlertSettings>('GET', '/api/alerts')
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- dirty.current may change during the await
      if (dirty.current) return
      const legacy = legacyPct()
      // the trader already let this site notify (the liquidation alert asked before the settings existed)
      const granted = typeof Notification !== 'undefined' && Notification.permission === 'granted'
      if (fresh.version === 0 && (legacy !== null || granted)) {
        // first visit since the settings moved to the server: bring what this browser had along
        apply({ ...fresh, liquidationPct: legacy ?? fresh.liquidationPct, browserNotifications: fresh.browserNotifications || granted })
        dirty.current = true
        flush()
      } else {
        if (fresh.version > 0) forgetLegacy()
        apply(fresh)
        if (alive.current) setState('saved')
      }
      if (alive.current) setLoaded(true)
    } catch (e) {
      if (alive.current) {
        setError(
          `The alert settings could not be loaded (${e instanceof ApiError ? e.message : 'the gateway could not be reached'}); the defaults are used.`,
        )
        setState('error')
      }
    }
  }, [api, apply, flush])

  useEffect(() => {
    alive.current = true
    void load()
    // back on this tab: another device may have changed them
    const onVisible = () => {
      if (document.visibilityState === 'visible') void load()
    }
    document.addEventListener('visibilitychange', onVisible)
    return () => {
      alive.current = false
      document.removeEventListener('visibilitychange', onVisible)
      if (timer.current) {
        clearTimeout(timer.current)
        // a pending change is still saved when the page goes away
        chain.current = chain.current.then(push)
      }
    }
  }, [load, push])

  return { settings, loaded, state, error, change, markTriggered }
}
