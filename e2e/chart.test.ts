/**
 * The price chart as a trader uses it, in headless Chromium against a real gateway in demo mode: seeded with
 * hours of the exchange's candles (GET /api/candles), still seeded after a reload, times labelled in the
 * browser's time zone (here Europe/Paris) with UTC on hover, the selected position's entry, liquidation,
 * stop-loss and take-profit lines, a far liquidation line named at the edge instead of flattening the candles,
 * and a range switch that fetches that range. axe-core in each state; screenshots at 1440 and 390 px.
 */
import t from 'tap'
import type { Browser, Page } from 'playwright-core'
import { DESKTOP, PHONE, axeSerious, e2eEnv, launch, loginDemo, overflowReport, shot, simFaults } from './support/harness.ts'

const env = e2eEnv()
let browser: Browser
t.before(async () => {
  browser = await launch()
})
t.teardown(async () => {
  await simFaults(env, 'reset').catch(() => {})
  await browser?.close()
})

async function open(viewport: { width: number; height: number }) {
  const context = await browser.newContext({ viewport, colorScheme: 'light', deviceScaleFactor: 1, locale: 'en-US', timezoneId: 'Europe/Paris' })
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  return { context, page, errors }
}

const chart = (page: Page) => page.getByTestId('price-chart')
const attr = async (page: Page, name: string) => (await chart(page).getAttribute(`data-${name}`)) ?? ''

async function seeded(page: Page, range: string) {
  await page.locator(`[data-testid="price-chart"][data-seeded="true"][data-range="${range}"]`).waitFor({ timeout: 30_000 })
}

t.test('desktop: seeded history, time zone, position lines, far line, range switch, reload', async (t) => {
  const { context, page, errors } = await open(DESKTOP)
  t.teardown(() => context.close())
  const candleRequests: string[] = []
  page.on('request', (r) => {
    if (r.url().includes('/api/candles')) candleRequests.push(new URL(r.url()).search)
  })

  await loginDemo(page, env)
  await seeded(page, '5m')
  const points = Number(await attr(page, 'points'))
  const spanH = (Date.now() - Number(await attr(page, 'first'))) / 3600_000
  t.ok(points >= 200, `seeded with the exchange's 5m candles (${points} candles)`)
  t.ok(spanH >= 12, `hours of history, not seconds (${spanH.toFixed(1)} h)`)
  t.ok(candleRequests.some((q) => q.includes('range=5m')), 'fetched from /api/candles')
  t.equal(await page.getByTestId('chart-range').locator('button[aria-pressed="true"]').innerText(), '5m', 'the range in use is the pressed button')

  const tz = await page.getByTestId('chart-tz').innerText()
  t.match(tz, /Times in Europe\/Paris \(UTC\+1\)/, `the time zone is named (${tz})`)

  // the demo trader's riskiest position (shown by default) is the short with a stop-loss and a take-profit
  await page.locator('[data-testid="price-chart"][data-lines="entry,liq,sl,tp"]').waitFor({ timeout: 20_000 })
  const legend = await page.locator('.chart-legend').innerText()
  t.match(legend, /entry [\d,.]+/, 'entry in the legend')
  t.match(legend, /stop-loss [\d,.]+/, 'stop-loss in the legend')
  t.match(legend, /take-profit [\d,.]+/, 'take-profit in the legend')
  t.match(await page.locator('.chart-box').getAttribute('aria-label'), /Entry .*Liq .*SL .*TP /, 'the lines are in the chart\'s text alternative')

  // hover: local time and UTC
  await page.locator('.chart-box').scrollIntoViewIfNeeded()
  const box = (await page.locator('.chart-box').boundingBox())!
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.4)
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5, { steps: 5 })
  await page.getByTestId('chart-hover').waitFor({ state: 'visible', timeout: 5_000 })
  const hover = await page.getByTestId('chart-hover').innerText()
  t.match(hover, /\d{2}:\d{2} · .*\d{2}:\d{2} UTC · O [\d,.]+ H [\d,.]+ L [\d,.]+ C [\d,.]+/, `hover shows local time, UTC and OHLC (${hover})`)
  const [local, utc] = hover.split(' · ')
  const hh = (s: string) => Number(/(\d{2}):\d{2}/.exec(s)![1])
  t.equal((hh(local!) - hh(utc!) + 24) % 24, 1, 'the local time is UTC+1 (Paris in winter)')
  t.same(await axeSerious(page), [], 'axe-core: no serious violation (seeded chart, position with SL/TP)')
  await shot(page, env, 'chart-01-desktop-1440')

  // a position whose liquidation is far (the 5× long): not in the autoscale, named at the bottom edge
  const rows = page.getByTestId('position-row')
  const texts = await rows.allInnerTexts()
  const far = texts.findIndex((x) => /\$1,000/.test(x) && /\b5×/.test(x))
  t.ok(far >= 0, 'the 5× long is listed')
  await rows.nth(far).click()
  await page.locator('[data-testid="price-chart"][data-lines="entry,liq"]').waitFor({ timeout: 10_000 })
  await page.getByTestId('offscale-liq').waitFor({ timeout: 10_000 })
  const off = await page.getByTestId('offscale-liq').innerText()
  t.match(off, /^Liq [\d,.]+ ↓ \(\d+\.\d % away\)$/, `the far liquidation line is named with its distance (${off})`)
  t.ok(Number(/\((\d+\.\d) %/.exec(off)![1]) > 15, 'it is more than 15 % away')
  t.same(await axeSerious(page), [], 'axe-core: no serious violation (far line off scale)')
  await shot(page, env, 'chart-02-desktop-far-liquidation')

  // switching range fetches that range
  const before = candleRequests.length
  await page.getByTestId('chart-range').locator('button[data-range="1m"]').click()
  await seeded(page, '1m')
  t.ok(candleRequests.slice(before).some((q) => q.includes('range=1m')), 'the 1m candles were requested')
  const p1m = Number(await attr(page, 'points'))
  t.ok(p1m >= 300, `1m: hours of 1-minute candles (${p1m})`)
  t.equal(await page.getByTestId('chart-range').locator('button[data-range="1m"]').getAttribute('aria-pressed'), 'true', '1m pressed')

  // a reload: still seeded, same range
  await page.reload()
  await page.getByTestId('conn-chip').and(page.locator('[data-state="live"]')).waitFor({ timeout: 20_000 })
  await seeded(page, '1m')
  const afterReload = Number(await attr(page, 'points'))
  t.ok(afterReload >= 300, `after a reload the chart is seeded again (${afterReload} candles), the range remembered`)
  // live prices keep arriving into the current candle
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="price-chart"]')?.getAttribute('data-live') ?? '0') > 0, null, { timeout: 20_000 })
  t.pass('live ticker prices fold into the chart')
  t.same(errors, [], 'no page errors')
})

t.test('phone 390: the chart fits, with its controls', async (t) => {
  const { context, page, errors } = await open(PHONE)
  t.teardown(() => context.close())
  await loginDemo(page, env)
  await seeded(page, '5m')
  t.ok(Number(await attr(page, 'points')) >= 200, 'seeded')
  await page.getByTestId('panel-chart').scrollIntoViewIfNeeded()
  const report = await overflowReport(page)
  t.same(report.offenders, [], 'nothing sticks out of the viewport')
  t.same(await axeSerious(page), [], 'axe-core: no serious violation (phone)')
  await shot(page, env, 'chart-03-phone-390')
  const panel = page.getByTestId('panel-chart')
  await panel.screenshot({ path: `${env.artifacts}/chart-04-phone-390-panel.png` })
  t.same(errors, [], 'no page errors')
})

t.test('an exchange outage longer than a candle is a gap, not a line drawn across it', async (t) => {
  const { context, page, errors } = await open(DESKTOP)
  t.teardown(() => context.close())
  await loginDemo(page, env)
  await page.getByTestId('chart-range').locator('button[data-range="1m"]').click()
  await seeded(page, '1m')
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="price-chart"]')?.getAttribute('data-live') ?? '0') > 0, null, { timeout: 20_000 })
  // start just before a minute ends, so the whole next minute passes without a price
  const toBoundary = 60_000 - (Date.now() % 60_000)
  await page.waitForTimeout(Math.max(0, toBoundary - 2_000))
  const gapsBefore = Number(await attr(page, 'gaps'))
  await simFaults(env, { outage: true })
  const outageStart = Date.now()
  // the outage covers the next minute entirely, plus a little
  await page.waitForTimeout(Math.max(0, 60_000 - (Date.now() % 60_000)) + 61_000)
  const liveDuring = await attr(page, 'live')
  await page.waitForTimeout(3_000)
  t.equal(await attr(page, 'live'), liveDuring, 'no price drawn while the exchange is down')
  await simFaults(env, 'reset')
  t.ok(Date.now() - outageStart > 60_000, `the outage lasted ${Math.round((Date.now() - outageStart) / 1000)} s`)
  await page.waitForFunction((before) => Number(document.querySelector('[data-testid="price-chart"]')?.getAttribute('data-gaps') ?? '0') > before, gapsBefore, { timeout: 90_000 })
  t.ok(Number(await attr(page, 'gaps')) > gapsBefore, `live prices came back behind a gap (${gapsBefore} → ${await attr(page, 'gaps')} gaps)`)
  t.same(await axeSerious(page), [], 'axe-core: no serious violation (after the outage)')
  await shot(page, env, 'chart-05-desktop-after-outage')
  t.same(errors, [], 'no page errors')
})
