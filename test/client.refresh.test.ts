import t from 'tap'
import { createAuthClient, memoryStorage } from '../client/index.js'
import { listeningApp, loginElsewhere, sleep } from './helpers/client.js'
import { prefixedApp } from './helpers/client-prefixed.js'

const alice = { username: 'alice', password: 'alice-pass' }
const distinct = (list: Array<{ presented: string }>) => new Set(list.map((r) => r.presented)).size

t.test('proactive: a call after the planned refresh time refreshes first, and never sends an expired token', async (t) => {
  const { baseUrl, refreshes, apiStatuses } = await listeningApp(t)
  // The device clock is moved past the planned time: no waiting for it.
  let ahead = 0
  const client = createAuthClient({ baseUrl, jitterSeconds: 0, now: () => Date.now() + ahead })
  const events: string[] = []
  client.on('refresh', ({ source }) => events.push(source))
  const first = await client.login(alice)
  t.equal(first.refreshAt, first.expiresAt - 30_000, 'refreshBeforeSeconds before expiry')
  t.equal((await client.fetch('/api/me')).status, 200)
  t.equal(refreshes.length, 0, 'not yet due')
  ahead = first.refreshAt - Date.now() - 1000
  t.equal((await client.fetch('/api/me')).status, 200)
  t.equal(refreshes.length, 0, 'a second before the planned time: still not due')
  ahead = first.refreshAt - Date.now() + 1
  t.equal((await client.fetch('/api/me')).status, 200)
  t.same(refreshes.map((r) => r.status), [200], 'one refresh')
  const second = (await client.session())!
  t.equal(second.sessionId, first.sessionId, 'same session')
  t.ok(second.expiresAt > first.expiresAt)
  t.same(events, ['local'])
  t.same(apiStatuses, [200, 200, 200], 'no 401 on the way')
})

t.test('proactive, short tokens: a call after the planned time refreshes first (a quarter of the life before expiry)', async (t) => {
  const { baseUrl, refreshes, apiStatuses } = await listeningApp(t, { accessTtl: 2 })
  const client = createAuthClient({ baseUrl, jitterSeconds: 0 })
  const first = await client.login(alice)
  t.ok(first.refreshAt < first.expiresAt && first.refreshAt >= first.expiresAt - 500, 'a quarter of a short life before expiry')
  // Real time here: the planned time of a 2-second token is what is tested.
  await sleep(first.refreshAt - Date.now() + 20)
  t.equal((await client.fetch('/api/me')).status, 200)
  t.same(refreshes.map((r) => r.status), [200], 'one refresh')
  t.same(apiStatuses, [200], 'no 401 on the way')
})

/**
 * A client whose access token the server already considers expired while the
 * client does not know it: the reactive path. The host app's clock is ten
 * minutes behind at login, so the pair's `exp` has passed already; the
 * device, whose clock disagrees, counts `expires_in` from receipt.
 */
async function expiredTokenClient (t: Parameters<typeof prefixedApp>[0]) {
  const { baseUrl, skew, answered } = await prefixedApp(t)
  const client = createAuthClient({ baseUrl, authPrefix: '/api/auth' })
  skew.ms = -600_000
  await client.login(alice)
  skew.ms = 0
  const statuses = (route: string) => answered.filter((a) => a.startsWith(route)).map((a) => Number(a.slice(-3)))
  return { client, refreshes: () => statuses('POST /api/auth/refresh '), apiStatuses: () => statuses('GET /api/me ') }
}

t.test('reactive: a 401 AUTH_TOKEN_EXPIRED (the device clock went back) refreshes once and retries once', async (t) => {
  const { client, refreshes, apiStatuses } = await expiredTokenClient(t)
  const res = await client.fetch('/api/me')
  t.equal(res.status, 200)
  t.same(apiStatuses(), [401, 200])
  t.same(refreshes(), [200])
})

t.test('reactive: 20 concurrent calls with an expired token cause one refresh and 20 retries', async (t) => {
  const { client, refreshes, apiStatuses } = await expiredTokenClient(t)
  const statuses = await Promise.all(Array.from({ length: 20 }, () => client.fetch('/api/me').then((r) => r.status)))
  t.same(statuses, Array(20).fill(200))
  t.same(refreshes(), [200], 'exactly one refresh')
  t.equal(apiStatuses().filter((s) => s === 401).length, 20)
})

t.test('a 401 AUTH_TOKEN_STALE after a role change refreshes and retries: the answer has the new roles', async (t) => {
  const { baseUrl, refreshes } = await listeningApp(t)
  const client = createAuthClient({ baseUrl })
  await client.login(alice)
  const admin = await loginElsewhere(baseUrl, 'root')
  const put = await fetch(`${baseUrl}/admin/users/alice/roles`, { method: 'PUT', headers: { authorization: `Bearer ${admin.access_token}`, 'content-type': 'application/json' }, body: JSON.stringify({ roles: ['user', 'beta'] }) })
  t.equal(put.status, 204)
  const res = await client.fetch('/api/me')
  t.equal(res.status, 200)
  t.same((await res.json()).roles, ['user', 'beta'])
  t.same((await client.session())!.claims.roles, ['user', 'beta'])
  t.equal(refreshes.length, 1)
})

t.test('the retry happens once: a second 401 reaches the app', async (t) => {
  const { baseUrl, refreshes } = await listeningApp(t)
  let apiCalls = 0
  const client = createAuthClient({
    baseUrl,
    fetch: async (url, init) => {
      if (String(url).endsWith('/api/me')) {
        apiCalls++
        return Response.json({ statusCode: 401, code: 'AUTH_TOKEN_EXPIRED' }, { status: 401 })
      }
      return await fetch(url, init)
    }
  })
  await client.login(alice)
  const res = await client.fetch('/api/me')
  t.equal(res.status, 401)
  t.equal((await res.json()).code, 'AUTH_TOKEN_EXPIRED', 'the body is still readable')
  t.equal(apiCalls, 2)
  t.equal(refreshes.length, 1)
})

t.test('single flight: 20 concurrent calls past the expiry cause exactly one refresh', async (t) => {
  const { baseUrl, refreshes, apiStatuses } = await listeningApp(t)
  let ahead = 0
  const client = createAuthClient({ baseUrl, now: () => Date.now() + ahead })
  const { expiresAt } = await client.login(alice)
  ahead = expiresAt - Date.now() + 50
  const statuses = await Promise.all(Array.from({ length: 20 }, () => client.fetch('/api/me').then((r) => r.status)))
  t.same(statuses, Array(20).fill(200))
  t.equal(refreshes.length, 1)
  t.notOk(apiStatuses.includes(401))
})

t.test('single flight: 20 calls spread over a real 2-second expiry make one refresh per expiry', async (t) => {
  const { baseUrl, refreshes } = await listeningApp(t, { accessTtl: 2 })
  const client = createAuthClient({ baseUrl })
  await client.login(alice)
  const spread = []
  for (let i = 0; i < 20; i++) {
    spread.push(client.fetch('/api/me').then((r) => r.status))
    await sleep(100)
  }
  t.same(await Promise.all(spread), Array(20).fill(200))
  t.equal(distinct(refreshes), refreshes.length, 'no refresh token presented twice')
  t.ok(refreshes.length >= 1 && refreshes.length <= 2, `one refresh per expiry (${refreshes.length})`)
})

t.test('timer mode refreshes without calls, picks up a stored session, and stops on close', async (t) => {
  const { baseUrl, refreshes } = await listeningApp(t, { accessTtl: 2 })
  const storage = memoryStorage()
  // Counts the refreshes each client sends: one in flight when close() is
  // called lands after it, so the server's count cannot tell "sent after close".
  const refreshesSent = () => {
    const spy = { count: 0, fetch: ((input, init) => {
      if (String(input).endsWith('/auth/refresh')) spy.count++
      return fetch(input, init)
    }) as typeof fetch }
    return spy
  }
  const first = refreshesSent()
  const client = createAuthClient({ baseUrl, storage, autoRefresh: true, fetch: first.fetch })
  await client.login(alice)
  // a 2-second pair is refreshed at most 1.5 s after it was issued
  await sleep(3200)
  t.ok(refreshes.length >= 2, `refreshed on the timer (${refreshes.length})`)
  t.equal(distinct(refreshes), refreshes.length)
  client.close()
  const sentBeforeClose = first.count
  await sleep(2100)
  t.equal(first.count, sentBeforeClose, 'closed: no more refreshes')

  const second = refreshesSent()
  const resumed = createAuthClient({ baseUrl, storage, autoRefresh: true, fetch: second.fetch })
  t.teardown(() => resumed.close())
  await sleep(2100)
  t.ok(second.count > 0, 'a new client picks up the stored session')
  t.equal((await resumed.fetch('/api/me')).status, 200)
})

t.test('timer mode: a timer that finds the session gone, or already refreshed by another client, does nothing', async (t) => {
  const { baseUrl, refreshes } = await listeningApp(t, { accessTtl: 2 })
  const storage = memoryStorage()
  const timed = createAuthClient({ baseUrl, storage, autoRefresh: true, jitterSeconds: 0 })
  t.teardown(() => timed.close())
  const other = createAuthClient({ baseUrl, storage, jitterSeconds: 0 })
  const { refreshAt } = await timed.login(alice)
  // the other client refreshes just before the timer fires: the timer finds a pair not yet due
  await sleep(refreshAt - Date.now() - 300)
  t.equal(await other.refresh(), true)
  await sleep(200)
  t.equal(refreshes.length, 1)
  // the session is forgotten before the next timer
  await storage.remove()
  await sleep(2000)
  t.equal(refreshes.length, 1)
  const failing = createAuthClient({ baseUrl, autoRefresh: true, storage: { get: () => Promise.reject(new Error('locked')), set () {}, remove () {} } })
  failing.close()
})

t.test('a refresh the server cannot answer now (429, 503, offline) keeps the pair', async (t) => {
  const { baseUrl, refreshes } = await listeningApp(t, { accessTtl: 4, refreshRateMax: 1 })
  let offline = false
  let offlineTries = 0
  let skew = 0
  const client = createAuthClient({
    baseUrl,
    now: () => Date.now() + skew,
    fetch: async (url, init) => {
      if (offline && String(url).endsWith('/auth/refresh')) { offlineTries++; throw new TypeError('fetch failed') }
      return await fetch(url, init)
    }
  })
  await client.login(alice)
  t.equal(await client.refresh(), true)
  const pair = await client.getAccessToken()
  t.equal(await client.refresh(), true, 'rate limited: still signed in')
  t.same(refreshes.map((r) => r.status), [200, 429])
  t.equal(await client.getAccessToken(), pair, 'same pair')
  // past the Retry-After (the window is 60 s), on the device clock
  skew = 61_000
  offline = true
  t.equal(await client.refresh(), true, 'offline: still signed in')
  t.equal(offlineTries, 1, 'the refresh was tried')
  t.equal((await client.fetch('/api/me')).status, 200)
})

t.test('a device clock far off the server\'s counts expires_in from receipt', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const late = Date.now() - 3_600_000
  const client = createAuthClient({ baseUrl, now: () => Date.now() - 3_600_000 })
  const { expiresAt } = await client.login(alice)
  t.ok(Math.abs(expiresAt - (late + 299_000)) < 1000, 'expires_in - 1 s after receipt, on the device clock')
  t.equal((await client.fetch('/api/me')).status, 200)
})

t.test('session-ended from a refresh: replaced, revoked, reused, expired', async (t) => {
  t.test('replaced: a login elsewhere under single', async (t) => {
    const { baseUrl } = await listeningApp(t)
    const client = createAuthClient({ baseUrl })
    const ended: string[] = []
    client.on('session-ended', ({ reason, code }) => ended.push(`${reason}:${code}`))
    await client.login(alice)
    await loginElsewhere(baseUrl, 'alice')
    t.equal(await client.refresh(), false)
    t.same(ended, ['replaced:AUTH_SESSION_REPLACED'])
    t.equal(await client.session(), null)
  })
  t.test('revoked: logout-all from another device', async (t) => {
    const { baseUrl } = await listeningApp(t, { sso: 'off' })
    const client = createAuthClient({ baseUrl })
    const ended: string[] = []
    client.on('session-ended', ({ reason }) => ended.push(reason))
    await client.login(alice)
    const other = await loginElsewhere(baseUrl, 'alice')
    t.equal((await fetch(`${baseUrl}/auth/logout-all`, { method: 'POST', headers: { authorization: `Bearer ${other.access_token}` } })).status, 204)
    t.equal(await client.refresh(), false)
    t.same(ended, ['revoked'], 'the server may answer AUTH_REFRESH_INVALID: before the refresh token\'s expiry, that is a revocation')

    // a server that does not say when the refresh token expires
    const terse = createAuthClient({
      baseUrl,
      fetch: async (url, init) => {
        const res = await fetch(url, init)
        if (!String(url).endsWith('/auth/login')) return res
        const { refresh_expires_in: _, ...rest } = await res.json()
        return Response.json(rest)
      }
    })
    terse.on('session-ended', ({ reason }) => ended.push(`terse:${reason}`))
    await terse.login(alice)
    const again = await loginElsewhere(baseUrl, 'alice')
    await fetch(`${baseUrl}/auth/logout-all`, { method: 'POST', headers: { authorization: `Bearer ${again.access_token}` } })
    t.equal(await terse.refresh(), false)
    t.same(ended, ['revoked', 'terse:revoked'])
  })
  t.test('expired: a refresh token unused past its idle timeout', async (t) => {
    const { baseUrl } = await listeningApp(t, { refreshTtl: 1 })
    const client = createAuthClient({ baseUrl })
    const ended: string[] = []
    client.on('session-ended', ({ reason, code }) => ended.push(`${reason}:${code}`))
    await client.login(alice)
    await sleep(1100)
    t.equal(await client.refresh(), false)
    t.same(ended, ['expired:AUTH_REFRESH_INVALID'])
  })
  t.test('reused: a copy of the pair refreshed after the grace window ends the session for both', async (t) => {
    const { baseUrl } = await listeningApp(t, { refreshGrace: 0 })
    const mine = memoryStorage()
    const client = createAuthClient({ baseUrl, storage: mine })
    await client.login(alice)
    const copy = memoryStorage()
    await copy.set((await mine.get())!)
    const thief = createAuthClient({ baseUrl, storage: copy })
    const ended: string[] = []
    client.on('session-ended', ({ reason }) => ended.push(`client:${reason}`))
    thief.on('session-ended', ({ reason }) => ended.push(`thief:${reason}`))
    t.equal(await client.refresh(), true)
    await sleep(1100)
    t.equal(await thief.refresh(), false)
    t.equal((await client.fetch('/api/me')).status, 401)
    t.same(ended, ['thief:reused', 'client:revoked'])
  })
  t.test('expired: the session\'s absolute lifetime', async (t) => {
    const { baseUrl } = await listeningApp(t, { accessTtl: 1, sessionMaxAge: 2 })
    const client = createAuthClient({ baseUrl })
    const ended: string[] = []
    client.on('session-ended', ({ reason }) => ended.push(reason))
    await client.login(alice)
    await sleep(2100)
    const res = await client.fetch('/api/me')
    t.equal(res.status, 401)
    t.same(ended, ['expired'])
    t.equal(await client.session(), null)
  })
})

t.test('listeners: unsubscribe, and a throwing listener is reported without breaking the others', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const client = createAuthClient({ baseUrl })
  const seen: string[] = []
  const off = client.on('login', () => seen.push('removed'))
  off()
  client.on('login', () => { throw new Error('listener bug') })
  client.on('login', () => seen.push('second'))
  const errors: unknown[] = []
  const original = console.error
  console.error = (err: unknown) => { errors.push(err) }
  t.teardown(() => { console.error = original })
  await client.login(alice)
  t.same(seen, ['second'])
  t.match(errors, [{ message: 'listener bug' }], 'console.error in Node')
  const g = globalThis as { reportError?: (e: unknown) => void }
  g.reportError = (err) => { errors.push(['reported', err]) }
  t.teardown(() => { delete g.reportError })
  await client.login(alice)
  t.match(errors[1], ['reported', { message: 'listener bug' }], 'reportError where the platform has it')
})
