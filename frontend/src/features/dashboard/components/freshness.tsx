/**
 * How old a panel's numbers are, said on every panel: "updated N s ago" from the data's sourceTs on the
 * server's clock, re-rendered every second; past the stale threshold the panel is greyed and says STALE.
 */
import { staleLimitOf, type Channel } from '../../../../../backend/schemas/channels.ts'
import type { ReactNode } from 'react'
import { useNow } from '../../../lib/use-now.ts'
import { useRealtime } from '../../../lib/realtime-react.ts'
import { fmtDuration } from '../../../lib/format.ts'
import { channelAgeMs } from '../../../lib/channel-age.ts'

export interface Freshness {
  ageMs: number | null
  stale: boolean
}

/** `channel`: whose staleness rule applies (a slow channel such as history may be older before it is stale) */
export function useFreshness(sourceTs: number | undefined, channel?: Channel): Freshness {
  const now = useNow()
  const offset = useRealtime((s) => s.serverOffsetMs)
  const staleAfterMs = useRealtime((s) => s.staleAfterMs)
  const staleAfter = channel ? staleLimitOf(channel, staleAfterMs) : staleAfterMs
  const ageMs = channelAgeMs(sourceTs, now, offset)
  return { ageMs, stale: ageMs !== null && ageMs > staleAfter }
}

export function FreshnessLabel({ id, freshness, extra }: { id: string; freshness: Freshness; extra?: ReactNode }) {
  const { ageMs, stale } = freshness
  return (
    <span className="freshness">
      {extra}
      {stale && (
        <span className="badge badge-stale" data-testid={`${id}-stale`} title="Older than the freshness limit: not live">
          STALE
        </span>
      )}
      <span className="updated" data-testid={`${id}-updated`}>
        {ageMs === null ? 'waiting for data…' : `updated ${fmtDuration(ageMs)} ago`}
      </span>
    </span>
  )
}

export function Panel(props: {
  id: string
  title: string
  sourceTs: number | undefined
  /** the channel the panel shows, for its staleness rule */
  channel?: Channel
  children: ReactNode
  actions?: ReactNode
  className?: string
  extra?: ReactNode
}) {
  const freshness = useFreshness(props.sourceTs, props.channel)
  const headingId = `${props.id}-title`
  return (
    <section
      className={`panel ${props.className ?? ''} ${freshness.stale ? 'is-stale' : ''}`}
      data-testid={`panel-${props.id}`}
      data-stale={freshness.stale ? 'true' : 'false'}
      aria-labelledby={headingId}
    >
      <header className="panel-head">
        <h2 id={headingId}>{props.title}</h2>
        <div className="panel-head-right">
          {props.actions}
          <FreshnessLabel id={props.id} freshness={freshness} extra={props.extra} />
        </div>
      </header>
      <div className="panel-body">{props.children}</div>
    </section>
  )
}
