/**
 * PUT/GET/DELETE /api/credentials — verified against the exchange before they are stored; never returned.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { httpError } from '../../errors.ts'
import { CredentialsBody, CredentialsInfo, ErrorResponse, Ok, commonErrors } from '../../schemas/http.ts'
import type { StoredInfo } from '../../plugins/app/vault.ts'

const toInfo = (i: StoredInfo) => ({
  maskedKey: i.maskedKey,
  network: i.network,
  createdAt: i.createdAt.toISOString(),
  verifiedAt: i.verifiedAt?.toISOString() ?? null,
})

const credentialsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', app.requireUser)

  app.put(
    '/credentials',
    {
      config: { rateLimit: { max: 10, timeWindow: 60_000 } },
      schema: {
        body: CredentialsBody,
        response: { 200: CredentialsInfo, 422: ErrorResponse, 502: ErrorResponse, 503: ErrorResponse, ...commonErrors },
      },
    },
    async (request) => {
      const secret = { key: request.body.apiKey, secret: request.body.apiSecret, passphrase: request.body.passphrase }
      try {
        await app.exchange.client.account(secret)
      } catch (err) {
        const kind = (err as { kind?: string }).kind
        app.authn.audit('credentials_rejected', { userId: request.userId, ip: request.ip, detail: kind ?? 'error' })
        if (kind === 'credentials_rejected')
          throw httpError(
            422,
            'credentials_rejected',
            'LN Markets rejected these credentials: check the key, secret and passphrase, and that the key is enabled',
          )
        if (kind === 'rate_limited')
          throw httpError(503, 'exchange_rate_limited', 'LN Markets is rate-limiting requests; try again in a minute', {
            'retry-after': '60',
          })
        if (kind === 'timeout' || kind === 'unavailable' || kind === 'circuit_open')
          throw httpError(503, 'exchange_unavailable', 'LN Markets did not answer; the credentials were not stored. Try again shortly', {
            'retry-after': '30',
          })
        if (kind) throw httpError(502, 'exchange_error', 'LN Markets gave an unexpected answer; the credentials were not stored')
        throw err
      }
      const info = await app.vault.put(request.userId, secret, app.exchange.network, new Date())
      app.authn.audit('credentials_put', { userId: request.userId, ip: request.ip, detail: info.maskedKey })
      return toInfo(info)
    },
  )

  // demo mode only: a fresh simulator account (balance, running positions, an open order) for this user, its
  // credentials stored like any verified key — one click from "no key" to a populated dashboard
  app.post(
    '/credentials/demo',
    {
      config: { rateLimit: { max: 5, timeWindow: 60_000 } },
      schema: { response: { 200: CredentialsInfo, 404: ErrorResponse, ...commonErrors } },
    },
    async (request) => {
      const sim = app.exchange.simulator
      if (app.config.mode !== 'demo' || !sim) throw httpError(404, 'not_found', 'Simulator credentials exist only in demo mode')
      const account = {
        username: `trader-${request.userId.slice(0, 8)}`,
        key: `sim-${randomBytes(9).toString('hex')}`,
        secret: randomBytes(24).toString('base64'),
        passphrase: randomBytes(8).toString('hex'),
        balance: 1_000_000,
        positions: [
          { side: 'buy' as const, quantity: 300, leverage: 10 },
          { side: 'sell' as const, quantity: 100, leverage: 20 },
          { side: 'buy' as const, quantity: 200, leverage: 15, type: 'limit' as const },
        ],
      }
      sim.addAccount(account)
      const info = await app.vault.put(
        request.userId,
        { key: account.key, secret: account.secret, passphrase: account.passphrase },
        app.exchange.network,
        new Date(),
      )
      app.authn.audit('credentials_put', { userId: request.userId, ip: request.ip, detail: `demo ${info.maskedKey}` })
      return toInfo(info)
    },
  )

  app.get('/credentials', { schema: { response: { 200: CredentialsInfo, 404: ErrorResponse, ...commonErrors } } }, async (request) => {
    const info = await app.vault.info(request.userId)
    if (!info) throw httpError(404, 'not_found', 'No LN Markets credentials are stored')
    return toInfo(info)
  })

  app.delete('/credentials', { schema: { response: { 200: Ok, 404: ErrorResponse, ...commonErrors } } }, async (request) => {
    const removed = await app.vault.remove(request.userId)
    if (!removed) throw httpError(404, 'not_found', 'No LN Markets credentials are stored')
    app.authn.audit('credentials_delete', { userId: request.userId, ip: request.ip })
    return { ok: true as const }
  })
}

export default credentialsRoutes
