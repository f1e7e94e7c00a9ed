/**
 * The exchange: an LN Markets v3 client (and Stream v1 ticker) pointed at LN Markets in live mode,
 * or at the in-process simulator in demo mode, where a demo user with simulator credentials is ensured.
 */
import fp from 'fastify-plugin'
import { LnmClient, type LnmClientOptions } from '../../exchange/client.ts'
import { LnmStream } from '../../exchange/stream.ts'
import { demoAccounts, loadAccountsFile, startSimulator, type SimAccountInput, type Simulator } from '../../simulator/index.ts'
import type { Source } from '../../schemas/ws-protocol.ts'
import type { Log } from '../../logger.ts'

export const DEMO_LOGIN = { username: 'demo', password: 'demo' } as const
/** not a scrypt hash: verifyPassword never accepts anything against it */
const DISABLED_DEMO_HASH = '!disabled:demo-account-outside-demo-mode'

export interface Exchange {
  client: LnmClient
  stream: LnmStream | null
  source: Source
  /** what is stored with credentials: demo, mainnet, signet or custom */
  network: string
  simulator: Simulator | null
}

export interface SimulatorOptions {
  accounts?: SimAccountInput[]
  rateLimit?: { publicPerSec?: number; authPerSec?: number }
  tickMs?: number
}

/** what a build may change in the exchange client (tests against a local simulator); defaults: the official policy */
export type ExchangeClientOptions = Pick<LnmClientOptions, 'retry' | 'limits'>

async function startDemoSimulator(port: number, host: string, admin: boolean, o: SimulatorOptions, log: Log): Promise<Simulator> {
  const opts = {
    host,
    admin,
    accounts: o.accounts ?? demoAccounts(),
    ...(o.rateLimit !== undefined && { rateLimit: o.rateLimit }),
    ...(o.tickMs !== undefined && { tickMs: o.tickMs }),
  }
  try {
    return await startSimulator({ port, ...opts })
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE' || port === 0) throw err
    log.warn({ port }, 'simulator port in use; the demo simulator takes a free port instead')
    return startSimulator({ port: 0, ...opts })
  }
}

export default fp(
  async function exchange(app, opts: { simulator?: SimulatorOptions; client?: ExchangeClientOptions }) {
    const { config } = app
    let simulator: Simulator | null = null
    let apiUrl = config.apiUrl
    let streamUrl = config.streamUrl
    if (config.mode === 'demo') {
      // SIM_ACCOUNTS_FILE gives the demo simulator its accounts, as it does the standalone one (a build option wins:
      // tests pass theirs); a bad file stops start-up with its path and the field at fault
      const accounts = opts.simulator?.accounts ?? (config.SIM_ACCOUNTS_FILE ? loadAccountsFile(config.SIM_ACCOUNTS_FILE) : undefined)
      simulator = await startDemoSimulator(
        config.SIM_PORT,
        '127.0.0.1',
        config.SIM_ADMIN,
        { ...opts.simulator, ...(accounts && { accounts }) },
        app.log,
      )
      apiUrl = simulator.url
      streamUrl = simulator.streamUrl
      app.log.info({ url: simulator.url }, 'demo mode: LN Markets simulator running in-process')
    }
    // while the breaker is open, a public GET /ping every third of a poll period (at most every openMs) is its
    // probe: the exchange's return is seen well within one poll period, and the pollers are told (onRecovered)
    const probeMs = Math.min(config.UPSTREAM_BREAKER_OPEN_MS, Math.max(500, Math.floor(config.POLL_INTERVAL_MS / 3)))
    const client = new LnmClient({
      baseUrl: apiUrl!,
      metrics: app.metrics,
      logger: app.log.child({ module: 'exchange' }),
      breaker: { openMs: config.UPSTREAM_BREAKER_OPEN_MS, probeMs },
      ...opts.client,
      // the build's limits (tests) win over the environment's
      limits: { authPerSec: config.LNM_SIGNED_CALLS_PER_SEC, publicPerSec: config.LNM_PUBLIC_CALLS_PER_SEC, ...opts.client?.limits },
    })
    const stream = streamUrl ? new LnmStream({ url: streamUrl, metrics: app.metrics, logger: app.log.child({ module: 'stream' }) }) : null
    const network = config.mode === 'demo' ? 'demo' : config.LNM_NETWORK !== 'demo' ? config.LNM_NETWORK : 'custom'

    app.decorate('exchange', {
      client,
      stream,
      source: config.mode === 'demo' ? 'simulator' : 'lnmarkets',
      network,
      simulator,
    } satisfies Exchange)

    // learn the exchange's clock once at start, in the background: the first signed poll then needs no /time call
    app.addHook('onReady', async () => {
      client
        .time({ deadlineMs: 5000 })
        .catch((err: unknown) => app.log.warn({ err: (err as Error).message }, 'exchange clock sync at start failed; retried on first use'))
    })
    app.addHook('onClose', async () => {
      // both at once, as before, but onClose now also waits for the stream's socket (close() is bounded)
      await Promise.all([stream?.close(), client.close()])
      await simulator?.close()
    })
  },
  { name: 'exchange', dependencies: ['metrics'] },
)

/** demo mode: the demo user exists and holds the simulator's demo account credentials */
export const demoBootstrap = fp(
  async function demo(app) {
    if (app.config.mode !== 'demo' || !app.exchange.simulator) {
      // live mode on a database that once ran in demo mode: the publicly known demo/demo login must not keep working
      app.addHook('onReady', async () => {
        const user = await app.prisma.user.findUnique({ where: { username: DEMO_LOGIN.username } })
        if (!user || !(await app.passwords.verify(DEMO_LOGIN.password, user.passwordHash))) return
        await app.prisma.$transaction([
          app.prisma.user.update({ where: { id: user.id }, data: { passwordHash: DISABLED_DEMO_HASH, tokensValidAfter: new Date() } }),
          app.prisma.refreshSession.updateMany({ where: { userId: user.id, revokedAt: null }, data: { revokedAt: new Date() } }),
        ])
        app.log.warn(
          { username: DEMO_LOGIN.username },
          'live mode: the demo account left by a demo run is disabled (its password was the public demo one)',
        )
      })
      return
    }
    app.addHook('onReady', async () => {
      const account = app.exchange.simulator!.accounts.find((a) => a.username === 'demo') ?? app.exchange.simulator!.accounts[0]!
      let user = await app.prisma.user.findUnique({ where: { username: DEMO_LOGIN.username } })
      user ??= await app.prisma.user.create({
        data: { username: DEMO_LOGIN.username, passwordHash: await app.passwords.hash(DEMO_LOGIN.password) },
      })
      // back in demo mode after a live run disabled it: the demo login works again
      if (user.passwordHash === DISABLED_DEMO_HASH) {
        user = await app.prisma.user.update({
          where: { id: user.id },
          data: { passwordHash: await app.passwords.hash(DEMO_LOGIN.password) },
        })
      }
      const stored = await app.vault.get(user.id).catch(() => null)
      if (!stored || stored.key !== account.key || stored.secret !== account.secret || stored.passphrase !== account.passphrase) {
        await app.vault.put(user.id, { key: account.key, secret: account.secret, passphrase: account.passphrase }, 'demo', new Date())
      }
    })
  },
  { name: 'demo-bootstrap', dependencies: ['exchange', 'vault', 'db'] },
)

declare module 'fastify' {
  interface FastifyInstance {
    exchange: Exchange
  }
}
