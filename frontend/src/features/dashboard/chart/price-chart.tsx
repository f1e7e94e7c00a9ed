/**
 * A small live price chart (TradingView Lightweight Charts, with its attribution) with the selected
 * position's entry and liquidation lines. Loaded lazily so the first paint does not wait for it.
 */
import { useEffect, useRef } from 'react'
import {
  createChart,
  LineSeries,
  LineStyle,
  type IChartApi,
  type IPriceLine,
  type ISeriesApi,
  type UTCTimestamp,
} from 'lightweight-charts'
import { useRealtimeClient } from '../../../lib/realtime-react.ts'
import { CHART_MAX_POINTS } from '../../../config/constants.ts'
import { fmtPrice } from '../../../lib/format.ts'
import type { PositionRow } from '../positions/position-math.ts'

/** entry/liquidation lines closer than this to the price are kept inside the price scale */
const NEAR_PCT = 15

interface Palette {
  text: string
  grid: string
  line: string
  entry: string
  liq: string
  bg: string
}

function palette(): Palette {
  const css = getComputedStyle(document.documentElement)
  const v = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback
  return {
    text: v('--muted', '#667'),
    grid: v('--grid', '#e5e7eb'),
    line: v('--accent', '#f7931a'),
    entry: v('--info', '#2563eb'),
    liq: v('--danger', '#dc2626'),
    bg: v('--panel', '#ffffff'),
  }
}

export default function PriceChart(props: { position: PositionRow | null; theme: string; showLines: boolean }) {
  const client = useRealtimeClient()
  const box = useRef<HTMLDivElement>(null)
  const chart = useRef<IChartApi | null>(null)
  const series = useRef<ISeriesApi<'Line'> | null>(null)
  const lines = useRef<IPriceLine[]>([])
  const bounds = useRef<number[] | null>(null)
  const showLines = useRef(props.showLines)

  // create once; feed it from the realtime client directly (no React render per tick)
  useEffect(() => {
    const el = box.current
    if (!el) return
    const p = palette()
    const c = createChart(el, {
      autoSize: true,
      // the attribution is the text link under the chart (TradingView's terms allow either); the logo covered the price line
      layout: { background: { color: 'transparent' }, textColor: p.text, attributionLogo: false, fontSize: 11 },
      localization: { priceFormatter: fmtPrice },
      grid: { vertLines: { color: p.grid }, horzLines: { color: p.grid } },
      rightPriceScale: { borderVisible: false },
      timeScale: { borderVisible: false, timeVisible: true, secondsVisible: true },
      handleScroll: false,
      handleScale: false,
    })
    const s = c.addSeries(LineSeries, {
      color: p.line,
      lineWidth: 2,
      priceFormat: { type: 'price', precision: 1, minMove: 0.5 },
      // keep the entry/liquidation lines in view when they are close enough to matter (within NEAR_PCT
      // of the price); a far one would flatten the price line, and the legend names it anyway
      autoscaleInfoProvider: (base: () => { priceRange: { minValue: number; maxValue: number } } | null) => {
        const r = base()
        const b = bounds.current
        if (!r || !b || !showLines.current) return r
        const mid = (r.priceRange.minValue + r.priceRange.maxValue) / 2
        const near = b.filter((p) => Math.abs(p - mid) / mid <= NEAR_PCT / 100)
        if (near.length === 0) return r
        return { priceRange: { minValue: Math.min(r.priceRange.minValue, ...near), maxValue: Math.max(r.priceRange.maxValue, ...near) } }
      },
    })
    chart.current = c
    series.current = s
    let lastTime = 0
    let count = 0
    let lastSeq = ''
    const push = () => {
      const t = client.getState().channels.ticker
      if (!t) return
      const key = `${t.epoch}:${t.seq}`
      if (key === lastSeq) return
      lastSeq = key
      const time = Math.floor(t.sourceTs / 1000)
      if (time < lastTime) return
      s.update({ time: time as UTCTimestamp, value: t.data.lastPrice })
      if (time > lastTime) count++
      lastTime = time
      // re-fitting the whole time scale on every tick costs main-thread time all day: fit while the chart fills
      // up, then only now and then (between fits, the newest point scrolls into view by itself)
      if (count <= 60 || count % 30 === 0) c.timeScale().fitContent()
      if (count > CHART_MAX_POINTS) {
        const data = s.data().slice(-CHART_MAX_POINTS)
        s.setData(data)
        count = data.length
      }
    }
    push()
    const unsub = client.subscribe(push)
    return () => {
      unsub()
      c.remove()
      chart.current = null
      series.current = null
      lines.current = []
    }
  }, [client])

  // theme changes recolour the chart
  useEffect(() => {
    const p = palette()
    chart.current?.applyOptions({ layout: { textColor: p.text }, grid: { vertLines: { color: p.grid }, horzLines: { color: p.grid } } })
    series.current?.applyOptions({ color: p.line })
  }, [props.theme])

  // "price + lines" keeps entry/liquidation in view; "price only" zooms on the live price
  useEffect(() => {
    showLines.current = props.showLines
    chart.current?.priceScale('right').applyOptions({ autoScale: true })
  }, [props.showLines])

  // entry and liquidation lines of the selected position
  const pos = props.position
  useEffect(() => {
    const s = series.current
    if (!s) return
    for (const l of lines.current) s.removePriceLine(l)
    lines.current = []
    bounds.current = null
    if (!pos) return
    const p = palette()
    lines.current.push(s.createPriceLine({ price: pos.entry, color: p.entry, lineWidth: 1, lineStyle: LineStyle.Dashed, axisLabelVisible: true, title: 'entry' }))
    if (pos.liquidation > 0) {
      lines.current.push(s.createPriceLine({ price: pos.liquidation, color: p.liq, lineWidth: 2, lineStyle: LineStyle.Solid, axisLabelVisible: true, title: 'liq.' }))
    }
    bounds.current = [pos.entry, pos.liquidation].filter((x) => x > 0)
  }, [pos?.id, pos?.entry, pos?.liquidation, props.theme])

  return <div ref={box} className="chart-box" role="img" aria-label={pos ? `Live price chart with entry ${pos.entry} and liquidation ${pos.liquidation}` : 'Live price chart'} />
}
