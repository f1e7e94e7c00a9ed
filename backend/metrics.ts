/**
 * Every metric of CONTRACT §7, registered on a Registry owned by one app instance
 * (the global registry throws when tests build two apps). Labels never carry secrets or user ids.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

const P = 'lnm_gateway_'

export function createMetrics(registry: Registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: P })
  const r = [registry]
  dropMisnamedGauges(registry)
  return {
    registry,
    // --- WebSocket ---
    connectionsOpen: new Gauge({ name: `${P}ws_connections_open`, help: 'open WebSocket connections', registers: r }),
    connectionsAccepted: new Counter({ name: `${P}ws_connections_accepted_total`, help: 'WebSocket connections accepted', registers: r }),
    connectionsRefused: new Counter({
      name: `${P}ws_connections_refused_total`,
      help: 'WebSocket connections refused',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    connectionsClosed: new Counter({
      name: `${P}ws_connections_closed_total`,
      help: 'WebSocket connections closed, by close code',
      labelNames: ['code'] as const,
      registers: r,
    }),
    framesSent: new Counter({
      name: `${P}ws_frames_sent_total`,
      help: 'frames sent, by type',
      labelNames: ['type'] as const,
      registers: r,
    }),
    bytesSent: new Counter({
      name: `${P}ws_bytes_sent_total`,
      help: 'bytes sent, by frame type',
      labelNames: ['type'] as const,
      registers: r,
    }),
    framesReceived: new Counter({
      name: `${P}ws_frames_received_total`,
      help: 'client frames received, by type (unknown for invalid)',
      labelNames: ['type'] as const,
      registers: r,
    }),
    fanoutDuration: new Histogram({
      name: `${P}fanout_duration_seconds`,
      help: 'time to serialize once and write one update to every subscriber',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers: r,
    }),
    staleWithheld: new Counter({
      name: `${P}stale_frames_withheld_total`,
      help: 'snapshots not sent because they were older than STALE_AFTER_MS',
      labelNames: ['channel'] as const,
      registers: r,
    }),
    slowConsumerCollapsed: new Counter({
      name: `${P}slow_consumer_collapsed_total`,
      help: 'pending updates collapsed to the latest snapshot for a slow socket',
      registers: r,
    }),
    slowConsumerDrops: new Counter({
      name: `${P}slow_consumer_drops_total`,
      help: 'sockets closed with 4008 for not reading',
      registers: r,
    }),
    authFailures: new Counter({
      name: `${P}auth_failures_total`,
      help: 'authentication failures, by reason',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    // --- upstream (exchange) ---
    upstreamRequests: new Counter({
      name: `${P}upstream_requests_total`,
      help: 'exchange requests, by endpoint and status',
      labelNames: ['endpoint', 'status'] as const,
      registers: r,
    }),
    upstreamDuration: new Histogram({
      name: `${P}upstream_request_duration_seconds`,
      help: 'exchange request duration',
      labelNames: ['endpoint'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    }),
    upstreamRetries: new Counter({
      name: `${P}upstream_retries_total`,
      help: 'exchange request retries, by endpoint and reason',
      labelNames: ['endpoint', 'reason'] as const,
      registers: r,
    }),
    circuitState: new Gauge({
      name: `${P}upstream_circuit_state`,
      help: 'circuit breaker per origin: 0 closed, 1 half-open, 2 open',
      labelNames: ['origin'] as const,
      registers: r,
    }),
    cacheHits: new Counter({ name: `${P}cache_hits_total`, help: 'cache hits, by cache', labelNames: ['cache'] as const, registers: r }),
    cacheMisses: new Counter({
      name: `${P}cache_misses_total`,
      help: 'cache misses, by cache',
      labelNames: ['cache'] as const,
      registers: r,
    }),
    streamConnected: new Gauge({
      name: `${P}upstream_stream_connected`,
      help: '1 when the LN Markets Stream v1 socket is up',
      registers: r,
    }),
    // --- HTTP ---
    httpRequests: new Counter({
      name: `${P}http_requests_total`,
      help: 'HTTP responses (upgrades refused before the handshake included), by status class',
      labelNames: ['status_class'] as const,
      registers: r,
    }),
    // --- pollers ---
    activePollers: new Gauge({ name: `${P}active_pollers`, help: 'accounts being polled by this node', registers: r }),
    pollsTotal: new Counter({ name: `${P}polls_total`, help: 'poll cycles, by outcome', labelNames: ['outcome'] as const, registers: r }),
    // --- freshness watchdog (streaming/freshness-watchdog.ts) ---
    starvedTopics: new Gauge({
      name: `${P}streaming_starved_topics`,
      help: "topics (accounts, ticker) this node's sockets watch whose data is older than STALE_AFTER_MS, by reason",
      labelNames: ['reason'] as const,
      registers: r,
    }),
    selfRepairs: new Counter({
      name: `${P}streaming_self_repairs_total`,
      help: 'freshness watchdog repairs, by action (redemand: ask the producer for a replay; reset: forget the cached data and its fence)',
      labelNames: ['action'] as const,
      registers: r,
    }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>

/**
 * prom-client's default metrics name three gauges `…_total` (active handles, requests, resources), a suffix reserved
 * for counters (`promtool check metrics` flags them). They are dropped: the same counts are there by type in
 * `…_nodejs_active_handles`, `…_nodejs_active_requests` and `…_nodejs_active_resources` (sum over `type`).
 */
function dropMisnamedGauges(registry: Registry): void {
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(`${P}${name}`)
}
