import t from 'tap'
import { createAuthClient, localStorageAdapter, memoryStorage } from '../client/index.js'
import type { StoredTokens, WebStorageLike } from '../client/index.js'
import { fakeLocks, listeningApp, sleep } from './helpers/client.js'

const alice = { username: 'alice', password: 'alice-pass' }
const expired = () => Response.json({ statusCode: 401, code: 'AUTH_TOKEN_EXPIRED' }, { status: 401 })

t.test('navigator.locks is used when present and no locks option is given', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const locks = fakeLocks()
  Object.defineProperty(globalThis, 'navigator', { value: { locks }, configurable: true, writable: true })
  t.teardown(() => { delete (globalThis as { navigator?: unknown }).navigator })
  const client = createAuthClient({ baseUrl })
  await client.login(alice)
  t.equal(await client.refresh(), true)
  t.equal(locks.granted, 1)
  const without = createAuthClient({ baseUrl, locks: null })
  await without.login(alice)
  t.equal(await without.refresh(), true)
  t.equal(locks.granted, 1, 'locks: null opts out')
})

t.test('a server whose access token is not a JWT: expiry from expires_in, no claims', async (t) => {
  const answer = { access_token: 'opaque', token_type: 'Bearer', expires_in: 60, refresh_token: 'r', session_id: 's' }
  const client = createAuthClient({ baseUrl: 'http://app.invalid', fetch: async () => Response.json(answer) })
  const before = Date.now()
  const session = await client.login(alice)
  t.ok(session.expiresAt >= before + 59_000 && session.expiresAt <= Date.now() + 59_000)
  t.same(session.claims, {})
  t.equal(session.userId, undefined)
})

t.test('a 401 whose body is JSON null reaches the app', async (t) => {
  const storage = memoryStorage()
  await storage.set({ access_token: 'a', refresh_token: 'r', session_id: 's', expires_at: Date.now() + 60_000, obtained_at: Date.now() })
  const client = createAuthClient({ baseUrl: 'http://app.invalid', storage, fetch: async () => new Response('null', { status: 401, headers: { 'content-type': 'application/json' } }) })
  t.equal((await client.fetch('/x')).status, 401)
  t.ok(await storage.get(), 'pair kept')
})

t.test('a refresh answered by a proxy\'s error page keeps the pair', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const client = createAuthClient({ baseUrl, fetch: async (url, init) => String(url).endsWith('/auth/refresh') ? new Response('<h1>502</h1>', { status: 502 }) : await fetch(url, init) })
  await client.login(alice)
  const token = await client.getAccessToken()
  t.equal(await client.refresh(), true)
  t.equal(await client.getAccessToken(), token)
})

t.test('signed out in another tab while a call was out: no refresh, the 401 reaches the app', async (t) => {
  const storage = memoryStorage()
  await storage.set({ access_token: 'a', refresh_token: 'r', session_id: 's', expires_at: Date.now() + 60_000, obtained_at: Date.now() })
  let refreshed = 0
  const client = createAuthClient({
    baseUrl: 'http://app.invalid',
    storage,
    fetch: async (url) => {
      if (String(url).endsWith('/auth/refresh')) refreshed++
      await storage.remove()
      return expired()
    }
  })
  t.equal((await client.fetch('/x')).status, 401)
  t.equal(refreshed, 0)
})

t.test('a session replaced by a login in another tab while this tab refreshed: the new session is kept, nothing announced', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const data = new Map<string, string>()
  const web: WebStorageLike = { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => { data.set(k, v) }, removeItem: (k) => { data.delete(k) } }
  let hold: Promise<void> = Promise.resolve()
  const slow = createAuthClient({ baseUrl, storage: localStorageAdapter('k', web), fetch: async (url, init) => { if (String(url).endsWith('/auth/refresh')) await hold; return await fetch(url, init) } })
  const other = createAuthClient({ baseUrl, storage: localStorageAdapter('k', web) })
  const ended: string[] = []
  slow.on('session-ended', ({ reason }) => ended.push(reason))
  await slow.login(alice)
  let release!: () => void
  hold = new Promise((resolve) => { release = resolve })
  const refreshing = slow.refresh()
  await sleep(20)
  const fresh = await other.login(alice)
  release()
  t.equal(await refreshing, false, 'this refresh failed (replaced)')
  t.same(ended, [], 'but the session in storage is a new one: not announced')
  t.equal((await slow.session())?.sessionId, fresh.sessionId)
  t.equal((await slow.fetch('/api/me')).status, 200)
})

t.test('stored pairs survive a JSON round trip', async (t) => {
  const s = memoryStorage()
  const p: StoredTokens = { access_token: 'a', refresh_token: 'r', session_id: 's', expires_at: 1, obtained_at: 0, refresh_expires_at: 2 }
  await s.set(JSON.parse(JSON.stringify(p)))
  t.same(await s.get(), p)
})

/** A timer-mode client on a fake server whose 2-second pairs never change; counts refresh calls. */
async function timerClient (t: { teardown: (fn: () => void) => void }) {
  const storage = memoryStorage()
  let calls = 0
  const client = createAuthClient({
    baseUrl: 'http://app.invalid',
    storage,
    autoRefresh: true,
    jitterSeconds: 0,
    fetch: async (url) => {
      if (String(url).endsWith('/auth/refresh')) calls++
      return Response.json({ access_token: 'opaque', expires_in: 2, refresh_token: 'r1', session_id: 's' })
    }
  })
  t.teardown(() => client.close())
  const { refreshAt } = await client.login(alice)
  return { storage, client, refreshAt, refreshCalls: () => calls }
}

t.test('timer mode: a timer that finds a newer pair not yet due waits for that one', async (t) => {
  const { storage, client, refreshAt, refreshCalls } = await timerClient(t)
  // another client refreshed meanwhile (its pair lives a minute)
  await storage.set({ access_token: 'newer', refresh_token: 'r2', session_id: 's', expires_at: Date.now() + 60_000, obtained_at: Date.now() })
  await sleep(refreshAt - Date.now() + 100)
  t.equal(refreshCalls(), 0, 'the timer did not refresh')
  t.equal(await client.getAccessToken(), 'newer')
})

t.test('timer mode: a timer that finds the session gone does nothing', async (t) => {
  const { storage, refreshAt, refreshCalls } = await timerClient(t)
  await storage.remove()
  await sleep(refreshAt - Date.now() + 100)
  t.equal(refreshCalls(), 0)
})

t.test('a 401 whose code is the name of an Object.prototype member is no end of the session', async (t) => {
  const storage = memoryStorage()
  await storage.set({ access_token: 'a', refresh_token: 'r', session_id: 's', expires_at: Date.now() + 60_000, obtained_at: Date.now() })
  const client = createAuthClient({ baseUrl: 'http://app.invalid', storage, fetch: async () => Response.json({ statusCode: 401, code: 'constructor' }, { status: 401 }) })
  const ended: unknown[] = []
  client.on('session-ended', (event) => ended.push(event))
  t.equal((await client.fetch('/x')).status, 401, 'the answer reaches the app')
  t.equal(await client.refresh(), true, 'a refresh refused with such a code keeps the pair too')
  t.same(ended, [], 'no session-ended')
  t.ok(await storage.get(), 'pair kept')
})
