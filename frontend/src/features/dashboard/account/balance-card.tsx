/** The account balance in sats, or in USD at the current index. */
import { Panel } from '../components/freshness.tsx'
import { useRealtime } from '../../../lib/realtime-react.ts'
import { useLocalSetting } from '../../../lib/local-setting.ts'
import { fmtPrice, fmtSats, fmtUsd } from '../../../lib/format.ts'

type Unit = 'sats' | 'usd'
const isUnit = (v: unknown): v is Unit => v === 'sats' || v === 'usd'

export function BalanceCard() {
  const account = useRealtime((s) => s.channels.account)
  const ticker = useRealtime((s) => s.channels.ticker)
  const [unit, setUnit] = useLocalSetting<Unit>('balanceUnit', 'sats', isUnit)
  const a = account?.data
  const index = ticker?.data.index ?? 0
  const canUsd = index > 0
  const showUsd = unit === 'usd' && canUsd

  return (
    <Panel
      id="account"
      title="Balance"
      sourceTs={account?.sourceTs}
      className="panel-account"
      actions={
        <div className="segmented" role="group" aria-label="Balance unit">
          <button type="button" aria-pressed={!showUsd} onClick={() => setUnit('sats')}>
            sats
          </button>
          <button type="button" aria-pressed={showUsd} disabled={!canUsd} onClick={() => setUnit('usd')} data-testid="balance-usd-toggle">
            USD
          </button>
        </div>
      }
    >
      <p className="balance" data-testid="balance" data-unit={showUsd ? 'usd' : 'sats'}>
        {!a ? '—' : showUsd ? fmtUsd((a.balance / 1e8) * index) : fmtSats(a.balance)}
      </p>
      {a && (
        <p className="balance-sub muted">
          {showUsd ? `${fmtSats(a.balance)}` : canUsd ? `≈ ${fmtUsd((a.balance / 1e8) * index)}` : ''}
          {canUsd && <> at index {fmtPrice(index)}</>}
          {a.syntheticUsdBalance > 0 && <> · synthetic USD {fmtUsd(a.syntheticUsdBalance)}</>}
        </p>
      )}
      {a && (
        <p className="muted small">
          Account {a.username} · fee tier {a.feeTier}
        </p>
      )}
    </Panel>
  )
}
