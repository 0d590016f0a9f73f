import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createAuthClient, localStorageAdapter, memoryStorage } from '../client/index.js'
import type { AuthClientOptions, StoredTokens, WebStorageLike } from '../client/index.js'
import { fakeLocks, listeningApp, loginElsewhere, waitFor } from './helpers/client.js'

const alice = { username: 'alice', password: 'alice-pass' }
const statusesOf = (list: Array<{ status: number }>) => list.map((r) => r.status)

/** A device clock that stands still until the test moves it: back-off deadlines are read on it, never raced. */
function handClock (start = Date.now()) {
  let at = start
  return { now: () => at, advance: (ms: number) => { at += ms } }
}

/**
 * A refresh route that answers 429 with the given `Retry-After` while
 * `retryAfter` is set (the real rate limit's window runs on the server's
 * clock, which a test cannot move), and the real route otherwise.
 */
function refreshGate () {
  const gate = {
    retryAfter: null as (() => string) | null,
    install (app: FastifyInstance) {
      app.addHook('onRequest', async (request, reply) => {
        if (request.url !== '/auth/refresh' || gate.retryAfter === null) return
        return await reply.code(429).header('retry-after', gate.retryAfter()).send({ statusCode: 429, code: 'AUTH_RATE_LIMITED', error: 'Too Many Requests', message: 'Too many refreshes' })
      })
    }
  }
  return gate
}

/** Changes alice's roles, so that her next call is answered 401 AUTH_TOKEN_STALE (refresh to get the new claims). */
async function makeStale (baseUrl: string, roles: string[]): Promise<void> {
  const admin = await loginElsewhere(baseUrl, 'root')
  const put = await fetch(`${baseUrl}/admin/users/alice/roles`, { method: 'PUT', headers: { authorization: `Bearer ${admin.access_token}`, 'content-type': 'application/json' }, body: JSON.stringify({ roles }) })
  if (put.status !== 204) throw new Error(`role change failed: ${put.status}`)
}

t.test('after a 429 from the refresh rate limit, 20 concurrent calls then 20 more one by one send one refresh in all', async (t) => {
  const { baseUrl, refreshes } = await listeningApp(t, { refreshRateMax: 1, refreshRateWindow: 60 })
  const clock = handClock()
  const client = createAuthClient({ baseUrl, now: clock.now, jitterSeconds: 0 })
  t.teardown(() => client.close())
  const { refreshAt } = await client.login(alice)
  t.equal(await client.refresh(), true, 'the one refresh the window allows')
  // Every call now both finds its refresh due (on the device clock) and gets a 401 STALE.
  clock.advance(refreshAt - clock.now() + 240_000)
  await makeStale(baseUrl, ['user', 'beta'])
  const before = refreshes.length
  const statuses = await Promise.all(Array.from({ length: 20 }, () => client.fetch('/api/me').then((r) => r.status)))
  t.same(statusesOf(refreshes.slice(before)), [429], `20 concurrent calls: one refresh request (${refreshes.length - before})`)
  for (let i = 0; i < 20; i++) statuses.push((await client.fetch('/api/me')).status)
  t.same(statusesOf(refreshes.slice(before)), [429], `20 more, one by one: no other (${refreshes.length - before} in all)`)
  t.same(statuses, Array(40).fill(401), 'the stale token\'s 401 reaches the app while refreshing must wait')
})

t.test('Retry-After in seconds: no refresh until it has passed on the client\'s clock, then refreshing works again', async (t) => {
  const gate = refreshGate()
  const { baseUrl, refreshes } = await listeningApp(t, {}, gate.install)
  const clock = handClock()
  const storage = memoryStorage()
  const client = createAuthClient({ baseUrl, storage, now: clock.now, jitterSeconds: 0 })
  t.teardown(() => client.close())
  const { refreshAt } = await client.login(alice)
  const first = await client.getAccessToken()
  gate.retryAfter = () => '30'
  clock.advance(refreshAt - clock.now())
  const refusedAt = clock.now()
  const statuses = await Promise.all(Array.from({ length: 20 }, () => client.fetch('/api/me').then((r) => r.status)))
  t.same(statuses, Array(20).fill(200), 'the calls went out with the pair, still good on the server')
  t.same(statusesOf(refreshes), [429])
  t.equal((await storage.get())?.refresh_retry_at, refusedAt + 30_000, 'the wait is kept with the pair')
  t.equal(await client.refresh(), true, 'refresh() inside the wait: still signed in')
  clock.advance(29_999)
  t.equal((await client.fetch('/api/me')).status, 200)
  t.equal(await client.getAccessToken(), first, 'same pair')
  t.same(statusesOf(refreshes), [429], 'nothing asked of the server before Retry-After')

  gate.retryAfter = null
  clock.advance(1)
  t.equal((await client.fetch('/api/me')).status, 200)
  t.same(statusesOf(refreshes), [429, 200], 'refreshed once the wait was over')
  t.not(await client.getAccessToken(), first, 'a new pair')
  t.equal((await storage.get())?.refresh_retry_at, undefined, 'which has no wait')
})

t.test('Retry-After as an HTTP-date is measured on the server\'s Date, whatever the device clock says', async (t) => {
  const gate = refreshGate()
  const { baseUrl, refreshes } = await listeningApp(t, {}, gate.install)
  // The device is an hour behind: its "now" is no base for the server's dates.
  const clock = handClock(Date.now() - 3_600_000)
  const client = createAuthClient({ baseUrl, now: clock.now })
  t.teardown(() => client.close())
  await client.login(alice)
  gate.retryAfter = () => new Date(Date.now() + 30_000).toUTCString()
  t.equal(await client.refresh(), true)
  // Dates are whole seconds: the wait is 30 s, give or take one.
  clock.advance(28_000)
  t.equal(await client.refresh(), true)
  t.same(statusesOf(refreshes), [429], 'still waiting 28 s later')
  gate.retryAfter = null
  clock.advance(4000)
  t.equal(await client.refresh(), true)
  t.same(statusesOf(refreshes), [429, 200], 'refreshed 32 s later')
})

function sharedWebStorage (): WebStorageLike {
  const data = new Map<string, string>()
  return { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => { data.set(k, v) }, removeItem: (k) => { data.delete(k) } }
}

function tabs (baseUrl: string, perTab: () => Partial<AuthClientOptions>, t: { teardown: (fn: () => void) => void }) {
  const name = `backoff-${randomBytes(4).toString('hex')}`
  const clients = [0, 1].map(() => createAuthClient({ baseUrl, name, broadcast: true, jitterSeconds: 0, ...perTab() }))
  t.teardown(() => { for (const c of clients) c.close() })
  return clients as [typeof clients[0], typeof clients[0]]
}

t.test('one wait for every tab: through the shared storage, and over the channel for tabs with their own', async (t) => {
  t.test('tabs sharing localStorage', async (t) => {
    const gate = refreshGate()
    const { baseUrl, refreshes } = await listeningApp(t, {}, gate.install)
    const clock = handClock()
    const web = sharedWebStorage()
    const locks = fakeLocks()
    const [a, b] = tabs(baseUrl, () => ({ storage: localStorageAdapter('k', web), locks, now: clock.now }), t)
    const { refreshAt } = await a.login(alice)
    // longer than the pair has left before its planned refresh
    gate.retryAfter = () => '600'
    t.equal(await a.refresh(), true)
    clock.advance(refreshAt - clock.now())
    t.same(await Promise.all([b.fetch('/api/me'), b.fetch('/api/me'), a.fetch('/api/me')].map((p) => p.then((r) => r.status))), [200, 200, 200])
    t.equal(await b.refresh(), true)
    t.same(statusesOf(refreshes), [429], 'the other tab waits too')
    gate.retryAfter = null
    clock.advance(600_000)
    t.equal(await b.refresh(), true)
    t.same(statusesOf(refreshes), [429, 200])
  })

  t.test('tabs with their own memory', async (t) => {
    const gate = refreshGate()
    const { baseUrl, refreshes } = await listeningApp(t, {}, gate.install)
    const clock = handClock()
    const mine = memoryStorage()
    const theirs = memoryStorage()
    const stores = [mine, theirs]
    const [a, b] = tabs(baseUrl, () => ({ storage: stores.shift()!, now: clock.now }), t)
    await a.login(alice)
    await waitFor(async () => (await theirs.get()) != null, 'the other tab to learn the pair')
    gate.retryAfter = () => '10'
    t.equal(await a.refresh(), true)
    const until = (await mine.get())!.refresh_retry_at!
    await waitFor(async () => (await theirs.get())?.refresh_retry_at === until, 'the other tab to learn the wait')
    t.equal(await b.refresh(), true)
    t.same(statusesOf(refreshes), [429], 'the other tab waits too')
    gate.retryAfter = null
    clock.advance(10_000)
    t.equal(await b.refresh(), true)
    t.same(statusesOf(refreshes), [429, 200])
  })
})

t.test('a wait heard from another tab applies only to the same session, and never shortens one', async (t) => {
  const name = `backoff-${randomBytes(4).toString('hex')}`
  const storage = memoryStorage()
  const pair: StoredTokens = { access_token: 'a', refresh_token: 'r', session_id: 's', expires_at: Date.now() + 60_000, obtained_at: Date.now() }
  const client = createAuthClient({ baseUrl: 'http://app.invalid', name, broadcast: true, storage })
  t.teardown(() => client.close())
  let markers = 0
  client.on('refresh', () => { markers++ })
  const other = new BroadcastChannel(name)
  t.teardown(() => other.close())
  /** Posts a message, then a pair the tab holds already: its refresh event shows the first message was handled. */
  const deliver = async (message: unknown) => {
    const seen = markers
    other.postMessage(message)
    other.postMessage({ type: 'tokens', kind: 'refresh', tokens: pair })
    await waitFor(() => markers > seen, 'the marker message')
  }
  await deliver({ type: 'backoff', sessionId: 's', until: 6000 })
  t.same(await storage.get(), pair, 'signed out: nothing to keep the wait with (the marker then stored the pair)')
  await deliver({ type: 'backoff', sessionId: 'another', until: 5000 })
  t.equal((await storage.get())?.refresh_retry_at, undefined, 'another session: ignored')
  await deliver({ type: 'backoff', sessionId: 's', until: 5000 })
  t.equal((await storage.get())?.refresh_retry_at, 5000, 'this session: kept')
  await deliver({ type: 'backoff', sessionId: 's', until: 4000 })
  t.equal((await storage.get())?.refresh_retry_at, 5000, 'an earlier end: ignored')
})

t.test('a refusal that comes back after the pair changed (a login in another tab) is not kept', async (t) => {
  const gate = refreshGate()
  const { baseUrl, refreshes } = await listeningApp(t, {}, gate.install)
  const web = sharedWebStorage()
  let hold: Promise<void> = Promise.resolve()
  let leaving = false
  const slow = createAuthClient({
    baseUrl,
    storage: localStorageAdapter('k', web),
    fetch: async (url, init) => {
      if (String(url).endsWith('/auth/refresh')) { leaving = true; await hold }
      return await fetch(url, init)
    }
  })
  const other = createAuthClient({ baseUrl, storage: localStorageAdapter('k', web) })
  await slow.login(alice)
  gate.retryAfter = () => '30'
  for (const change of [() => other.login(alice), () => other.logout()]) {
    let release!: () => void
    hold = new Promise((resolve) => { release = resolve })
    leaving = false
    const refreshing = slow.refresh()
    await waitFor(() => leaving, 'the refresh to leave')
    await change()
    release()
    await refreshing
    t.equal((await localStorageAdapter('k', web).get())?.refresh_retry_at, undefined, 'the new state carries no wait')
  }
  t.same(statusesOf(refreshes), [429, 429])
})

t.test('timer mode after a 429 tries again when the wait is over', async (t) => {
  const gate = refreshGate()
  const { baseUrl, refreshes } = await listeningApp(t, {}, gate.install)
  const clock = handClock()
  const client = createAuthClient({ baseUrl, now: clock.now, jitterSeconds: 0, autoRefresh: true })
  t.teardown(() => client.close())
  const { refreshAt } = await client.login(alice)
  clock.advance(refreshAt - clock.now())
  gate.retryAfter = () => '1'
  t.equal(await client.refresh(), true)
  gate.retryAfter = null
  clock.advance(1000)
  // The timer runs on real time (one second here); it finds the wait over on the device clock.
  await waitFor(() => refreshes.length === 2, 'the timer\'s refresh')
  t.same(statusesOf(refreshes), [429, 200])
})

/** A client on a fake server whose refresh route answers `refresh()` and whose API says the token expired. */
function refusedClient (refresh: () => Response) {
  let refreshCalls = 0
  const storage = memoryStorage()
  const at = Date.now()
  // Due for a refresh: a quarter of its life before expiry has passed.
  void storage.set({ access_token: 'a', refresh_token: 'r', session_id: 's', expires_at: at + 1000, obtained_at: at - 60_000 })
  const client = createAuthClient({
    baseUrl: 'http://app.invalid',
    storage,
    fetch: async (url) => {
      if (!String(url).endsWith('/auth/refresh')) return Response.json({ statusCode: 401, code: 'AUTH_TOKEN_EXPIRED' }, { status: 401 })
      refreshCalls++
      return refresh()
    }
  })
  return { client, refreshCalls: () => refreshCalls }
}

t.test('at most one refresh per call when the refresh fails and the call gets a 401', async (t) => {
  const failures: Array<[string, () => Response]> = [
    ['a proxy\'s error page', () => new Response('<h1>502</h1>', { status: 502 })],
    ['503 without Retry-After', () => Response.json({ code: 'AUTH_STORE_UNAVAILABLE' }, { status: 503 })]
  ]
  for (const [label, answer] of failures) {
    const { client, refreshCalls } = refusedClient(answer)
    for (let i = 0; i < 5; i++) t.equal((await client.fetch('/x')).status, 401)
    t.equal(refreshCalls(), 5, `${label}: one refresh for each of 5 calls`)
  }
  const { client, refreshCalls } = refusedClient(() => Response.json({ code: 'AUTH_STORE_UNAVAILABLE' }, { status: 503, headers: { 'retry-after': '5' } }))
  for (let i = 0; i < 5; i++) t.equal((await client.fetch('/x')).status, 401)
  t.equal(refreshCalls(), 1, '503 with Retry-After: one refresh, then the wait')
})

t.test('refreshWaitMs reads Retry-After as seconds or an HTTP-date, on the server\'s Date when it has one', async (t) => {
  const { refreshWaitMs, DEFAULT_RATE_LIMIT_WAIT_MS } = await import('../client/retry-after.js')
  const now = Date.parse('Sun, 06 Nov 1994 08:49:37 GMT')
  const answer = (status: number, headers: Record<string, string> = {}) => refreshWaitMs(new Response(null, { status, headers }), now)
  t.equal(answer(429, { 'retry-after': '7' }), 7000)
  t.equal(answer(429, { 'retry-after': '0' }), 0)
  t.equal(answer(429), DEFAULT_RATE_LIMIT_WAIT_MS, '429 without Retry-After: a default wait')
  t.equal(answer(429, { 'retry-after': 'soon' }), DEFAULT_RATE_LIMIT_WAIT_MS, 'unreadable: the default')
  t.equal(answer(429, { 'retry-after': '-3' }), DEFAULT_RATE_LIMIT_WAIT_MS, 'negative: unreadable')
  t.equal(answer(429, { 'retry-after': 'Sun, 06 Nov 1994 08:50:07 GMT' }), 30_000, 'a date, without Date: from the device clock')
  t.equal(answer(429, { 'retry-after': 'Sun, 06 Nov 1994 09:50:07 GMT', date: 'Sun, 06 Nov 1994 09:49:37 GMT' }), 30_000, 'a date: from the server\'s Date')
  t.equal(answer(429, { 'retry-after': 'Sun, 06 Nov 1994 08:50:07 GMT', date: 'garbage' }), 30_000, 'an unreadable Date: the device clock')
  t.equal(answer(429, { 'retry-after': 'Sun, 06 Nov 1994 08:49:07 GMT' }), 0, 'a date past: no wait')
  t.equal(answer(503, { 'retry-after': '3' }), 3000, '503 with Retry-After')
  t.equal(answer(503), null, '503 without: no wait')
  t.equal(answer(503, { 'retry-after': 'soon' }), null, '503 with an unreadable one: no wait')
  t.equal(answer(502, { 'retry-after': '3' }), null, 'other statuses: no wait')
})
