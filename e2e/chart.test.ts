/**
 * The price chart as a trader uses it, in headless Chromium against a real gateway in demo mode: seeded with
 * hours of the exchange's candles (GET /api/candles), still seeded after a reload, times labelled in the
 * browser's time zone (here Europe/Paris) with UTC on hover, the selected position's entry, liquidation,
 * stop-loss and take-profit lines, a liquidation line named at the edge instead of flattening the candles (the
 * candles keep at least 40 % of the pane's height, measured with the chart's priceToCoordinate), and a range
 * switch that fetches that range (1m … 1d). axe-core in each state; screenshots at 1440 and 390 px.
 */
import t, { type Test } from 'tap'
import type { Browser, Page } from 'playwright-core'
import { DESKTOP, PHONE, axeSerious, e2eEnv, launch, loginDemo, overflowReport, shot, simFaults } from './support/harness.ts'

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

async function open(viewport: { width: number; height: number }) {
  const context = await browser.newContext({
    viewport,
    colorScheme: 'light',
    deviceScaleFactor: 1,
    locale: 'en-US',
    timezoneId: 'Europe/Paris',
  })
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  return { context, page, errors }
}

const chart = (page: Page) => page.getByTestId('price-chart')
const attr = async (page: Page, name: string) => (await chart(page).getAttribute(`data-${name}`)) ?? ''

interface Readability {
  candlePx: number
  paneH: number
  hi: number
  lo: number
  /** share of the pane the autoscaled range is drawn in (1 − the price scale's margins) */
  rangeShare: number
  share: number
  lines: { key: string; price: number; y: number | null; inPane: boolean }[]
  offscale: string[]
}

/**
 * What the chart draws, measured through its API (priceToCoordinate): the visible candles' high–low height
 * against the pane's, and where each of the position's lines falls (inside the pane or not)
 */
async function readability(page: Page): Promise<Readability> {
  return page.evaluate(() => {
    const el = document.querySelector('[data-testid="price-chart"]') as HTMLElement & { lwChart?: { chart: any; series: any } }
    const { chart, series } = el.lwChart!
    const vr = chart.timeScale().getVisibleLogicalRange()
    const data = series.data() as { high?: number; low?: number }[]
    let hi = -Infinity
    let lo = Infinity
    for (let i = Math.max(0, Math.ceil(vr.from)); i <= Math.min(data.length - 1, Math.floor(vr.to)); i++) {
      const b = data[i]!
      if (b.high === undefined || b.low === undefined) continue
      hi = Math.max(hi, b.high)
      lo = Math.min(lo, b.low)
    }
    const paneH = chart.paneSize(0).height as number
    const candlePx = (series.priceToCoordinate(lo) as number) - (series.priceToCoordinate(hi) as number)
    const lines = (series.priceLines() as { options(): { title: string; price: number } }[]).map((l) => {
      const { title, price } = l.options()
      const y = series.priceToCoordinate(price) as number | null
      return { key: title, price, y, inPane: y !== null && y >= 0 && y <= paneH }
    })
    const offscale = (el.dataset.offscale ?? '').split(',').filter(Boolean)
    const m = chart.priceScale('right').options().scaleMargins as { top: number; bottom: number }
    return { candlePx, paneH, hi, lo, rangeShare: 1 - m.top - m.bottom, share: candlePx / paneH, lines, offscale }
  })
}

const KEYS: Record<string, string> = { Entry: 'entry', Liq: 'liq', SL: 'sl', TP: 'tp' }

/** the candles keep ≥ 40 % of the pane; a line is named at the edge exactly when it is not drawn in the pane */
async function assertReadable(t: Test, page: Page, what: string): Promise<Readability> {
  // the off-scale labels follow the scale one animation frame later
  await page.waitForFunction(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true)))))
  const r = await readability(page)
  t.ok(
    r.share >= 0.4,
    `${what}: the candles take ${(r.share * 100).toFixed(0)} % of the pane's height (${r.candlePx.toFixed(0)} of ${r.paneH} px)`,
  )
  const outside = r.lines
    .filter((l) => !l.inPane)
    .map((l) => KEYS[l.key])
    .sort()
  t.same([...r.offscale].sort(), outside, `${what}: data-offscale names the lines outside the pane (${outside.join(',') || 'none'})`)
  return r
}

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
  t.ok(
    candleRequests.some((q) => q.includes('range=5m')),
    'fetched from /api/candles',
  )
  t.equal(
    await page.getByTestId('chart-range').locator('button[aria-pressed="true"]').innerText(),
    '5m',
    'the range in use is the pressed button',
  )

  const tz = await page.getByTestId('chart-tz').innerText()
  t.match(tz, /Times in Europe\/Paris \(UTC\+1\)/, `the time zone is named (${tz})`)

  // the demo trader's riskiest position (shown by default) is the short with a stop-loss and a take-profit
  await page.locator('[data-testid="price-chart"][data-lines="entry,liq,sl,tp"]').waitFor({ timeout: 20_000 })
  const legend = await page.locator('.chart-legend').innerText()
  t.match(legend, /entry [\d,.]+/, 'entry in the legend')
  t.match(legend, /stop-loss [\d,.]+/, 'stop-loss in the legend')
  t.match(legend, /take-profit [\d,.]+/, 'take-profit in the legend')
  t.match(
    await page.locator('.chart-box').getAttribute('aria-label'),
    /Entry .*Liq .*SL .*TP /,
    "the lines are in the chart's text alternative",
  )

  // hover: local time and UTC
  await page.locator('.chart-box').scrollIntoViewIfNeeded()
  const box = (await page.locator('.chart-box').boundingBox())!
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.4)
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5, { steps: 5 })
  await page.getByTestId('chart-hover').waitFor({ state: 'visible', timeout: 5_000 })
  const hover = await page.getByTestId('chart-hover').innerText()
  t.match(
    hover,
    /\d{2}:\d{2} · .*\d{2}:\d{2} UTC · O [\d,.]+ H [\d,.]+ L [\d,.]+ C [\d,.]+/,
    `hover shows local time, UTC and OHLC (${hover})`,
  )
  const [local, utc] = hover.split(' · ')
  const hh = (s: string) => Number(/(\d{2}):\d{2}/.exec(s)![1])
  t.equal((hh(local!) - hh(utc!) + 24) % 24, 1, 'the local time is UTC+1 (Paris in winter)')
  await assertReadable(t, page, '5m, the short')
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
  await assertReadable(t, page, '5m, the 5× long')
  t.same(await axeSerious(page), [], 'axe-core: no serious violation (far line off scale)')
  await shot(page, env, 'chart-02-desktop-far-liquidation')

  // switching range fetches that range
  const before = candleRequests.length
  await page.getByTestId('chart-range').locator('button[data-range="1m"]').click()
  await seeded(page, '1m')
  t.ok(
    candleRequests.slice(before).some((q) => q.includes('range=1m')),
    'the 1m candles were requested',
  )
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
  await page.waitForFunction(
    () => Number(document.querySelector('[data-testid="price-chart"]')?.getAttribute('data-live') ?? '0') > 0,
    null,
    { timeout: 20_000 },
  )
  t.pass('live ticker prices fold into the chart')

  // 1m candles and the demo short (selected again after the reload): its liquidation, a few percent away,
  // would squeeze hours of 1-minute candles into a thin band; it is named at the edge instead
  await page.locator('[data-testid="price-chart"][data-lines="entry,liq,sl,tp"]').waitFor({ timeout: 20_000 })
  const r1m = await assertReadable(t, page, '1m, the short')
  // the premise: drawn inside the scale, the liquidation would leave the candles under 40 % of the pane (the
  // demo's seeded history spans about 2 % over these 6 hours; a 25× short is liquidated about 4 % away)
  const liqLine = r1m.lines.find((l) => l.key === 'Liq')!
  const perPx = r1m.candlePx / (r1m.hi - r1m.lo)
  const withLiqShare = (r1m.rangeShare * (r1m.hi - r1m.lo)) / (Math.max(r1m.hi, liqLine.price) - Math.min(r1m.lo, liqLine.price))
  t.ok(
    perPx > 0 && withLiqShare < 0.4,
    `with the liquidation in the scale the candles would take ${(withLiqShare * 100).toFixed(0)} % of the pane`,
  )
  t.notOk(r1m.lines.find((l) => l.key === 'Liq')!.inPane, 'the liquidation line is outside the pane')
  await page.getByTestId('offscale-liq').waitFor({ timeout: 10_000 })
  const liq1m = await page.getByTestId('offscale-liq').innerText()
  t.match(liq1m, /^Liq [\d,.]+ [↑↓] \(\d+\.\d % away\)$/, `and named at the edge (${liq1m})`)
  t.match(await page.locator('.chart-box').getAttribute('aria-label'), /Liq [\d,.]+/, "still in the chart's text alternative")
  t.same(await axeSerious(page), [], 'axe-core: no serious violation (1m, liquidation off scale)')
  await shot(page, env, 'chart-06-desktop-1m-short')
  await page.getByTestId('panel-chart').screenshot({ path: `${env.artifacts}/chart-06-desktop-1m-short-panel.png` })

  // "price" mode zooms on the candles: every line outside them is off scale, the candles fill the pane
  await page.getByRole('button', { name: 'price', exact: true }).click()
  const zoomed = await assertReadable(t, page, '1m, price mode')
  t.ok(zoomed.share >= r1m.share - 0.01, `price mode is at least as tall (${(zoomed.share * 100).toFixed(0)} %)`)
  await page.getByRole('button', { name: 'with lines', exact: true }).click()

  // daily candles
  await page.getByTestId('chart-range').locator('button[data-range="1d"]').click()
  await seeded(page, '1d')
  t.ok(
    candleRequests.some((q) => q.includes('range=1d')),
    'the 1d candles were requested',
  )
  t.ok(Number(await attr(page, 'points')) >= 1, `1d: daily candles (${await attr(page, 'points')})`)
  await assertReadable(t, page, '1d, the short')
  await page.getByTestId('chart-range').locator('button[data-range="5m"]').click()
  await seeded(page, '5m')
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
  await page.getByTestId('chart-range').locator('button[data-range="1m"]').click()
  await seeded(page, '1m')
  await page.locator('[data-testid="price-chart"][data-lines="entry,liq,sl,tp"]').waitFor({ timeout: 20_000 })
  await assertReadable(t, page, 'phone, 1m, the short')
  t.same((await overflowReport(page)).offenders, [], 'nothing sticks out with 1m selected')
  await panel.screenshot({ path: `${env.artifacts}/chart-07-phone-390-1m-panel.png` })
  await page.getByTestId('chart-range').locator('button[data-range="5m"]').click()
  await seeded(page, '5m')
  t.same(errors, [], 'no page errors')
})

t.test('an exchange outage longer than a candle is a gap, not a line drawn across it', async (t) => {
  const { context, page, errors } = await open(DESKTOP)
  t.teardown(() => context.close())
  await loginDemo(page, env)
  await page.getByTestId('chart-range').locator('button[data-range="1m"]').click()
  await seeded(page, '1m')
  await page.waitForFunction(
    () => Number(document.querySelector('[data-testid="price-chart"]')?.getAttribute('data-live') ?? '0') > 0,
    null,
    { timeout: 20_000 },
  )
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
  await page.waitForFunction(
    (before) => Number(document.querySelector('[data-testid="price-chart"]')?.getAttribute('data-gaps') ?? '0') > before,
    gapsBefore,
    { timeout: 90_000 },
  )
  t.ok(
    Number(await attr(page, 'gaps')) > gapsBefore,
    `live prices came back behind a gap (${gapsBefore} → ${await attr(page, 'gaps')} gaps)`,
  )
  t.same(await axeSerious(page), [], 'axe-core: no serious violation (after the outage)')
  await shot(page, env, 'chart-05-desktop-after-outage')
  t.same(errors, [], 'no page errors')
})
