/**
 * The price chart (TradingView Lightweight Charts, with its attribution): candles seeded from GET /api/candles
 * (the exchange's history through the gateway's shared cache, so a reload shows hours, not seconds), live prices
 * folded into the current candle, whitespace where no price arrived (outage, stale feed) so a gap shows as a gap,
 * times on the axis in the browser's time zone with UTC on hover, and the selected position's entry,
 * liquidation, stop-loss and take-profit lines. A line that would squeeze the candles (their high–low range
 * under 40 % of the pane, see autoscale.ts) is kept out of the autoscale and named at the chart's edge with
 * its distance instead. Loaded lazily.
 */
import { useEffect, useRef, useState } from 'react'
import {
  CandlestickSeries,
  createChart,
  LineStyle,
  TickMarkType,
  type IChartApi,
  type IPriceLine,
  type ISeriesApi,
  type Time,
} from 'lightweight-charts'
import { useRealtimeClient } from '../../../lib/realtime-react.ts'
import { useApi } from '../../../lib/api-context.ts'
import { ApiError } from '../../../lib/api-client.ts'
import { fmtAxisTime, fmtDuration, fmtLocalDayTime, fmtPrice, fmtUtcDayTime } from '../../../lib/format.ts'
import { staleLimitOf } from '../../../../../backend/schemas/channels.ts'
import type { PositionRow } from '../positions/position-math.ts'
import { scaleWithLines, type PriceRange } from './autoscale.ts'
import {
  applyPrice,
  countGaps,
  isCandle,
  mergeRefresh,
  RANGE_MS,
  toBars,
  type Bar,
  type CandlesResponse,
  type ChartRange,
} from './candles.ts'

interface Palette {
  text: string
  grid: string
  up: string
  down: string
  entry: string
  liq: string
  sl: string
  tp: string
}

function palette(): Palette {
  const css = getComputedStyle(document.documentElement)
  const v = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback
  return {
    text: v('--muted', '#667'),
    grid: v('--grid', '#e5e7eb'),
    up: v('--pos', '#0a7a33'),
    down: v('--neg', '#c62828'),
    entry: v('--info', '#2563eb'),
    liq: v('--danger', '#dc2626'),
    sl: v('--warn', '#8a5a00'),
    tp: v('--pos', '#0a7a33'),
  }
}

export interface ChartLine {
  key: 'entry' | 'liq' | 'sl' | 'tp'
  label: string
  price: number
}

/** the lines of a position, those it has (stop-loss / take-profit 0 = not set) */
export function positionLines(p: PositionRow | null): ChartLine[] {
  if (!p) return []
  const out: ChartLine[] = []
  if (p.entry > 0) out.push({ key: 'entry', label: 'Entry', price: p.entry })
  if (p.liquidation > 0 && p.liquidation < 1e9) out.push({ key: 'liq', label: 'Liq', price: p.liquidation })
  if (p.stoploss > 0) out.push({ key: 'sl', label: 'SL', price: p.stoploss })
  if (p.takeprofit > 0) out.push({ key: 'tp', label: 'TP', price: p.takeprofit })
  return out
}

const toMs = (t: Time) => (typeof t === 'number' ? t * 1000 : typeof t === 'string' ? Date.parse(t) : Date.UTC(t.year, t.month - 1, t.day))

interface OffScale {
  key: string
  text: string
  dir: 'up' | 'down'
}

interface Status {
  state: 'loading' | 'ok' | 'stale' | 'error'
  text: string
}

export default function PriceChart(props: { position: PositionRow | null; theme: string; showLines: boolean; range: ChartRange }) {
  const client = useRealtimeClient()
  const api = useApi()
  const wrap = useRef<HTMLDivElement>(null)
  const box = useRef<HTMLDivElement>(null)
  const hover = useRef<HTMLDivElement>(null)
  const chart = useRef<IChartApi | null>(null)
  const series = useRef<ISeriesApi<'Candlestick'> | null>(null)
  const priceLines = useRef<IPriceLine[]>([])
  const lines = useRef<ChartLine[]>([])
  const showLines = useRef(props.showLines)
  const range = useRef(props.range)
  const last = useRef<Bar | undefined>(undefined)
  const refreshOffScale = useRef<() => void>(() => {})
  const pushRef = useRef<() => void>(() => {})
  const [offScale, setOffScale] = useState<OffScale[]>([])
  const [status, setStatus] = useState<Status>({ state: 'loading', text: 'Loading price history…' })

  // create once; feed it from the realtime client directly (no React render per tick)
  useEffect(() => {
    const el = box.current
    const outer = wrap.current
    if (!el || !outer) return
    const p = palette()
    const c = createChart(el, {
      autoSize: true,
      // the attribution is the text link under the chart (TradingView's terms allow either); the logo covered the price line
      layout: { background: { color: 'transparent' }, textColor: p.text, attributionLogo: false, fontSize: 11 },
      // times in the browser's time zone (named above the chart); the hover adds UTC
      localization: { priceFormatter: fmtPrice, timeFormatter: (t: Time) => fmtLocalDayTime(toMs(t)) },
      grid: { vertLines: { color: p.grid }, horzLines: { color: p.grid } },
      rightPriceScale: { borderVisible: false },
      timeScale: {
        borderVisible: false,
        timeVisible: true,
        secondsVisible: false,
        tickMarkFormatter: (t: Time, type: TickMarkType) => {
          const ms = toMs(t)
          if (type === TickMarkType.Year || type === TickMarkType.Month) return fmtAxisTime(ms, 'month')
          if (type === TickMarkType.DayOfMonth) {
            // the day starts at UTC midnight for the chart; elsewhere that instant is another hour of the local day
            const hm = fmtAxisTime(ms, 'time')
            return hm === '00:00' ? fmtAxisTime(ms, 'day') : `${fmtAxisTime(ms, 'day')} ${hm}`
          }
          return fmtAxisTime(ms, 'time')
        },
      },
      handleScroll: false,
      handleScale: false,
    })
    const s = c.addSeries(CandlestickSeries, {
      upColor: p.up,
      downColor: p.down,
      borderVisible: false,
      wickUpColor: p.up,
      wickDownColor: p.down,
      priceFormat: { type: 'price', precision: 1, minMove: 0.5 },
      // "with lines" mode: the lines that leave the candles readable (their high–low range at least
      // MIN_CANDLE_SHARE of the pane) stretch the scale; the others are named at the edge of the chart instead
      autoscaleInfoProvider: (base: () => { priceRange: PriceRange | null } | null) => {
        const r = base()
        if (!r?.priceRange || !showLines.current || lines.current.length === 0) return r
        const m = c.priceScale('right').options().scaleMargins
        return { ...r, priceRange: scaleWithLines(r.priceRange, lines.current, 1 - m.top - m.bottom).priceRange }
      },
    })
    chart.current = c
    series.current = s
    // the chart's API on its element, for the e2e test to measure what is drawn (priceToCoordinate)
    Object.defineProperty(outer, 'lwChart', { value: { chart: c, series: s }, configurable: true })

    // lines outside the visible price range: "Liq 61,200.0 ↓ (38.1 % away)" at the top or bottom edge
    let offKey = ''
    let raf = 0
    const computeOffScale = () => {
      raf = 0
      const height = c.paneSize(0).height
      const ref = isCandle(last.current) ? last.current.close : null
      const out: OffScale[] = []
      for (const l of lines.current) {
        const y = s.priceToCoordinate(l.price)
        if (y !== null && y >= 0 && y <= height) continue
        const dir: 'up' | 'down' = ref !== null ? (l.price > ref ? 'up' : 'down') : y !== null && y < 0 ? 'up' : 'down'
        const away = ref ? ` (${((Math.abs(l.price - ref) / ref) * 100).toFixed(1)} % away)` : ''
        out.push({ key: l.key, dir, text: `${l.label} ${fmtPrice(l.price)} ${dir === 'up' ? '↑' : '↓'}${away}` })
      }
      const k = JSON.stringify(out)
      if (k !== offKey) {
        offKey = k
        setOffScale(out)
        outer.dataset.offscale = out.map((o) => o.key).join(',')
      }
    }
    refreshOffScale.current = () => {
      if (!raf) raf = requestAnimationFrame(computeOffScale)
    }
    c.timeScale().subscribeSizeChange(refreshOffScale.current)

    // hover: the candle under the crosshair, its time in local time and in UTC
    c.subscribeCrosshairMove((param) => {
      const h = hover.current
      if (!h) return
      const data = param.time !== undefined ? param.seriesData.get(s) : undefined
      const bar = data as Bar | undefined
      if (!isCandle(bar) || param.time === undefined) {
        h.hidden = true
        return
      }
      const ms = toMs(param.time)
      h.hidden = false
      h.textContent = `${fmtLocalDayTime(ms)} · ${fmtUtcDayTime(ms)} · O ${fmtPrice(bar.open)} H ${fmtPrice(bar.high)} L ${fmtPrice(bar.low)} C ${fmtPrice(bar.close)}`
    })

    let lastSeq = ''
    const push = () => {
      const st = client.getState()
      const t = st.channels.ticker
      if (!t) return
      const key = `${t.epoch}:${t.seq}`
      if (key === lastSeq) return
      lastSeq = key
      // a price that is no longer fresh (feed down, polling behind, socket gone) is not drawn: the buckets it
      // would have filled stay empty and show as a gap once live prices come back
      const age = Date.now() + st.serverOffsetMs - t.sourceTs
      if (age > staleLimitOf('ticker', st.staleAfterMs)) return
      if (outer.dataset.seeded !== 'true' && outer.dataset.seeded !== 'failed') return
      const prev = last.current
      const pts = applyPrice(prev, t.data.lastPrice, t.sourceTs, RANGE_MS[range.current])
      for (const pt of pts) s.update(pt)
      const now = pts[pts.length - 1]
      if (now) {
        last.current = now
        outer.dataset.live = String(Number(outer.dataset.live ?? '0') + 1)
        if (!isCandle(prev) || now.time !== prev.time) outer.dataset.points = String(Number(outer.dataset.points ?? '0') + 1)
        if (pts.length > 1) outer.dataset.gaps = String(Number(outer.dataset.gaps ?? '0') + 1)
        refreshOffScale.current()
      }
    }
    const unsub = client.subscribe(push)
    pushRef.current = push
    return () => {
      unsub()
      if (raf) cancelAnimationFrame(raf)
      delete (outer as { lwChart?: unknown }).lwChart
      c.remove()
      chart.current = null
      series.current = null
      priceLines.current = []
    }
  }, [client])

  // the history of the selected range: on load, on a range change, and every few minutes (the live candle
  // is built from ticker prices; the exchange's own candles correct it)
  useEffect(() => {
    range.current = props.range
    const outer = wrap.current
    const s = series.current
    if (!outer || !s) return
    const ctrl = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    outer.dataset.range = props.range
    outer.dataset.seeded = 'loading'
    setStatus({ state: 'loading', text: 'Loading price history…' })
    const load = async (first: boolean) => {
      try {
        const res = await api.json<CandlesResponse>('GET', `/api/candles?range=${props.range}`, { signal: ctrl.signal })
        if (ctrl.signal.aborted) return
        const fresh = toBars(res.candles, RANGE_MS[props.range]).bars
        // what live prices drew after the exchange's last candle is kept (a stale copy can be minutes old)
        const bars = first ? fresh : mergeRefresh(fresh, s.data() as readonly Bar[], RANGE_MS[props.range])
        s.setData(bars)
        last.current = bars[bars.length - 1]
        outer.dataset.points = String(bars.filter(isCandle).length)
        outer.dataset.gaps = String(countGaps(bars))
        outer.dataset.first = String(res.candles[0]?.time ?? '')
        outer.dataset.seeded = 'true'
        outer.dataset.fetches = String(Number(outer.dataset.fetches ?? '0') + 1)
        if (first) chart.current?.timeScale().fitContent()
        setStatus(
          res.stale
            ? { state: 'stale', text: `LN Markets is not answering: history as of ${fmtDuration(res.ageMs)} ago` }
            : { state: 'ok', text: '' },
        )
        pushRef.current()
        refreshOffScale.current()
      } catch (e) {
        if (ctrl.signal.aborted) return
        if (first) {
          s.setData([])
          last.current = undefined
          outer.dataset.points = '0'
          outer.dataset.seeded = 'failed'
        }
        const msg = e instanceof ApiError ? e.message : 'the gateway could not be reached'
        setStatus({ state: 'error', text: `Price history unavailable (${msg}); live prices only` })
      }
      timer = setTimeout(() => void load(false), first && outer.dataset.seeded === 'failed' ? 15_000 : 120_000)
    }
    void load(true)
    return () => {
      ctrl.abort()
      if (timer) clearTimeout(timer)
    }
  }, [props.range, api])

  // theme changes recolour the chart
  useEffect(() => {
    const p = palette()
    chart.current?.applyOptions({ layout: { textColor: p.text }, grid: { vertLines: { color: p.grid }, horzLines: { color: p.grid } } })
    series.current?.applyOptions({ upColor: p.up, downColor: p.down, wickUpColor: p.up, wickDownColor: p.down })
  }, [props.theme])

  // "with lines" keeps near lines in view; "price" zooms on the candles
  useEffect(() => {
    showLines.current = props.showLines
    chart.current?.priceScale('right').applyOptions({ autoScale: true })
    refreshOffScale.current()
  }, [props.showLines])

  // entry, liquidation, stop-loss and take-profit lines of the selected position
  const pos = props.position
  useEffect(() => {
    const s = series.current
    if (!s) return
    for (const l of priceLines.current) s.removePriceLine(l)
    priceLines.current = []
    lines.current = positionLines(pos)
    const p = palette()
    const style = {
      entry: [p.entry, LineStyle.Dashed, 1],
      liq: [p.liq, LineStyle.Solid, 2],
      sl: [p.sl, LineStyle.Dotted, 1],
      tp: [p.tp, LineStyle.Dotted, 1],
    } as const
    for (const l of lines.current) {
      const [color, lineStyle, lineWidth] = style[l.key]
      priceLines.current.push(s.createPriceLine({ price: l.price, color, lineWidth, lineStyle, axisLabelVisible: true, title: l.label }))
    }
    if (wrap.current) wrap.current.dataset.lines = lines.current.map((l) => l.key).join(',')
    chart.current?.priceScale('right').applyOptions({ autoScale: true })
    refreshOffScale.current()
  }, [pos?.id, pos?.entry, pos?.liquidation, pos?.stoploss, pos?.takeprofit, props.theme])

  const drawn = positionLines(pos)
  const described = drawn.length > 0 ? `, with lines: ${drawn.map((l) => `${l.label} ${fmtPrice(l.price)}`).join(', ')}` : ''
  return (
    <div ref={wrap} className="chart-wrap" data-testid="price-chart">
      <div ref={box} className="chart-box" role="img" aria-label={`${props.range} price candles${described}`} />
      <div ref={hover} className="chart-hover small" data-testid="chart-hover" hidden />
      {offScale.map((o) => (
        <div
          key={o.key}
          className={`chart-offscale chart-offscale-${o.dir} chart-offscale-${o.key} small`}
          data-testid={`offscale-${o.key}`}
        >
          {o.text}
        </div>
      ))}
      {status.state !== 'ok' && status.text && (
        <p className={`chart-status small ${status.state === 'loading' ? 'muted' : 'warn'}`} role="status" data-testid="chart-status">
          {status.text}
        </p>
      )}
    </div>
  )
}
