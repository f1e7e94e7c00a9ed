/** autocannon in its own process (so the HTTP load's CPU is never the server's). IPC: {op:'run', opts} → summary. */
import autocannon from 'autocannon'

process.on('message', (m: any) => {
  if (m?.op !== 'run') return
  const inst = autocannon({ ...m.opts }, (err: Error | null, r: any) => {
    if (err) {
      process.send?.({ id: m.id, error: err.message })
      return
    }
    process.send?.({
      id: m.id,
      rps: r.requests.average,
      total: r.requests.total,
      latency: { p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max, mean: r.latency.average },
      throughputBps: r.throughput.average,
      statusCodes: r.statusCodeStats,
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      duration: r.duration,
    })
  })
  void inst
})
process.on('disconnect', () => process.exit(0))
process.send?.({ ready: true })
