/** React access to the one realtime client: a context and a selector hook over its subscribe() API. */
import { createContext, useContext, useSyncExternalStore } from 'react'
import type { RealtimeClient, RealtimeState } from './realtime-client.ts'

export const RealtimeContext = createContext<RealtimeClient | null>(null)

export function useRealtimeClient(): RealtimeClient {
  const client = useContext(RealtimeContext)
  if (!client) throw new Error('useRealtimeClient outside <RealtimeContext.Provider>')
  return client
}

/** re-renders only when the selected slice changes (selectors must return stable references) */
export function useRealtime<T>(select: (s: RealtimeState) => T): T {
  const client = useRealtimeClient()
  return useSyncExternalStore(client.subscribe, () => select(client.getState()))
}
