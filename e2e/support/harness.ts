/**
 * What every e2e test needs: the running gateway's URLs (given by scripts/run-e2e.mjs), Debian's
 * Chromium through playwright-core, screenshots into test-artifacts/e2e, and the simulator's faults.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'

export interface E2EEnv {
  base: string
  sim: string
  artifacts: string
  staleAfterMs: number
}

export function e2eEnv(): E2EEnv {
  const base = process.env.E2E_BASE_URL
  const sim = process.env.E2E_SIM_URL
  if (!base || !sim) throw new Error('E2E_BASE_URL / E2E_SIM_URL are not set: run the e2e suite with `npm run test:e2e`')
  const artifacts = process.env.E2E_ARTIFACTS ?? join(process.cwd(), 'test-artifacts', 'e2e')
  mkdirSync(artifacts, { recursive: true })
  return { base, sim, artifacts, staleAfterMs: Number(process.env.E2E_STALE_AFTER_MS ?? 30_000) }
}

export const DESKTOP = { width: 1440, height: 900 }
export const PHONE = { width: 390, height: 844 }

/**
 * The suites run under tsx (scripts/tap-tsx.mjs), whose esbuild transform keeps function names by wrapping named
 * functions in a `__name(fn, "name")` helper. A function given to `page.evaluate` / `waitForFunction` is sent to the
 * page as source text, helper call included, so every page gets the same helper (it only names the function).
 */
const KEEP_NAMES_HELPER = `globalThis.__name ??= (fn, name) => Object.defineProperty(fn, 'name', { value: name, configurable: true })`

export async function launch(): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  })
  const newContext = browser.newContext.bind(browser)
  browser.newContext = async (options) => {
    const context = await newContext(options)
    await context.addInitScript({ content: KEEP_NAMES_HELPER })
    return context
  }
  return browser
}

export async function newPage(
  browser: Browser,
  viewport: { width: number; height: number },
  colorScheme: 'light' | 'dark' = 'light',
): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport, colorScheme, deviceScaleFactor: 1, locale: 'en-US', timezoneId: 'UTC' })
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  // a Content-Security-Policy refusal means something on the page silently does not work
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) errors.push(m.text())
  })
  return { context, page, errors }
}

export async function shot(page: Page, env: E2EEnv, name: string, fullPage = true): Promise<string> {
  const path = join(env.artifacts, `${name}.png`)
  await page.evaluate(() => window.scrollTo(0, 0))
  await page.mouse.move(1, 1) // no chart crosshair or hover in the picture
  await page.screenshot({ path, fullPage, animations: 'disabled' })
  return path
}

export async function simFaults(env: E2EEnv, faults: Record<string, unknown> | 'reset'): Promise<void> {
  const res =
    faults === 'reset'
      ? await fetch(`${env.sim}/__sim/faults/reset`, { method: 'POST' })
      : await fetch(`${env.sim}/__sim/faults`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(faults),
        })
  if (!res.ok) throw new Error(`simulator faults ${JSON.stringify(faults)}: HTTP ${res.status} ${await res.text()}`)
}

/** signs in as demo/demo from the login page and waits for the LIVE chip */
export async function loginDemo(page: Page, env: E2EEnv): Promise<void> {
  await page.goto(env.base)
  await page.getByTestId('username').fill('demo')
  await page.getByTestId('password').fill('demo')
  await page.getByTestId('auth-submit').click()
  await page.getByTestId('conn-chip').and(page.locator('[data-state="live"]')).waitFor({ timeout: 20_000 })
}

/** elements whose right edge passes the viewport, or a page wider than it */
export async function overflowReport(page: Page): Promise<{ scrollWidth: number; innerWidth: number; offenders: string[] }> {
  return page.evaluate(() => {
    const offenders: string[] = []
    const w = window.innerWidth
    for (const el of Array.from(document.querySelectorAll('body *'))) {
      const r = el.getBoundingClientRect()
      if (r.width <= 1 || r.height <= 1) continue // empty, or visually hidden screen-reader text
      const style = getComputedStyle(el)
      if (style.position === 'fixed' && r.right <= 0) continue // off-screen skip link
      if (r.right > w + 0.5 || r.left < -0.5) {
        // inside a horizontally scrolling box is fine
        let p = el.parentElement
        let clipped = false
        while (p && p !== document.body) {
          const ps = getComputedStyle(p)
          if (ps.overflowX === 'auto' || ps.overflowX === 'hidden' || ps.overflowX === 'scroll') {
            const pr = p.getBoundingClientRect()
            if (pr.right <= w + 0.5 && pr.left >= -0.5) clipped = true
            break
          }
          p = p.parentElement
        }
        if (!clipped)
          offenders.push(
            `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${(el.getAttribute('class') ?? '').replace(/\s+/g, '.')} [${Math.round(r.left)}..${Math.round(r.right)}]`,
          )
      }
    }
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth: w, offenders: offenders.slice(0, 10) }
  })
}

export async function text(page: Page, testId: string): Promise<string> {
  return (await page.getByTestId(testId).first().innerText()).replace(/\s+/g, ' ').trim()
}

/** polls `read` until it returns something other than `from`, or throws after `timeoutMs` */
export async function waitForChange(
  read: () => Promise<string>,
  from: string,
  timeoutMs: number,
): Promise<{ value: string; afterMs: number }> {
  const start = Date.now()
  while (Date.now() - start < timeoutMs) {
    const v = await read()
    if (v !== from) return { value: v, afterMs: Date.now() - start }
    await sleep(250)
  }
  throw new Error(`value stayed "${from}" for ${timeoutMs} ms`)
}

const AXE_PATH = join(process.cwd(), 'node_modules', 'axe-core', 'axe.min.js')

/**
 * axe-core's serious and critical violations on the page as it is now, one line each
 * ("color-contrast: 2 × .badge-stale — Elements must meet minimum color contrast ratio thresholds").
 */
export async function axeSerious(page: Page): Promise<string[]> {
  const loaded = await page.evaluate(() => typeof (window as unknown as { axe?: unknown }).axe !== 'undefined')
  // the page's Content-Security-Policy (script-src 'self') refuses an injected <script> (addScriptTag);
  // evaluating the source through the DevTools protocol is not subject to it
  if (!loaded) await page.evaluate(readFileSync(AXE_PATH, 'utf8'))
  const violations = await page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: {
          run(
            ctx: Document,
            opts: object,
          ): Promise<{
            violations: Array<{
              id: string
              impact: string | null
              help: string
              nodes: Array<{ target: unknown[]; failureSummary?: string }>
            }>
          }>
        }
      }
    ).axe
    const r = await axe.run(document, { resultTypes: ['violations'] })
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map(
        (v) =>
          `${v.id}: ${v.nodes.length} × ${v.nodes
            .slice(0, 3)
            .map((n) => String(n.target[0]))
            .join(' | ')} — ${v.help} (${(v.nodes[0]?.failureSummary ?? '').replace(/\s+/g, ' ').slice(0, 160)})`,
      )
  })
  return violations
}

/**
 * The renderer main thread's cost over `ms`, from CDP Performance metrics: `cpu` = its CPU time (ThreadTime)
 * per wall second — what the page itself burns — and `tasks` = TaskDuration per wall second, which on a
 * loaded machine also counts the time the thread waited for a core in the middle of a task.
 */
export async function mainThreadBusy(page: Page, ms: number): Promise<{ cpu: number; tasks: number; wallSeconds: number }> {
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Performance.enable')
  const read = async () => {
    const { metrics } = await cdp.send('Performance.getMetrics')
    const get = (n: string) => metrics.find((m) => m.name === n)?.value ?? 0
    return { thread: get('ThreadTime'), task: get('TaskDuration'), ts: get('Timestamp') }
  }
  const a = await read()
  await page.waitForTimeout(ms)
  const b = await read()
  await cdp.detach()
  const wallSeconds = b.ts - a.ts
  return { cpu: (b.thread - a.thread) / wallSeconds, tasks: (b.task - a.task) / wallSeconds, wallSeconds }
}
