/** Light and dark themes: follows the system — live, when the OS switches — until the user picks one. */
import { useLayoutEffect, useSyncExternalStore } from 'react'
import { useLocalSetting } from '../lib/local-setting.ts'

export type ThemeChoice = 'light' | 'dark'
const isTheme = (v: unknown): v is ThemeChoice | 'system' => v === 'light' || v === 'dark' || v === 'system'

const QUERY = '(prefers-color-scheme: dark)'
const media = (): MediaQueryList | null => (typeof matchMedia === 'function' ? matchMedia(QUERY) : null)

function subscribeSystem(onChange: () => void): () => void {
  const m = media()
  if (!m) return () => {}
  m.addEventListener('change', onChange)
  return () => m.removeEventListener('change', onChange)
}
const systemTheme = (): ThemeChoice => (media()?.matches ? 'dark' : 'light')

export function useTheme(): [ThemeChoice, () => void] {
  const [choice, setChoice] = useLocalSetting<ThemeChoice | 'system'>('theme', 'system', isTheme)
  // re-rendered by the OS's own change event: no reload, no polling
  const system = useSyncExternalStore(subscribeSystem, systemTheme, (): ThemeChoice => 'light')
  const theme = choice === 'system' ? system : choice
  // a layout effect: it runs before the children's effects, so the chart reads the new colours
  useLayoutEffect(() => {
    document.documentElement.dataset.theme = theme
  }, [theme])
  // picking the theme the OS already has means "follow the OS" again
  return [
    theme,
    () => {
      const next: ThemeChoice = theme === 'dark' ? 'light' : 'dark'
      setChoice(next === system ? 'system' : next)
    },
  ]
}
