/** Number and time formatting shared by every panel (en-US digits, sats as integers). */

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 })
const price = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })

export const fmtSats = (v: number): string => `${int.format(Math.round(v))} sats`
export const fmtInt = (v: number): string => int.format(Math.round(v))
export const fmtSignedSats = (v: number): string => `${v > 0 ? '+' : v < 0 ? '−' : ''}${int.format(Math.abs(Math.round(v)))}`
export const fmtUsd = (v: number): string => usd.format(v)
/**
 * Prices are formatted many times a second (the chart's axis labels call it on every paint): remembered for the
 * few hundred values in view instead of running Intl each time.
 */
const priceMemo = new Map<number, string>()
export const fmtPrice = (v: number): string => {
  if (!(v > 0)) return '—'
  let out = priceMemo.get(v)
  if (out === undefined) {
    if (priceMemo.size > 2_000) priceMemo.clear()
    out = price.format(v)
    priceMemo.set(v, out)
  }
  return out
}
export const fmtPct = (v: number, digits = 2): string => (Number.isFinite(v) ? `${v.toFixed(digits)} %` : '—')
export const fmtSignedPct = (v: number, digits = 2): string =>
  Number.isFinite(v) ? `${v > 0 ? '+' : v < 0 ? '−' : ''}${Math.abs(v).toFixed(digits)} %` : '—'

/** "4 s", "2 min 05 s", "1 h 03 min" */
export function fmtDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`
  const h = Math.floor(m / 60)
  return `${h} h ${String(m % 60).padStart(2, '0')} min`
}

/** "hh:mm:ss" countdown */
export function fmtCountdown(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`
}

const dateTime = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short' })

export function fmtDateTime(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return '—'
  return dateTime.format(d)
}

/**
 * Every time on the page is shown in the browser's time zone (fmtDateTime above, the chart's axis and hover),
 * named once by zoneLabel(); the chart's hover adds the same instant in UTC.
 */
export function zoneLabel(at: number = Date.now()): string {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time'
  const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'shortOffset' })
    .formatToParts(new Date(at))
    .find((p) => p.type === 'timeZoneName')
  const offset = (part?.value ?? 'GMT').replace(/^GMT/, 'UTC')
  return zone === 'UTC' || zone === 'Etc/UTC' ? 'UTC' : `${zone} (${offset === 'UTC' ? 'UTC+0' : offset})`
}

const localDayTime = new Intl.DateTimeFormat('en-GB', {
  day: '2-digit',
  month: 'short',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
})
const utcDayTime = new Intl.DateTimeFormat('en-GB', {
  day: '2-digit',
  month: 'short',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
  timeZone: 'UTC',
})
const localHm = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
const localDay = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short' })
const localMonth = new Intl.DateTimeFormat('en-GB', { month: 'short', year: 'numeric' })

/** "30 Nov, 15:04" in the browser's time zone */
export const fmtLocalDayTime = (ms: number): string => localDayTime.format(ms)
/** "30 Nov, 14:04 UTC" */
export const fmtUtcDayTime = (ms: number): string => `${utcDayTime.format(ms)} UTC`
/** a time-axis label in the browser's time zone: the time, or the day / month when that is what changed */
export function fmtAxisTime(ms: number, unit: 'time' | 'day' | 'month'): string {
  return unit === 'time' ? localHm.format(ms) : unit === 'day' ? localDay.format(ms) : localMonth.format(ms)
}
