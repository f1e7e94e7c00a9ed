/**
 * Cell 6: `kill -9` of a gateway on the embedded database (PGlite in DATA_DIR) while users register, log in
 * and store exchange credentials, then a start on the same DATA_DIR; R rounds. Nothing lost means: the
 * gateway starts again every time (no corruption, no stale lock), every registration acknowledged (201)
 * before any kill still logs in, every credential acknowledged (200) is still there (GET /api/credentials
 * shows its masked key) and still opens (the user's dashboard gets account data from the exchange).
 */
import { randomBytes } from 'node:crypto'
import { makeSimAccounts, type SimAccount } from '../../lib/servers.ts'
import { sourceAddresses } from '../../lib/net.ts'
import { fmt } from '../../lib/stats.ts'
import { api, Checks, GatewayProc, log, sleep, startChaosSim, statusKey, waitFor, type CellResult } from '../lib.ts'
import { runId, type Ctx } from '../context.ts'
import { maskKey } from '../../../backend/vault/crypto.ts'

interface Written {
  username: string
  password: string
  account: SimAccount
  registered: boolean
  credentials: boolean
  round: number
}

export async function pgliteKill(ctx: Ctx): Promise<Omit<CellResult, 'id' | 'name' | 'seconds'>> {
  const checks = new Checks()
  const R = ctx.killRounds
  const perRound = 40
  const accounts = makeSimAccounts(R * perRound, 'chaosl')
  const sim = await startChaosSim(ctx.dir, accounts)
  const gw = await GatewayProc.create({ apiUrl: sim.url, streamUrl: sim.streamUrl })
  const addrs = sourceAddresses(R * perRound, 200)
  const written: Written[] = []
  const rounds: Array<Record<string, unknown>> = []
  try {
    await gw.start()
    for (let round = 0; round < R; round++) {
      let writing = true
      let next = round * perRound
      const worker = async () => {
        while (writing && next < (round + 1) * perRound) {
          const i = next++
          const w: Written = {
            username: `cl${runId}n${i}`,
            password: `Chaos!${randomBytes(6).toString('hex')}`,
            account: accounts[i]!,
            registered: false,
            credentials: false,
            round,
          }
          written.push(w)
          const reg = await api(
            gw.origin,
            'POST',
            '/api/auth/register',
            { username: w.username, password: w.password },
            { localAddress: addrs[i], timeoutMs: 10_000 },
          )
          if (reg.status !== 201) continue
          w.registered = true
          const login = await api(
            gw.origin,
            'POST',
            '/api/auth/login',
            { username: w.username, password: w.password },
            { localAddress: addrs[i], timeoutMs: 10_000 },
          )
          if (login.status !== 200) continue
          const put = await api(
            gw.origin,
            'PUT',
            '/api/credentials',
            { apiKey: w.account.key, apiSecret: w.account.secret, passphrase: w.account.passphrase },
            { token: login.json.accessToken, localAddress: addrs[i], timeoutMs: 10_000 },
          )
          if (put.status === 200) w.credentials = true
        }
      }
      const workers = [worker(), worker()]
      // kill in the middle of the writes: once a few credentials are stored (bounded), after a random extra delay
      const t0 = Date.now()
      await waitFor(() => written.filter((w) => w.round === round && w.credentials).length >= 3, 20_000, 100)
      await sleep(Math.floor(Math.random() * 1000))
      const killAfter = Date.now() - t0
      const killed = await gw.signal('SIGKILL', 10_000)
      writing = false
      await Promise.all(workers)
      log(
        `cell 6: round ${round + 1}: killed after ${killAfter} ms (${written.filter((w) => w.round === round && w.registered).length} registered, ${written.filter((w) => w.round === round && w.credentials).length} credentials)`,
      )
      let startMs: number | null = null
      let startError = ''
      try {
        startMs = await gw.start(120_000)
      } catch (e) {
        startError = (e as Error).message.slice(0, 600)
      }
      rounds.push({ round: round + 1, killAfterMs: killAfter, killed, startMs, startError: startError || undefined })
      if (startMs === null) break
    }
    const ready = gw.alive ? statusKey(await api(gw.origin, 'GET', '/health/ready')) : 'down'
    // verify everything acknowledged before the kills
    let lostUsers = 0
    let lostCreds = 0
    let credsNotOpening = 0
    const examples: string[] = []
    if (gw.alive) {
      for (const w of written.filter((x) => x.registered)) {
        const login = await api(
          gw.origin,
          'POST',
          '/api/auth/login',
          { username: w.username, password: w.password },
          { localAddress: addrs[0], timeoutMs: 20_000 },
        )
        if (login.status !== 200) {
          lostUsers++
          if (examples.length < 5) examples.push(`${w.username} login ${statusKey(login)}`)
          continue
        }
        if (!w.credentials) continue
        const token = login.json.accessToken as string
        const c = await api(gw.origin, 'GET', '/api/credentials', undefined, { token })
        const masked = typeof c.json?.maskedKey === 'string' ? (c.json.maskedKey as string) : ''
        if (c.status !== 200 || masked !== maskKey(w.account.key)) {
          lostCreds++
          if (examples.length < 5) examples.push(`${w.username} credentials ${statusKey(c)} ${masked}`)
          continue
        }
        // the stored secret still decrypts and signs: the dashboard has the account's balance
        let d = await api(gw.origin, 'GET', '/api/dashboard', undefined, { token, timeoutMs: 20_000 })
        // the first request starts the account's poller: its data follows within a poll
        for (let k = 0; k < 30 && d.status === 200 && !d.json?.account; k++) {
          await sleep(500)
          d = await api(gw.origin, 'GET', '/api/dashboard', undefined, { token, timeoutMs: 20_000 })
        }
        if (d.status !== 200 || d.json?.account?.balance !== w.account.balance) {
          credsNotOpening++
          if (examples.length < 5)
            examples.push(
              `${w.username} dashboard ${statusKey(d)} ${JSON.stringify(d.json?.account ?? d.json?.meta ?? d.json).slice(0, 160)}`,
            )
        }
      }
    }
    const registered = written.filter((w) => w.registered).length
    const creds = written.filter((w) => w.credentials).length
    const figures = {
      rounds,
      registeredAcked: registered,
      credentialsAcked: creds,
      lostUsers,
      lostCredentials: lostCreds,
      credentialsNotOpening: credsNotOpening,
      examples,
      readyAtEnd: ready,
    }
    const started = rounds.filter((r) => r.startMs !== null).length
    checks.ok(
      started === R && gw.alive,
      'starts again after every kill -9 (no corruption)',
      `${started}/${R} restarts; ${rounds.map((r) => (r.startMs === null ? `failed: ${String(r.startError).split('\n')[0]}` : `${r.startMs} ms`)).join(', ')}; /health/ready ${ready}`,
    )
    checks.ok(registered > 0 && lostUsers === 0, 'no lost user', `${registered} acknowledged registrations, ${lostUsers} cannot log in`)
    checks.ok(
      creds > 0 && lostCreds === 0 && credsNotOpening === 0,
      'no lost credential',
      `${creds} acknowledged credentials, ${lostCreds} missing, ${credsNotOpening} not opening${examples.length ? ` (${examples.slice(0, 2).join('; ')})` : ''}`,
    )
    const summary = `${R} kill -9 rounds; restarts ${rounds.map((r) => (r.startMs === null ? 'FAILED' : `${fmt((r.startMs as number) / 1000, 1)} s`)).join(', ')}; ${registered} users / ${creds} credentials acked, ${lostUsers} / ${lostCreds + credsNotOpening} lost`
    return { held: checks.held, summary, checks: checks.list, figures }
  } finally {
    await gw.stop()
    gw.removeData()
    await sim.stop()
  }
}
