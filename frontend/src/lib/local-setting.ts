/** A small persisted UI preference (theme, units, alert threshold); storage failures fall back to memory. */
import { useCallback, useState } from 'react'

export function readSetting<T>(key: string, fallback: T, valid: (v: unknown) => v is T): T {
  try {
    const raw = localStorage.getItem(`lnm.${key}`)
    if (raw === null) return fallback
    const v: unknown = JSON.parse(raw)
    return valid(v) ? v : fallback
  } catch {
    return fallback
  }
}

export function useLocalSetting<T>(key: string, fallback: T, valid: (v: unknown) => v is T): [T, (v: T) => void] {
  const [value, setValue] = useState<T>(() => readSetting(key, fallback, valid))
  const set = useCallback(
    (v: T) => {
      setValue(v)
      try {
        localStorage.setItem(`lnm.${key}`, JSON.stringify(v))
      } catch {
        /* private mode: keep it for this visit only */
      }
    },
    [key],
  )
  return [value, set]
}
