/** The running positions as table rows, with P&L estimated from the live price between polls. */
import { useMemo } from 'react'
import { useRealtime } from '../../../lib/realtime-react.ts'
import type { FuturesTrade } from '../../../../../backend/schemas/ws-protocol.ts'
import { crossRow, toRows, type LivePrice, type PositionRow } from './position-math.ts'

export interface PositionData {
  rows: PositionRow[]
  /** the cross-margin position as a row (counted in totals and in the liquidation alert), or null */
  cross: PositionRow | null
  openOrders: FuturesTrade[]
  sourceTs: number | undefined
  crossTs: number | undefined
  loaded: boolean
  lastPrice: number | undefined
}

export function usePositionRows(): PositionData {
  const positions = useRealtime((s) => s.channels.positions)
  const cross = useRealtime((s) => s.channels.cross)
  const ticker = useRealtime((s) => s.channels.ticker)
  return useMemo(() => {
    const live: LivePrice | null = ticker
      ? { price: ticker.data.lastPrice, bid: ticker.data.bidPrice, ask: ticker.data.askPrice, sourceTs: ticker.sourceTs }
      : null
    const c = cross ? crossRow(cross.data.position, live) : null
    if (!positions)
      return {
        rows: [],
        cross: c,
        openOrders: [],
        sourceTs: undefined,
        crossTs: cross?.sourceTs,
        loaded: false,
        lastPrice: ticker?.data.lastPrice,
      }
    return {
      rows: toRows(positions.data.running, positions.sourceTs, live),
      cross: c,
      openOrders: positions.data.open,
      sourceTs: positions.sourceTs,
      crossTs: cross?.sourceTs,
      loaded: true,
      lastPrice: ticker?.data.lastPrice,
    }
  }, [positions, cross, ticker])
}
