/** Light and dark themes: follows the system until the user picks one. */
import { useLayoutEffect } from 'react'
import { useLocalSetting } from '../lib/local-setting.ts'

export type ThemeChoice = 'light' | 'dark'
const isTheme = (v: unknown): v is ThemeChoice | 'system' => v === 'light' || v === 'dark' || v === 'system'

function systemTheme(): ThemeChoice {
  return typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'
}

export function useTheme(): [ThemeChoice, () => void] {
  const [choice, setChoice] = useLocalSetting<ThemeChoice | 'system'>('theme', 'system', isTheme)
  const theme = choice === 'system' ? systemTheme() : choice
  // a layout effect: it runs before the children's effects, so the chart reads the new colours
  useLayoutEffect(() => {
    document.documentElement.dataset.theme = theme
  }, [theme])
  return [theme, () => setChoice(theme === 'dark' ? 'light' : 'dark')]
}
