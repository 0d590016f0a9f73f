import { existsSync, mkdirSync } from 'node:fs'
import t from 'tap'
import type { Test } from 'tap'
import { chromium } from 'playwright-core'
import type { Page } from 'playwright-core'
import type { SessionInfo } from '../client/index.js'
import { listeningApp, loginElsewhere, sleep } from './helpers/client.js'
import type { RefreshRecord } from './helpers/client.js'

// End to end in Debian's headless Chromium: the demo page at / (the client
// module bundled by esbuild) in two tabs of one browser context, against the
// example server with 2-second access tokens. `.ci/run` installs chromium.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const OUT = 'test-output'

interface DemoWindow {
  demo: {
    burst: (n: number, spreadMs?: number) => Promise<number[]>
    client: { session: () => Promise<SessionInfo | null> }
    counters: { statuses: number[], refreshes: number }
  }
}

const session = (page: Page) => page.evaluate(() => (window as unknown as DemoWindow).demo.client.session())
const burst = (page: Page, n: number, spreadMs: number) => page.evaluate(([n, s]) => (window as unknown as DemoWindow).demo.burst(n, s), [n, spreadMs] as const)
const statuses = (page: Page) => page.evaluate(() => (window as unknown as DemoWindow).demo.counters.statuses)
const signedIn = (page: Page) => page.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('Signed in as alice'))

/** No refresh token presented twice, and no two refreshes for one expiry (a pair lives >= 1 s here). */
function oneRefreshPerExpiry (t: Test, list: RefreshRecord[], label: string): void {
  t.ok(list.length >= 1, `${label}: ${list.length} refresh(es)`)
  t.same(list.map((r) => r.status), list.map(() => 200), `${label}: every refresh succeeded`)
  t.equal(new Set(list.map((r) => r.presented)).size, list.length, `${label}: no refresh token presented twice`)
  const gaps = list.slice(1).map((r, i) => r.at - list[i]!.at)
  t.ok(gaps.every((g) => g >= 300), `${label}: refreshes at least 300 ms apart (${gaps.join(', ')} ms)`)
}

t.test('the demo page in two tabs of headless Chromium', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} missing (apt-get install chromium)`, timeout: 90_000 }, async (t) => {
  mkdirSync(OUT, { recursive: true })
  const { baseUrl, refreshes, apiStatuses } = await listeningApp(t, { accessTtl: 2 })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 })
  t.teardown(() => browser.close())
  const context = await browser.newContext({ viewport: { width: 900, height: 1050 } })
  context.setDefaultTimeout(15_000)
  const pageErrors: string[] = []
  const open = async (query: string) => {
    const page = await context.newPage()
    page.on('pageerror', (err) => pageErrors.push(err.message))
    await page.goto(`${baseUrl}/${query}`)
    return page
  }

  // Tab 1 signs in through the form; tab 2 finds the session in localStorage.
  const tab1 = await open('?timer=0')
  await tab1.click('button[type=submit]')
  await signedIn(tab1)
  const tab2 = await open('?timer=0')
  await signedIn(tab2)
  t.equal((await session(tab2))!.sessionId, (await session(tab1))!.sessionId, 'one session for both tabs')

  await t.test('20 requests in each tab, spread across expiries: one refresh per expiry, no 401', async (t) => {
    const start = refreshes.length
    const [one, two] = await Promise.all([burst(tab1, 20, 150), burst(tab2, 20, 150)])
    t.same([...one, ...two], Array(40).fill(200))
    oneRefreshPerExpiry(t, refreshes.slice(start), 'spread')
  })

  await t.test('20 requests in each tab at once, just past an expiry: exactly one refresh', async (t) => {
    const { expiresAt } = (await session(tab1))!
    await sleep(expiresAt - Date.now() + 100)
    const start = refreshes.length
    const [one, two] = await Promise.all([burst(tab1, 20, 0), burst(tab2, 20, 0)])
    t.same([...one, ...two], Array(40).fill(200))
    t.equal(refreshes.length - start, 1, 'exactly one refresh for 40 requests in two tabs')
    t.equal(refreshes[refreshes.length - 1]!.status, 200)
  })

  t.notOk(apiStatuses.includes(401), 'the server answered no 401 at all')
  t.notOk([...await statuses(tab1), ...await statuses(tab2)].includes(401), 'no 401 reached the page')

  await t.test('timer mode: idle tabs keep the session fresh, one refresh per expiry', async (t) => {
    await Promise.all([tab1.goto(baseUrl), tab2.goto(baseUrl)])
    await Promise.all([signedIn(tab1), signedIn(tab2)])
    const start = refreshes.length
    await sleep(4500)
    oneRefreshPerExpiry(t, refreshes.slice(start), 'timer')
    t.same(await burst(tab2, 5, 0), Array(5).fill(200))
    await tab1.click('#me')
    await tab1.waitForFunction(() => document.getElementById('log')?.textContent?.includes('GET /api/me -> 200'))
    await tab1.screenshot({ path: `${OUT}/demo-signed-in.png`, fullPage: true })
  })

  await t.test('a login elsewhere shows the replaced notice in both tabs', async (t) => {
    await loginElsewhere(baseUrl, 'alice', { device_type: 'phone' })
    await tab1.click('#me')
    for (const tab of [tab1, tab2]) {
      await tab.waitForFunction(() => getComputedStyle(document.getElementById('notice')!).display === 'block')
      t.equal(await tab.textContent('#notice'), 'You signed in on another device: this session has ended.')
    }
    await tab1.waitForFunction(() => document.getElementById('status')?.textContent === 'Signed out (replaced)')
    await tab1.screenshot({ path: `${OUT}/demo.png`, fullPage: true })
    t.equal(await tab1.evaluate(() => localStorage.length), 0, 'tokens cleared')
  })

  t.same(pageErrors, [], 'no script error in the page')
  t.comment(`refreshes seen by the server: ${refreshes.length}`)
})
