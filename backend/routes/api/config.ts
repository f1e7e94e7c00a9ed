/** GET /api/config/public — what the dashboard needs before login: the mode, the source, the demo login. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { DEMO_LOGIN } from '../../plugins/app/exchange.ts'

const PublicConfig = Type.Object({
  mode: Type.Union([Type.Literal('demo'), Type.Literal('live')]),
  source: Type.Union([Type.Literal('simulator'), Type.Literal('lnmarkets')]),
  network: Type.String(),
  staleAfterMs: Type.Number(),
  pollIntervalMs: Type.Number(),
  demoLogin: Type.Optional(Type.Object({ username: Type.String(), password: Type.String() })),
})

const configRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/config/public', { schema: { response: { 200: PublicConfig } } }, async () => ({
    mode: app.config.mode,
    source: app.exchange.source,
    network: app.exchange.network,
    staleAfterMs: app.config.STALE_AFTER_MS,
    pollIntervalMs: app.config.POLL_INTERVAL_MS,
    ...(app.config.mode === 'demo' ? { demoLogin: { ...DEMO_LOGIN } } : {}),
  }))
}

export default configRoute
