/** Last price with tick direction, index, bid/ask, funding rate and a countdown to the next funding. */
import { useRef } from 'react'
import { Panel } from '../components/freshness.tsx'
import { useRealtime } from '../../../lib/realtime-react.ts'
import { useNow } from '../../../lib/use-now.ts'
import { fmtCountdown, fmtPrice } from '../../../lib/format.ts'

type Direction = 'up' | 'down' | 'flat'

/** the direction of the last change of the price (kept while the price repeats) */
function useTickDirection(price: number | undefined): Direction {
  const ref = useRef<{ price: number | undefined; dir: Direction }>({ price: undefined, dir: 'flat' })
  const cur = ref.current
  if (price !== undefined && cur.price !== undefined && price !== cur.price) cur.dir = price > cur.price ? 'up' : 'down'
  cur.price = price
  return cur.dir
}

export function TickerBar() {
  const ticker = useRealtime((s) => s.channels.ticker)
  const offset = useRealtime((s) => s.serverOffsetMs)
  const now = useNow()
  const t = ticker?.data
  const dir = useTickDirection(t?.lastPrice)
  const fundingAt = t ? Date.parse(t.fundingTime) : NaN
  const spread = t && t.askPrice > 0 && t.bidPrice > 0 ? t.askPrice - t.bidPrice : null

  return (
    <Panel id="ticker" title="BTC/USD futures" sourceTs={ticker?.sourceTs} className="panel-ticker">
      <dl className="ticker">
        <div className="tick-main">
          <dt>Last price</dt>
          <dd className={`last-price dir-${dir}`} data-testid="last-price" data-direction={dir} aria-live="off">
            <span className="arrow" aria-label={dir === 'up' ? 'up tick' : dir === 'down' ? 'down tick' : 'unchanged'}>
              {dir === 'up' ? '▲' : dir === 'down' ? '▼' : '■'}
            </span>
            {t ? fmtPrice(t.lastPrice) : '—'}
          </dd>
        </div>
        <div>
          <dt>Index</dt>
          <dd data-testid="index-price">{t ? fmtPrice(t.index) : '—'}</dd>
        </div>
        <div>
          <dt>Bid / Ask</dt>
          <dd data-testid="bid-ask">
            {t ? `${fmtPrice(t.bidPrice)} / ${fmtPrice(t.askPrice)}` : '—'}
            {spread !== null && <span className="sub"> spread {spread.toFixed(1)}</span>}
          </dd>
        </div>
        <div>
          <dt>Funding rate</dt>
          <dd data-testid="funding-rate" className={t && t.fundingRate < 0 ? 'neg' : ''}>
            {t ? `${(t.fundingRate * 100).toFixed(4)} %` : '—'}
          </dd>
        </div>
        <div>
          <dt>Next funding</dt>
          <dd data-testid="funding-countdown">
            {Number.isFinite(fundingAt) ? <time dateTime={t?.fundingTime}>{fmtCountdown(fundingAt - (now + offset))}</time> : '—'}
          </dd>
        </div>
      </dl>
    </Panel>
  )
}
