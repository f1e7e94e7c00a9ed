/**
 * Runs the alert engine on the realtime client's state and delivers what it raises: a toast (in-page, always), a
 * line in the recent-alerts log, and a browser notification when the trader asked for them, the browser allows
 * them, and the page is not already in front of the trader.
 *
 * Browser notifications are not shown while the page is visible and focused: the toast (and, for a screen reader,
 * its live region) already says the same thing, and a second system pop-up would only double it. In the
 * background (another tab, another window, minimised) the notification is the only way the trader learns it.
 */
import { useCallback, useEffect, useRef, useState } from 'react'
import type { RealtimeClient, RealtimeState } from '../../lib/realtime-client.ts'
import { WS_SILENT_AFTER_MS } from '../../config/constants.ts'
import { AlertEngine, type AlertEvent, type EngineInput } from './alert-engine.ts'
import type { AlertSettings } from './alert-settings.ts'

export const LOG_SIZE = 30
const MAX_TOASTS = 4
/** polite toasts go away by themselves; assertive ones (liquidation, connection loss, exchange down) stay until dismissed or resolved */
const TOAST_MS = 10_000

export function engineInput(s: RealtimeState): EngineInput {
  return {
    transport: s.transport,
    upstream: s.upstream,
    price: s.channels.ticker?.data.lastPrice,
    positions: s.channels.positions?.data,
    history: s.channels.history?.data,
  }
}

/** should this alert also be a browser notification? (see the module comment) */
export function wantsBrowserNotification(
  settings: Pick<AlertSettings, 'browserNotifications'>,
  env: { permission: NotificationPermission | 'unsupported'; visible: boolean; focused: boolean },
): boolean {
  if (!settings.browserNotifications || env.permission !== 'granted') return false
  return !(env.visible && env.focused)
}

const RESOLVES: Partial<Record<AlertEvent['kind'], AlertEvent['kind']>> = {
  connection_restored: 'connection_lost',
  exchange_recovered: 'exchange_down',
}

function notify(e: AlertEvent): void {
  try {
    new Notification(e.title, { body: e.body, tag: `lnm-${e.kind}-${e.levelId ?? e.tradeId ?? ''}` })
  } catch {
    /* some browsers only allow notifications from a service worker */
  }
}

export function useAlertFeed(client: RealtimeClient, settings: AlertSettings, onLevelTriggered: (levelId: string, at: string) => void) {
  const engine = useRef<AlertEngine | null>(null)
  engine.current ??= new AlertEngine({ lossGraceMs: WS_SILENT_AFTER_MS })
  const [toasts, setToasts] = useState<AlertEvent[]>([])
  const [log, setLog] = useState<AlertEvent[]>([])
  const settingsRef = useRef(settings)
  settingsRef.current = settings
  const onLevel = useRef(onLevelTriggered)
  onLevel.current = onLevelTriggered

  useEffect(() => {
    engine.current!.setSettings({ notify: settings.notify, priceLevels: settings.priceLevels })
  }, [settings.notify, settings.priceLevels])

  const dismiss = useCallback((id: string) => setToasts((ts) => ts.filter((t) => t.id !== id)), [])

  useEffect(() => {
    const timers = new Set<ReturnType<typeof setTimeout>>()
    const deliver = (events: AlertEvent[]) => {
      setLog((l) => [...events.slice().reverse(), ...l].slice(0, LOG_SIZE))
      setToasts((ts) => {
        let next = ts
        for (const e of events) {
          const resolved = RESOLVES[e.kind]
          if (resolved) next = next.filter((t) => t.kind !== resolved)
        }
        return [...next, ...events].slice(-MAX_TOASTS)
      })
      for (const e of events) {
        if (e.urgency === 'polite') {
          const timer = setTimeout(() => {
            timers.delete(timer)
            dismiss(e.id)
          }, TOAST_MS)
          timers.add(timer)
        }
        if (e.kind === 'price_level' && e.levelId) onLevel.current(e.levelId, new Date(e.at).toISOString())
        const permission = typeof Notification === 'undefined' ? 'unsupported' : Notification.permission
        if (
          wantsBrowserNotification(settingsRef.current, {
            permission,
            visible: document.visibilityState === 'visible',
            focused: document.hasFocus(),
          })
        )
          notify(e)
      }
    }
    const run = () => {
      const events = engine.current!.update(engineInput(client.getState()), Date.now())
      if (events.length) deliver(events)
    }
    const off = client.subscribe(run)
    // the loss grace and a close's wait for the history run on the clock, not only on state changes
    const tick = setInterval(run, 1_000)
    run()
    return () => {
      off()
      clearInterval(tick)
      for (const t of timers) clearTimeout(t)
    }
  }, [client, dismiss])

  return { toasts, log, dismiss }
}
