/**
 * The dashboard as a trader meets it, in headless Chromium against a real gateway in demo mode:
 * sign in, see values move, read the positions and orders, lose the WebSocket (POLLING), get it back
 * (LIVE), and use it at phone width (the exchange going down: e2e/defects.test.ts). Screenshots of every state go
 * to test-artifacts/e2e/.
 */
import t from 'tap'
import type { Browser, WebSocketRoute } from 'playwright-core'
import {
  DESKTOP,
  PHONE,
  e2eEnv,
  launch,
  loginDemo,
  newPage,
  overflowReport,
  shot,
  simFaults,
  text,
  waitForChange,
} from './support/harness.ts'

const env = e2eEnv()
let browser: Browser
t.before(async () => {
  browser = await launch()
})
t.teardown(async () => {
  await simFaults(env, 'reset').catch(() => {})
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- unset when launch() failed in t.before
  await browser?.close()
})

const POSITION_COLUMNS = [
  'Side',
  'Quantity',
  'Entry',
  'Mark',
  'Liquidation',
  'Dist. to liq.',
  'Leverage',
  'Margin',
  'P&L (sats)',
  'Fees',
  'Funding',
  'Net P&L',
  'P&L %',
  'Stop-loss',
  'Take-profit',
]

t.test('desktop: live, positions, polling fallback, stale exchange, recovery', async (t) => {
  const { context, page, errors } = await newPage(browser, DESKTOP)
  t.teardown(() => context.close())
  // the user has allowed notifications: record what the page shows instead of asking the OS
  await context.addInitScript(() => {
    const shown: Array<{ title: string; body?: string }> = []
    class RecordingNotification {
      static permission = 'granted'
      static requestPermission = async () => 'granted'
      constructor(title: string, options?: { body?: string }) {
        shown.push({ title, ...(options?.body !== undefined && { body: options.body }) })
      }
    }
    Object.assign(window, { Notification: RecordingNotification, __notifications: shown })
  })

  // the WebSocket goes through a route the test can cut: connected to the gateway until `blocked`;
  // it also records what the page sends (auth messages) and how the server closes
  let blocked = false
  const open = new Set<{ route: WebSocketRoute; server: WebSocketRoute }>()
  const authsPerSocket: number[] = []
  const serverCloseCodes: number[] = []
  await context.routeWebSocket(/\/ws$/, (route) => {
    if (blocked) {
      void route.close({ code: 1011, reason: 'blocked by the e2e test' })
      return
    }
    const server = route.connectToServer()
    const pair = { route, server }
    const index = authsPerSocket.push(0) - 1
    open.add(pair)
    route.onMessage((m) => {
      if (typeof m === 'string' && m.includes('"type":"auth"')) authsPerSocket[index]!++
      server.send(m)
    })
    server.onClose((code, reason) => {
      if (code !== undefined) serverCloseCodes.push(code)
      void route.close({ ...(code !== undefined && { code }), ...(reason !== undefined && { reason }) }).catch(() => {})
    })
    route.onClose((code, reason) => {
      open.delete(pair)
      void server.close({ ...(code !== undefined && { code }), ...(reason !== undefined && { reason }) }).catch(() => {})
    })
  })

  await t.test('the login page says how to get in, and a wrong password is said plainly', async (t) => {
    await page.goto(env.base)
    await page.getByTestId('demo-login').waitFor({ timeout: 15_000 })
    t.ok(await page.getByTestId('demo-badge').isVisible(), 'the DEMO badge is on the login page in demo mode')
    await shot(page, env, '00-login-desktop')
    await page.getByTestId('username').fill('demo')
    await page.getByTestId('password').fill('not-the-password')
    await page.getByTestId('auth-submit').click()
    await page.getByTestId('auth-error').waitFor({ timeout: 10_000 })
    t.equal(await text(page, 'auth-error'), 'Wrong username or password.', 'a 401 becomes a plain sentence')
    await shot(page, env, '01-login-error-desktop', false)
  })

  await t.test('signed in as demo: LIVE, DEMO, and values that change', async (t) => {
    await loginDemo(page, env)
    t.equal(await text(page, 'conn-chip'), 'LIVE', 'the connection chip says LIVE')
    t.ok(await page.getByTestId('demo-badge').isVisible(), 'the DEMO badge is shown in demo mode')
    await page.getByTestId('last-price').filter({ hasText: /\d/ }).waitFor({ timeout: 15_000 })
    await page.getByTestId('balance').filter({ hasText: /\d/ }).waitFor({ timeout: 15_000 })
    const first = await text(page, 'last-price')
    const changed = await waitForChange(() => text(page, 'last-price'), first, 20_000)
    t.pass(`the last price changed from ${first} to ${changed.value} after ${changed.afterMs} ms`)
    t.match(await text(page, 'ticker-updated'), /^updated \d+ s ago$/, 'the ticker says how old it is')
    t.match(await text(page, 'account-updated'), /^updated \d+ s ago$/, 'the balance says how old it is')
    t.equal(await page.getByTestId('ticker-stale').count(), 0, 'nothing is STALE while live')
    await page.waitForTimeout(1500) // let the chart draw a few points
    await shot(page, env, '02-live-desktop')
  })

  await t.test('liquidation risk: in the page, in the tab title, as a notification', async (t) => {
    // the demo account holds positions within the default 10 % of liquidation
    const alert = page.getByTestId('liq-alert')
    await alert.waitFor({ timeout: 15_000 })
    t.match(await alert.innerText(), /within 10 % of liquidation/, 'the page shows the alert')
    t.match(await page.title(), /^⚠ LIQ \d+\.\d %/, `the tab title carries it: "${await page.title()}"`)
    const notes = await page.evaluate(
      () => (window as unknown as { __notifications: Array<{ title: string; body?: string }> }).__notifications,
    )
    t.ok(notes.length > 0 && notes[0]!.title === 'Liquidation risk', `a browser notification was shown: "${notes[0]?.body ?? ''}"`)
    await page.getByTestId('liq-threshold').fill('1')
    await page.getByTestId('liq-ok').waitFor({ timeout: 5_000 })
    t.notMatch(await page.title(), /LIQ/, 'below a smaller threshold the alert and the title warning go away')
    await page.getByTestId('liq-threshold').fill('10')
    await alert.waitFor({ timeout: 5_000 })
  })

  await t.test('positions render with LN Markets columns, totals, riskiest first', async (t) => {
    const rows = page.getByTestId('position-row')
    await rows.first().waitFor({ timeout: 15_000 })
    const n = await rows.count()
    t.ok(n > 0, `the demo account shows ${n} running positions`)
    const headers = (await page.locator('[data-testid="positions-table"] thead th').allInnerTexts()).map((h) =>
      h.replace(/[▲▼]/g, '').trim(),
    )
    t.same(
      headers,
      POSITION_COLUMNS,
      'the columns: side, quantity, entry, mark, liquidation, distance, leverage, margin, P&L, fees, funding, net P&L, P&L %, stop-loss, take-profit',
    )
    const first = page.getByTestId('position-row').first()
    t.match(await first.getByTestId('pl-exchange').innerText(), /^[+−]?[\d,]+$/, "each row shows the exchange's own P&L")
    t.match(
      String(await first.locator('td[data-col="markPrice"]').getAttribute('title')),
      /^Estimated P&L uses [\d.]+, the (bid|ask)/,
      'the mark price says which price the estimate uses and why',
    )
    const net = await first.locator('td[data-col="netPl"]').innerText()
    t.match(net, /^[+−]?[\d,]+/, `and a net P&L after fees and funding (${net.replace(/\s+/g, ' ')})`)
    // the demo account holds one isolated limit order (rows are sorted by distance, so pick it by scope)
    const order = page.locator('[data-testid="order-row"][data-scope="isolated"]').first()
    await order.waitFor({ timeout: 10_000 })
    t.match(
      (await order.innerText()).replace(/\s+/g, ' '),
      /Isolated limit Buy \$300 [\d,.]+ 20× [\d,]+ .*\d+\.\d\d %/,
      `the open order is listed with side, quantity, price, leverage, margin, age and distance: ${(await order.innerText()).replace(/\s+/g, ' ')}`,
    )
    t.ok(await page.getByTestId('positions-totals').isVisible(), 'a totals row is shown')
    const distances = await page.locator('[data-testid="position-row"] td[data-col="distancePct"]').allInnerTexts()
    const values = distances.map((d) => Number.parseFloat(d))
    t.same(
      values,
      [...values].sort((a, b) => a - b),
      'sorted by distance to liquidation, riskiest first',
    )
    t.match(
      await page.locator('th[aria-sort="ascending"]').innerText(),
      /Dist\. to liq\./,
      'the sorted column is announced to screen readers',
    )
    await page.locator('th button', { hasText: 'Margin' }).click()
    t.equal(await page.locator('th[aria-sort="descending"]').count(), 1, 'clicking a header sorts by it')
    await page.locator('th button', { hasText: 'Dist. to liq.' }).click()
    await page.getByTestId('panel-positions').screenshot({ path: `${env.artifacts}/03-positions-desktop.png` })
  })

  await t.test('WebSocket blocked: POLLING over HTTP, values still update within 30 s', async (t) => {
    blocked = true
    for (const { route, server } of open) {
      await server.close({ code: 1000, reason: 'test' }).catch(() => {})
      await route.close({ code: 1011, reason: 'blocked by the e2e test' }).catch(() => {})
    }
    const chip = page.getByTestId('conn-chip')
    await page.locator('[data-testid="conn-chip"][data-state="polling"]').waitFor({ timeout: 15_000 })
    // the countdown appears once the first fallback poll has answered (while it is in flight the chip says POLLING alone)
    await page
      .locator('[data-testid="conn-chip"]', { hasText: /next in \d+ s/ })
      .waitFor({ timeout: 5_000 })
      .catch(() => {})
    t.match(await text(page, 'conn-chip'), /^POLLING \(next in \d+ s\)$/, 'the chip says POLLING with the countdown to the next poll')
    t.ok(await page.getByTestId('transport-banner').isVisible(), 'a banner says what POLLING means')
    const before = await text(page, 'last-price')
    await shot(page, env, '04-polling-desktop')
    const changed = await waitForChange(() => text(page, 'last-price'), before, 35_000)
    t.pass(`over HTTP the price moved from ${before} to ${changed.value} after ${(changed.afterMs / 1000).toFixed(1)} s`)
    t.equal(await chip.getAttribute('data-state'), 'polling', 'still POLLING (the socket stays blocked)')
    await shot(page, env, '05-polling-updated-desktop')
  })

  await t.test('WebSocket back: the online event reconnects at once, LIVE again', async (t) => {
    blocked = false
    await page.evaluate(() => window.dispatchEvent(new Event('online')))
    await page.locator('[data-testid="conn-chip"][data-state="live"]').waitFor({ timeout: 15_000 })
    t.equal(await text(page, 'conn-chip'), 'LIVE', 'LIVE again without waiting out the backoff')
  })

  // the exchange going down and coming back is covered in e2e/defects.test.ts (one age per channel, the alert)
  await t.test('the theme toggle switches to dark and back', async (t) => {
    await page.getByRole('button', { name: 'Switch to dark theme' }).click()
    t.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark', 'the theme toggle switches to dark')
    await page.waitForTimeout(300)
    await shot(page, env, '07b-live-dark-desktop')
    await page.getByRole('button', { name: 'Switch to light theme' }).click()
    t.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light', 'and back')
  })

  await t.test('the access token was refreshed in-band, before it expired', async (t) => {
    // run-e2e gives access tokens a 30 s life; the page refreshes them at 80 % and re-sends auth on the open socket
    const deadline = Date.now() + 25_000
    while (!authsPerSocket.some((n) => n >= 2) && Date.now() < deadline) await page.waitForTimeout(250)
    t.ok(
      authsPerSocket.some((n) => n >= 2),
      `a socket carried a second auth message (auth messages per socket: ${authsPerSocket.join(', ')})`,
    )
    t.notOk(
      serverCloseCodes.includes(4001),
      `the server never closed a socket for an expired token (server close codes: ${serverCloseCodes.join(', ') || 'none'})`,
    )
  })

  await t.test('sign out returns to the login page', async (t) => {
    await page.getByTestId('logout').click()
    await page.getByTestId('auth-submit').waitFor({ timeout: 10_000 })
    t.pass('the login form is back')
  })
  t.same(errors, [], 'no uncaught page errors')
})

t.test('phone width (390×844, dark): nothing overflows', async (t) => {
  const { context, page, errors } = await newPage(browser, PHONE, 'dark')
  t.teardown(() => context.close())
  await page.goto(env.base)
  await page.getByTestId('demo-login').waitFor({ timeout: 15_000 })
  await shot(page, env, '08-login-phone')
  await loginDemo(page, env)
  await page.getByTestId('position-row').first().waitFor({ timeout: 15_000 })
  await page.waitForTimeout(1500)
  const report = await overflowReport(page)
  t.equal(report.scrollWidth, report.innerWidth, 'the page is no wider than the phone')
  t.same(report.offenders, [], 'no element sticks out of the viewport')
  t.ok(await page.getByTestId('conn-chip').isVisible(), 'the connection chip is visible at phone width')
  await shot(page, env, '09-live-phone')
  await shot(page, env, '10-live-phone-viewport', false)
  t.same(errors, [], 'no uncaught page errors')
})

t.test('a new user: register, then the API-key form and its errors', async (t) => {
  const { context, page, errors } = await newPage(browser, DESKTOP)
  t.teardown(() => context.close())
  const username = `trader_${Date.now().toString(36)}`
  await page.goto(env.base)
  await page.getByRole('tab', { name: 'Create account' }).click()
  await page.getByTestId('username').fill(username)
  await page.getByTestId('password').fill('short')
  await page.getByTestId('auth-submit').click()
  t.match(await text(page, 'auth-error'), /at least 8 characters/, 'a weak password is refused with the rule')
  await page.getByTestId('password').fill('correct horse battery')
  await page.getByTestId('auth-submit').click()
  const form = page.getByTestId('panel-credentials')
  await form.locator('input[name="apiKey"]').waitFor({ timeout: 20_000 })
  // the panel can mount twice right after sign-up (briefly "Loading…" again): read the hint once it is there
  await form.locator('.hint').waitFor({ timeout: 10_000 })
  t.match(await form.locator('.hint').innerText(), /read-only/, 'the form recommends a read-only key')
  await form.locator('input[name="apiKey"]').fill('not-a-real-key-123')
  await form.locator('input[name="apiSecret"]').fill('not-a-real-secret-456')
  await form.locator('input[name="passphrase"]').fill('nope')
  await form.getByRole('button', { name: 'Verify and save' }).click()
  await page.getByTestId('cred-error').waitFor({ timeout: 20_000 })
  t.match(
    await text(page, 'cred-error'),
    /rejected|not valid|did not answer/i,
    `the exchange's refusal is explained: "${await text(page, 'cred-error')}"`,
  )
  t.equal(
    await form.locator('input[name="apiSecret"]').inputValue(),
    'not-a-real-secret-456',
    'a refused form keeps what was typed so it can be corrected',
  )
  await shot(page, env, '11-new-user-credentials-desktop')
  t.same(errors, [], 'no uncaught page errors')
})
