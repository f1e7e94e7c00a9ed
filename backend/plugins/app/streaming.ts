/**
 * Streaming: wires the bus, the account pollers, the ticker feed and the hub to the exchange client,
 * the vault and authentication, and exposes them as `app.streaming`. Drains sockets with 1001 over
 * SHUTDOWN_DRAIN_MS before the server closes.
 */
import fp from 'fastify-plugin'
import { ACCOUNT_DERIVATIONS, accountFetchers } from '../../exchange/fetchers.ts'
import { toTickerSnapshot } from '../../exchange/snapshots.ts'
import { AccountPollers } from '../../streaming/account-pollers.ts'
import { CONTROL_TOPIC, SESSIONS_TOPIC, type Bus, type BusEvent } from '../../streaming/bus.ts'
import { createBus } from '../../streaming/bus-factory.ts'
import { buildDashboard, createDashboardMemo, type DashboardView } from '../../streaming/dashboard.ts'
import { FreshnessWatchdog, type FreshnessReport } from '../../streaming/freshness-watchdog.ts'
import { Hub } from '../../streaming/hub.ts'
import type { AccountSource, TickerSource } from '../../streaming/sources.ts'
import { TickerFeed } from '../../streaming/ticker-feed.ts'
import { PrivateStreams, privateStreamBudget, privateStreamRates } from '../../streaming/private-streams.ts'
import { LnmPrivateStream } from '../../exchange/private-stream.ts'
import { UpgradeGate } from '../../streaming/upgrade-gate.ts'
import type { UpstreamState } from '../../schemas/ws-protocol.ts'

export interface Streaming {
  bus: Bus
  hub: Hub
  pollers: AccountPollers
  ticker: TickerFeed
  /** null when PRIVATE_STREAMS_PER_NODE is 0 or there is no stream URL */
  privateStreams: PrivateStreams | null
  /** /ws admission before the handshake: Origin, upgrades per address, unauthenticated sockets */
  gate: UpgradeGate
  /** /api/dashboard: watch the account, wait briefly for a cold cache, render from cache */
  dashboard(userId: string): Promise<DashboardView>
  upstreamState(): UpstreamState | 'idle'
  /** do this node's sockets get fresh data? (/health/ready) */
  freshness(): FreshnessReport
}

export default fp(
  async function streaming(app) {
    const { config, metrics } = app
    const log = app.log.child({ module: 'streaming' })
    const { client, stream, source } = app.exchange

    // in-process, or Redis when REDIS_URL is set (one producer per account across the cluster, REDIS_LEASE_MS)
    const bus = createBus(config, log)
    const accountSource: AccountSource = accountFetchers(client)
    const tickerSource: TickerSource = {
      fetchTicker: async (o) => ({ data: toTickerSnapshot(await client.ticker(o)), ts: Date.now() }),
    }
    // exchange push: private Stream v1 per polled account within the node's budget (hub is set below)
    let hubRef: Hub | null = null
    const privateUrl = app.exchange.simulator?.streamUrl ?? config.streamUrl
    let privateStreams: PrivateStreams | null = null
    const pollers = new AccountPollers({
      bus,
      source: accountSource,
      pushIntervalMs: config.PUSH_RECONCILE_MS,
      onStart: (userId) => privateStreams?.watch(userId),
      onStop: (userId) => privateStreams?.unwatch(userId),
      onCredentials: (userId) => privateStreams?.credentialsChanged(userId),
      derive: ACCOUNT_DERIVATIONS,
      credentials: (userId) => app.vault.get(userId),
      intervalMs: config.POLL_INTERVAL_MS,
      metrics,
      log,
    })
    const ticker = new TickerFeed({ bus, source: tickerSource, stream, intervalMs: config.TICKER_INTERVAL_MS, metrics, log })
    const gate = new UpgradeGate({
      allowedOrigins: config.corsOrigins,
      unauthPerAddress: config.WS_UNAUTH_PER_ADDRESS,
      unauthMax: config.WS_UNAUTH_MAX,
      upgradesPerMinute: config.WS_UPGRADES_PER_MIN,
    })
    const hub = new Hub({
      bus,
      verify: (token) => app.authn.verifyAccessToken(token),
      source,
      metrics,
      maxConnections: config.MAX_CONNECTIONS,
      maxConnectionsPerUser: config.MAX_CONNECTIONS_PER_USER,
      authTimeoutMs: config.WS_AUTH_TIMEOUT_MS,
      heartbeatMs: config.WS_HEARTBEAT_MS,
      maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES,
      rateLimitPerSec: config.WS_RATE_LIMIT_PER_SEC,
      staleAfterMs: config.STALE_AFTER_MS,
      graceMs: config.POLLER_GRACE_MS,
      // a first poll is up to 5 signed calls, which the per-key throttle (5/s) spreads over ~1.1 s
      coldWaitMs: Math.min(3000, Math.max(2000, config.POLL_INTERVAL_MS)),
      log,
      onAuthenticated: (socket) => gate.release(socket),
    })
    hubRef = hub
    // LN Markets counts streams per IP: every worker of this machine (WORKERS) holds its own ticker stream, and the
    // workers share what is left of the 32 sockets
    const machineBudget = privateStreamBudget(config.PRIVATE_STREAMS_PER_NODE, stream ? config.workers : 0)
    const privateBudget = Math.floor(machineBudget / config.workers) + (config.workerIndex < machineBudget % config.workers ? 1 : 0)
    if (privateUrl && privateBudget > 0) {
      const streamLog = app.log.child({ module: 'private-stream' })
      privateStreams = new PrivateStreams({
        pollers,
        credentials: (userId) => app.vault.get(userId),
        create: (creds, _userId, admit) =>
          new LnmPrivateStream({
            url: privateUrl,
            creds,
            logger: streamLog,
            metrics,
            now: () => Date.now() + client.clockOffsetMs,
            reconnect: { baseMs: 1000, capMs: 60_000 },
            // every reconnect takes a token of the node-wide connection budget (authenticate and new-connection limits per IP)
            gate: admit,
            // a ping (and its pong) often enough that the stream's own liveness keeps the data's age under the stale limit
            pingIntervalMs: Math.max(1000, Math.min(30_000, Math.floor(config.STALE_AFTER_MS / 3))),
          }),
        budget: privateBudget,
        // LN Markets counts authenticate and new connections per IP: the workers of this machine share them
        ...privateStreamRates(config.PRIVATE_STREAM_STARTS_PER_MIN, config.workers),
        confirmEveryMs: Math.max(250, Math.min(5000, Math.floor(config.STALE_AFTER_MS / 4))),
        weight: (userId) => hubRef.watchers(userId),
        log,
      })
      privateStreams.start()
    }
    const watchdog = new FreshnessWatchdog({
      watched: () => hub.watchedTopics(),
      cache: hub.cache,
      bus,
      staleAfterMs: config.STALE_AFTER_MS,
      metrics,
      log,
    })
    // the exchange answers again after an outage: whoever backed off fetches now (spread over a short window)
    const offRecovered = client.onRecovered(() => {
      ticker.recover()
      const n = pollers.recover()
      if (n > 0) log.info({ pollers: n }, 'exchange answers again; backed-off pollers poll now')
    })
    pollers.start()
    ticker.start()
    hub.start()
    watchdog.start()

    // revocation, deletion and credential changes reach open sockets and pollers at once — on every node:
    // they travel on the bus (in-process, or Redis across the cluster) and each node applies them to its sockets
    const unsubscribeSessions = bus.subscribe(SESSIONS_TOPIC, (e: BusEvent) => {
      if (e.kind === 'revoke') hub.revokeToken(e.userId, e.tokenHash)
      else if (e.kind === 'forbid') hub.forbidUser(e.userId, e.reason)
    })
    const onRevoked = ({ userId, tokenHash }: { userId: string; tokenHash: string }) =>
      bus.publish(SESSIONS_TOPIC, { kind: 'revoke', userId, tokenHash })
    const onUserDeleted = ({ userId }: { userId: string }) =>
      bus.publish(SESSIONS_TOPIC, { kind: 'forbid', userId, reason: 'user deleted' })
    const onCredsChanged = ({ userId }: { userId: string }) => bus.publish(CONTROL_TOPIC, { kind: 'credentials', key: userId })
    const onCredsDeleted = ({ userId }: { userId: string }) => {
      bus.publish(SESSIONS_TOPIC, { kind: 'forbid', userId, reason: 'exchange credentials deleted' })
      bus.publish(CONTROL_TOPIC, { kind: 'credentials', key: userId })
    }
    app.authn.events.on('revoked', onRevoked)
    app.authn.events.on('user_deleted', onUserDeleted)
    app.vault.events.on('changed', onCredsChanged)
    app.vault.events.on('deleted', onCredsDeleted)

    app.addHook('onReady', async () => {
      stream?.connect()
    })
    app.addHook('preClose', async () => {
      await hub.drain(config.SHUTDOWN_DRAIN_MS)
    })
    app.addHook('onClose', async () => {
      app.authn.events.off('revoked', onRevoked)
      app.authn.events.off('user_deleted', onUserDeleted)
      app.vault.events.off('changed', onCredsChanged)
      app.vault.events.off('deleted', onCredsDeleted)
      unsubscribeSessions()
      offRecovered()
      watchdog.stop()
      await hub.stop()
      await ticker.stop()
      await pollers.stop()
      await privateStreams?.stop()
      await bus.close()
    })

    const dashboardMemo = createDashboardMemo()
    app.decorate('streaming', {
      bus,
      hub,
      pollers,
      ticker,
      get privateStreams() {
        return privateStreams
      },
      gate,
      async dashboard(userId: string) {
        await hub.touch(userId)
        return buildDashboard(hub.cache, userId, { now: Date.now(), staleAfterMs: config.STALE_AFTER_MS, source }, dashboardMemo)
      },
      upstreamState: () => hub.upstreamState(),
      freshness: () => watchdog.report(),
    } satisfies Streaming)
  },
  { name: 'streaming', dependencies: ['metrics', 'auth', 'vault', 'exchange'] },
)

declare module 'fastify' {
  interface FastifyInstance {
    streaming: Streaming
  }
}
