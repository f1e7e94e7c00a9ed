/** One shared 1-second clock, so every "updated N s ago" and countdown re-renders together. */
import { useSyncExternalStore } from 'react'

let now = Date.now()
const listeners = new Set<() => void>()
let timer: ReturnType<typeof setInterval> | null = null

function subscribe(l: () => void): () => void {
  listeners.add(l)
  if (!timer) {
    now = Date.now()
    timer = setInterval(() => {
      now = Date.now()
      for (const fn of listeners) fn()
    }, 1000)
  }
  return () => {
    listeners.delete(l)
    if (listeners.size === 0 && timer) {
      clearInterval(timer)
      timer = null
    }
  }
}

/** client-clock ms, updated every second */
export function useNow(): number {
  return useSyncExternalStore(subscribe, () => now)
}
