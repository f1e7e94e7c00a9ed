/**
 * Alerts beyond liquidation (issue 10 item 6), in headless Chromium against the real gateway in demo mode: a price
 * level set near the simulator's price fires once and is marked on the server; the settings survive a reload and
 * show on another device (a second browser context) for the same user; a fill, a close and a liquidation pushed by
 * the simulator raise alerts; losing the live socket and the exchange going down raise alerts and their recovery;
 * a browser Notification is created only while the page is in the background; axe-core finds nothing serious with
 * the panel open and with a toast showing.
 *
 * Notifications: the context grants the permission and the page's `Notification` constructor is wrapped to record
 * what it is asked to show (the permission and its API stay the browser's own). `document.hasFocus` is wrapped so
 * the test can say "the trader looks at another window".
 */
import t from 'tap'
import type { Browser, BrowserContext, Page, WebSocketRoute } from 'playwright-core'
import { DESKTOP, axeSerious, e2eEnv, launch, shot, simFaults, text } from './support/harness.ts'

const env = e2eEnv()
let browser: Browser
const username = `alerts_${Date.now().toString(36)}`
const password = 'alerts e2e passphrase 42'
let simUser = ''
let token = ''
let startPrice = 0

t.before(async () => {
  browser = await launch()
})
t.teardown(async () => {
  await simFaults(env, 'reset').catch(() => {})
  if (startPrice) await simPost('/__sim/price', { price: startPrice }).catch(() => {})
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- unset when launch() failed in t.before
  await browser?.close()
})

async function simPost(path: string, body: unknown): Promise<any> {
  const res = await fetch(`${env.sim}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const json = await res.json().catch(() => null)
  if (!res.ok) throw new Error(`simulator ${path}: HTTP ${res.status} ${JSON.stringify(json)}`)
  return json
}

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${env.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  })
  return { status: res.status, body: await res.json().catch(() => null) }
}

async function apiLogin(): Promise<void> {
  const res = await fetch(`${env.base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  })
  token = ((await res.json()) as { accessToken: string }).accessToken
}

async function noSeriousAxe(t: { same(a: unknown, b: unknown, m: string): boolean }, page: Page, state: string): Promise<void> {
  t.same(await axeSerious(page), [], `axe-core: no serious or critical violation (${state})`)
}

/** a page whose Notification constructor records its calls and whose focus the test decides */
async function alertContext(notifications: boolean): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({
    viewport: DESKTOP,
    locale: 'en-US',
    timezoneId: 'UTC',
    permissions: notifications ? ['notifications'] : [],
  })
  await context.addInitScript(() => {
    const w = window as unknown as { __notes: Array<{ title: string; body?: string }>; __focused: boolean; Notification: unknown }
    w.__notes = []
    w.__focused = true
    document.hasFocus = () => w.__focused
    const Real = window.Notification
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- DOM types say always there; a browser without notifications has none
    if (!Real) return
    function Recording(title: string, opts?: NotificationOptions) {
      w.__notes.push({ title, ...(opts?.body !== undefined && { body: opts.body }) })
    }
    Object.defineProperty(Recording, 'permission', { get: () => Real.permission })
    ;(Recording as unknown as { requestPermission: typeof Real.requestPermission }).requestPermission = Real.requestPermission.bind(Real)
    w.Notification = Recording
  })
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  return { context, page, errors }
}

/** /ws through a switch: pass, or cut (open sockets closed, new ones refused) */
async function socketSwitch(page: Page) {
  let blocked = false
  const open = new Set<{ route: WebSocketRoute; server: WebSocketRoute }>()
  await page.context().routeWebSocket(/\/ws$/, (route) => {
    if (blocked) {
      void route.close({ code: 1011, reason: 'cut by the e2e test' })
      return
    }
    const server = route.connectToServer()
    const pair = { route, server }
    open.add(pair)
    route.onMessage((m) => server.send(m))
    server.onMessage((m) => route.send(m))
    server.onClose(
      (code, reason) => void route.close({ ...(code !== undefined && { code }), ...(reason !== undefined && { reason }) }).catch(() => {}),
    )
    route.onClose((code, reason) => {
      open.delete(pair)
      void server.close({ ...(code !== undefined && { code }), ...(reason !== undefined && { reason }) }).catch(() => {})
    })
  })
  return {
    async cut() {
      blocked = true
      for (const { route, server } of open) {
        await server.close({ code: 1000, reason: 'test' }).catch(() => {})
        await route.close({ code: 1011, reason: 'cut by the e2e test' }).catch(() => {})
      }
    },
    restore() {
      blocked = false
    },
  }
}

const toast = (page: Page, kind: string) => page.locator(`[data-testid="alert-toast"][data-kind="${kind}"]`)
const lastPrice = async (page: Page) => Number((await text(page, 'last-price')).replace(/[^\d.]/g, ''))
const notes = (page: Page) => page.evaluate(() => (window as unknown as { __notes: Array<{ title: string; body?: string }> }).__notes)
const setFocused = (page: Page, focused: boolean) =>
  page.evaluate((f) => void ((window as unknown as { __focused: boolean }).__focused = f), focused)

async function signIn(page: Page): Promise<void> {
  await page.goto(env.base)
  await page.getByTestId('username').fill(username)
  await page.getByTestId('password').fill(password)
  await page.getByTestId('auth-submit').click()
  await page.getByTestId('conn-chip').and(page.locator('[data-state="live"]')).waitFor({ timeout: 30_000 })
}

t.test('alerts: price level, persistence, other device, fill/close/liquidation, connection, exchange, notifications, axe', async (t) => {
  const { context, page, errors } = await alertContext(true)
  t.teardown(() => context.close())
  const sockets = await socketSwitch(page)

  // a trader of its own: registered here, with a fresh simulator account (one click)
  await page.goto(env.base)
  await page.getByRole('tab', { name: 'Create account' }).click()
  await page.getByTestId('username').fill(username)
  await page.getByTestId('password').fill(password)
  await page.getByTestId('auth-submit').click()
  await page.getByTestId('cred-demo').click({ timeout: 30_000 })
  await page.getByTestId('position-row').first().waitFor({ timeout: 30_000 })
  await page.getByTestId('conn-chip').and(page.locator('[data-state="live"]')).waitFor({ timeout: 30_000 })
  await apiLogin()
  const me = await api('GET', '/api/me')
  simUser = `trader-${String(me.body.id).slice(0, 8)}`
  await page.getByTestId('last-price').filter({ hasText: /\d/ }).waitFor({ timeout: 15_000 })
  startPrice = await lastPrice(page)

  await t.test('the panel: defaults from the server, browser notifications on, axe with it open', async (t) => {
    const panel = page.getByTestId('panel-alert-settings')
    await panel.scrollIntoViewIfNeeded()
    await page.getByTestId('alert-settings-state').filter({ hasText: 'Saved for all your devices' }).waitFor({ timeout: 10_000 })
    t.equal(await page.getByTestId('notify-fills').isChecked(), true, 'fills on by default')
    t.equal(
      await page.getByTestId('notify-browser').isChecked(),
      true,
      'the site may already notify (permission granted): browser notifications start on',
    )
    await page.getByTestId('notify-browser').uncheck()
    await page.getByTestId('notify-browser-note').filter({ hasText: 'Alerts always show on this page.' }).waitFor({ timeout: 5_000 })
    await page.getByTestId('notify-browser').check()
    await page.getByTestId('notify-browser-note').filter({ hasText: /^On\./ }).waitFor({ timeout: 5_000 })
    // an invalid level is refused in words, tied to its field
    await page.getByTestId('level-price').fill('0')
    await page.getByTestId('level-add').click()
    t.equal(await text(page, 'level-error'), 'The price must be more than 0.', 'a price of 0 is refused in words')
    t.equal(await page.getByTestId('level-price').getAttribute('aria-invalid'), 'true', 'the field is marked invalid')
    await page.getByTestId('liq-threshold').fill('12')
    await page.waitForTimeout(1_500) // the threshold is saved once typing stops
    await noSeriousAxe(t, page, 'alerts panel open, with a field error')
    await shot(page, env, '40-alerts-panel-desktop-1440')
    const saved = await api('GET', '/api/alerts')
    t.equal(saved.body.browserNotifications, true, 'the choice is on the server')
    t.equal(saved.body.liquidationPct, 12, 'the liquidation threshold is on the server')
  })

  await t.test('a price level near the price fires once, is marked on the server, and notifies in the background only', async (t) => {
    const price = await lastPrice(page)
    const level = Math.round(price * 1.002)
    await page.getByTestId('level-direction').selectOption('above')
    await page.getByTestId('level-price').fill(String(level))
    await page.getByTestId('level-note').fill('e2e breakout')
    await page.getByTestId('level-add').click()
    await page.getByTestId('price-level').filter({ hasText: 'not crossed yet' }).waitFor({ timeout: 5_000 })
    await page.getByTestId('alert-settings-state').filter({ hasText: 'Saved' }).waitFor({ timeout: 10_000 })
    await setFocused(page, false) // the trader looks at another window
    await simPost('/__sim/price', { price: level * 1.002 })
    await toast(page, 'price_level').waitFor({ timeout: 20_000 })
    t.match(
      await toast(page, 'price_level').innerText(),
      /Price above [\d,.]+.*crossed above your level.*e2e breakout/s,
      'the toast says which level and why',
    )
    await page.getByTestId('price-level').filter({ hasText: 'last crossed' }).waitFor({ timeout: 10_000 })
    const onServer = await api('GET', '/api/alerts')
    t.match(
      onServer.body.priceLevels[0],
      { price: level, direction: 'above', note: 'e2e breakout', triggeredAt: /^\d{4}-/ },
      'the crossing is saved on the server',
    )
    const recorded = await notes(page)
    t.ok(
      recorded.some((n) => /^Price above/.test(n.title)),
      `a browser notification was created in the background: ${JSON.stringify(recorded)}`,
    )
    await page.waitForTimeout(2_000)
    t.equal(await toast(page, 'price_level').count(), 1, 'once per crossing: the price staying above does not fire again')
    await noSeriousAxe(t, page, 'a toast showing')
    await shot(page, env, '41-alert-toast-desktop-1440', false)
    await setFocused(page, true)
  })

  await t.test('the settings survive a reload and show on another device', async (t) => {
    await page.reload()
    await page.getByTestId('conn-chip').and(page.locator('[data-state="live"]')).waitFor({ timeout: 30_000 })
    await page.getByTestId('price-level').filter({ hasText: 'e2e breakout' }).waitFor({ timeout: 10_000 })
    t.equal(await page.getByTestId('liq-threshold').inputValue(), '12', 'the threshold after a reload')
    t.equal(await page.getByTestId('notify-browser').isChecked(), true, 'browser notifications after a reload')
    t.match(await page.getByTestId('price-level').first().innerText(), /last crossed/, 'the level still says it was crossed')

    const other = await alertContext(false)
    t.teardown(() => other.context.close())
    await signIn(other.page)
    await other.page.getByTestId('price-level').filter({ hasText: 'e2e breakout' }).waitFor({ timeout: 10_000 })
    t.equal(await other.page.getByTestId('liq-threshold').inputValue(), '12', 'the other device reads the same threshold')
    t.equal(await other.page.getByTestId('notify-browser').isChecked(), true, 'and the same choices')
    t.same(other.errors, [], 'no uncaught errors on the other device')
    await other.context.close()
  })

  await t.test('a fill, a close and a liquidation pushed by the simulator raise alerts', async (t) => {
    const price = await lastPrice(page)
    const order = await simPost('/__sim/trades', {
      username: simUser,
      type: 'limit',
      side: 'buy',
      price: Math.round(price * 0.996),
      quantity: 100,
      leverage: 10,
    })
    await page.locator('[data-testid="order-row"]', { hasText: '$100' }).first().waitFor({ timeout: 20_000 })
    await simPost('/__sim/price', { price: Math.round(price * 0.994) })
    const fill = toast(page, 'fill').filter({ hasText: 'Long $100 at 10×' })
    await fill.waitFor({ timeout: 20_000 })
    t.match(await fill.innerText(), /Order filled.*Long \$100 at 10× filled at [\d,.]+/s, 'the fill names the order')
    t.notOk(
      (await notes(page)).some((n) => n.title === 'Order filled'),
      'the page is in front of the trader: the toast only, no browser notification',
    )

    let running = false
    for (let i = 0; i < 40 && !running; i++) {
      running = ((await api('GET', '/api/dashboard')).body?.positions?.running ?? []).some((r: { id: string }) => r.id === order.id)
      if (!running) await page.waitForTimeout(250)
    }
    t.ok(running, 'the filled order is a running trade')
    await page.waitForTimeout(1_500) // the page has seen it running
    await simPost('/__sim/trades/close', { username: simUser, id: order.id })
    const close = toast(page, 'close').filter({ hasText: 'Long $100 at 10×' })
    await close.waitFor({ timeout: 30_000 })
    t.match(await close.innerText(), /Position closed.*Long \$100 at 10×.*P&L [+−]?[\d,]+ sats/s, 'the close gives the P&L')

    const now = await lastPrice(page)
    const risky = await simPost('/__sim/trades', { username: simUser, side: 'sell', quantity: 100, leverage: 100 })
    await page.waitForTimeout(2_500) // the page has seen it running
    await simPost('/__sim/price', { price: Math.ceil(risky.liquidation + now * 0.002) })
    const liq = toast(page, 'liquidation').filter({ hasText: 'Short $100 at 100×' })
    await liq.waitFor({ timeout: 30_000 })
    t.match(await liq.innerText(), /Position liquidated.*Short \$100 at 100×/s, 'the liquidation is raised')
    t.equal(
      await page.locator('[role="alert"] [data-kind="liquidation"]').filter({ hasText: 'Short $100 at 100×' }).count(),
      1,
      'in the assertive region',
    )
    await simPost('/__sim/price', { price: startPrice })
  })

  await t.test('losing the live socket raises an alert after the grace, and its return another', async (t) => {
    await page.getByTestId('conn-chip').and(page.locator('[data-state="live"]')).waitFor({ timeout: 30_000 })
    await sockets.cut()
    await page.locator('[role="alert"] [data-kind="connection_lost"]').waitFor({ timeout: 20_000 })
    t.pass('connection lost, in the assertive region')
    sockets.restore()
    await page.evaluate(() => window.dispatchEvent(new Event('online')))
    await toast(page, 'connection_restored').waitFor({ timeout: 30_000 })
    t.equal(await toast(page, 'connection_lost').count(), 0, 'the loss toast goes away when the connection is back')
  })

  await t.test('the exchange going down and coming back', async (t) => {
    await simFaults(env, { outage: true })
    await toast(page, 'exchange_down').waitFor({ timeout: 60_000 })
    t.match(await toast(page, 'exchange_down').innerText(), /LN Markets is down/, 'exchange down')
    await simFaults(env, 'reset')
    await toast(page, 'exchange_recovered').waitFor({ timeout: 60_000 })
    t.pass('and back')
    t.ok((await page.getByTestId('alert-log').locator('li').count()) >= 6, 'every alert is in the recent-alerts log')
  })

  await t.test('a threshold an older page kept in localStorage moves to the server on the first load', async (t) => {
    const name = `alerts_legacy_${Date.now().toString(36)}`
    const reg = await fetch(`${env.base}/api/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: name, password }),
    })
    t.equal(reg.status, 201, 'a second user')
    const legacy = await alertContext(false)
    t.teardown(() => legacy.context.close())
    await legacy.context.addInitScript(() => {
      if (!sessionStorage.getItem('seeded')) {
        sessionStorage.setItem('seeded', '1')
        localStorage.setItem('lnm.liqAlertPct', '7')
      }
    })
    await legacy.page.goto(env.base)
    await legacy.page.getByTestId('username').fill(name)
    await legacy.page.getByTestId('password').fill(password)
    await legacy.page.getByTestId('auth-submit').click()
    await legacy.page.getByTestId('alert-settings-state').filter({ hasText: 'Saved for all your devices' }).waitFor({ timeout: 30_000 })
    const res = await fetch(`${env.base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: name, password }),
    })
    const other = ((await res.json()) as { accessToken: string }).accessToken
    const saved = await (await fetch(`${env.base}/api/alerts`, { headers: { authorization: `Bearer ${other}` } })).json()
    t.equal(saved.liquidationPct, 7, 'the local threshold is now the server setting')
    t.equal(saved.version, 1, 'saved once')
    t.equal(await legacy.page.evaluate(() => localStorage.getItem('lnm.liqAlertPct')), null, 'and forgotten locally')
    await legacy.context.close()
  })

  await t.test('the shared demo account is untouched (the other e2e files expect its open order)', async (t) => {
    const login = await fetch(`${env.base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'demo', password: 'demo' }),
    })
    const demoToken = ((await login.json()) as { accessToken: string }).accessToken
    const dash = await (await fetch(`${env.base}/api/dashboard`, { headers: { authorization: `Bearer ${demoToken}` } })).json()
    const open = (dash.positions?.open ?? []).map(
      (o: { side: string; quantity: number; price: number }) => `${o.side} ${o.quantity} @ ${o.price}`,
    )
    console.log(
      `# demo open orders: ${JSON.stringify(open)}; running: ${JSON.stringify((dash.positions?.running ?? []).map((o: { side: string; quantity: number; liquidation: number }) => `${o.side} ${o.quantity} liq ${o.liquidation}`))}; price ${startPrice}`,
    )
    t.ok(
      open.some((o: string) => /^buy 300 /.test(o)),
      'the demo limit buy $300 is still open',
    )
  })

  t.same(errors, [], 'no uncaught page errors')
})
