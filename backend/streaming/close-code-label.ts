/**
 * The `code` label of `ws_connections_closed_total`. A client chooses its own close code (any of 1000–4999), and
 * a label value per code a client invents is an unbounded set of series: only the codes of the protocol (RFC 6455's
 * and CONTRACT §5's) are labels, every other code is counted as "other".
 */
import { CloseCode } from '../schemas/ws-protocol.ts'

/** RFC 6455 §7.4.1 codes a peer or the ws library can report, plus this protocol's own */
const KNOWN = new Set<number>([
  1000,
  1001,
  1002,
  1003,
  1005,
  1006,
  1007,
  1008,
  1009,
  1010,
  1011,
  1012,
  1013,
  1014,
  1015,
  ...Object.values(CloseCode),
])
const LABELS = new Map<number, string>([...KNOWN].map((c) => [c, String(c)]))

export function closeCodeLabel(code: number): string {
  return LABELS.get(code) ?? 'other'
}
