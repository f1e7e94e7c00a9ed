/** The running positions as table rows, with P&L estimated from the live price between polls. */
import { useMemo } from 'react'
import { useRealtime } from '../../../lib/realtime-react.ts'
import { toRows, type PositionRow } from './position-math.ts'

export function usePositionRows(): { rows: PositionRow[]; openOrders: number; sourceTs: number | undefined; loaded: boolean } {
  const positions = useRealtime((s) => s.channels.positions)
  const ticker = useRealtime((s) => s.channels.ticker)
  return useMemo(() => {
    if (!positions) return { rows: [], openOrders: 0, sourceTs: undefined, loaded: false }
    const live = ticker ? { price: ticker.data.lastPrice, sourceTs: ticker.sourceTs } : null
    return {
      rows: toRows(positions.data.running, positions.sourceTs, live),
      openOrders: positions.data.open.length,
      sourceTs: positions.sourceTs,
      loaded: true,
    }
  }, [positions, ticker])
}
