import { randomBytes } from 'node:crypto'
import t from 'tap'
import { createAuthClient, localStorageAdapter, memoryStorage } from '../client/index.js'
import type { AuthClientOptions, StoredTokens, WebStorageLike } from '../client/index.js'
import { fakeLocks, listeningApp, loginElsewhere, sleep } from './helpers/client.js'

// "Tabs" in one Node process: clients on one channel name (Node has
// BroadcastChannel), one lock manager, and a shared or per-tab storage.
// The browser test proves the same with Chromium's own Web Locks and channels.

function sharedWebStorage (): WebStorageLike {
  const data = new Map<string, string>()
  return { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => { data.set(k, v) }, removeItem: (k) => { data.delete(k) } }
}

function tabs (baseUrl: string, n: number, perTab: (i: number) => Partial<AuthClientOptions>, t: { teardown: (fn: () => void) => void }) {
  const name = `tabs-${randomBytes(4).toString('hex')}`
  const clients = Array.from({ length: n }, (_, i) => createAuthClient({ baseUrl, name, broadcast: true, ...perTab(i) }))
  t.teardown(() => { for (const c of clients) c.close() })
  return Object.assign(clients, { channelName: name })
}

const alice = { username: 'alice', password: 'alice-pass' }

t.test('two tabs sharing localStorage and a lock: 20 calls each across an expiry cause one refresh', async (t) => {
  const { baseUrl, refreshes, apiStatuses } = await listeningApp(t, { accessTtl: 2 })
  const web = sharedWebStorage()
  const locks = fakeLocks()
  const [a, b] = tabs(baseUrl, 2, () => ({ storage: localStorageAdapter('demo', web), locks }), t)
  const events: string[] = []
  a.on('refresh', ({ source }) => events.push(`a:${source}`))
  b.on('refresh', ({ source }) => events.push(`b:${source}`))
  b.on('login', ({ source }) => events.push(`b:login:${source}`))
  const { expiresAt } = await a.login(alice)
  await sleep(expiresAt - Date.now() + 50)
  const statuses = await Promise.all([a, b].flatMap((c) => Array.from({ length: 20 }, () => c.fetch('/api/me').then((r) => r.status))))
  t.same(statuses, Array(40).fill(200))
  t.equal(refreshes.length, 1, 'one refresh for both tabs')
  t.notOk(apiStatuses.includes(401))
  t.ok(locks.granted >= 2, 'both tabs took the lock; the second found the new pair')
  await sleep(50)
  const refreshEvents = events.filter((e) => !e.includes('login')).map((e) => e.slice(2)).sort()
  t.same(refreshEvents, ['local', 'other-tab'], 'one tab refreshed, the other heard of it')
  t.ok(events.includes('b:login:other-tab'))
})

t.test('tabs with their own memory learn logins, refreshes, ends and logouts over the channel', async (t) => {
  const { baseUrl, refreshes } = await listeningApp(t)
  const [a, b] = tabs(baseUrl, 2, () => ({ storage: memoryStorage() }), t)
  const heard: string[] = []
  b.on('login', ({ source }) => heard.push(`login:${source}`))
  b.on('refresh', ({ source }) => heard.push(`refresh:${source}`))
  b.on('session-ended', ({ reason }) => heard.push(`ended:${reason}`))
  b.on('logout', ({ source }) => heard.push(`logout:${source}`))
  const session = await a.login(alice)
  await sleep(50)
  t.equal((await b.session())?.sessionId, session.sessionId, 'b has the pair')
  t.equal((await b.fetch('/api/me')).status, 200)
  await a.refresh()
  await sleep(50)
  t.equal(await b.getAccessToken(), await a.getAccessToken(), 'b has the new pair')
  t.equal(refreshes.length, 1)

  await a.logout()
  await sleep(50)
  t.equal(await b.session(), null, 'signed out in every tab')

  await b.login(alice)
  await sleep(50)
  const elsewhere = await fetch(`${baseUrl}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alice) })
  t.equal(elsewhere.status, 200)
  t.equal((await a.fetch('/api/me')).status, 401)
  await sleep(50)
  t.same(heard, ['login:other-tab', 'refresh:other-tab', 'logout:other-tab', 'login:local', 'ended:replaced'])
  t.equal(await b.session(), null)
  // b's own call to the ended session does not announce it twice
  t.equal((await b.fetch('/api/me')).status, 401)
  t.equal(heard.filter((h) => h.startsWith('ended')).length, 1)
})

t.test('a tab ignores a pair older than its own, and an end it already announced', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const clients = tabs(baseUrl, 2, () => ({ storage: memoryStorage() }), t)
  const [a, b] = clients
  const refreshed: string[] = []
  b.on('refresh', ({ source }) => refreshed.push(source))
  await a.login(alice)
  await sleep(50)
  const current = (await b.getAccessToken())!
  const raw = new BroadcastChannel(clients.channelName)
  const old: StoredTokens = { access_token: 'old', refresh_token: 'old', session_id: 'old', expires_at: 1, obtained_at: 1 }
  raw.postMessage({ type: 'tokens', kind: 'refresh', tokens: old })
  await sleep(50)
  raw.close()
  t.equal(await b.getAccessToken(), current, 'kept its newer pair')
  t.same(refreshed, [], 'and heard of no refresh')

  const ended: string[] = []
  b.on('session-ended', ({ reason }) => ended.push(reason))
  await fetch(`${baseUrl}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alice) })
  await Promise.all([a.fetch('/api/me'), b.fetch('/api/me')])
  await sleep(50)
  t.same(ended, ['replaced'], 'once, whichever tab saw it first')

  // The same end heard twice from other tabs (deterministically, not by a race): announced once.
  const again = new BroadcastChannel(clients.channelName)
  for (let i = 0; i < 2; i++) again.postMessage({ type: 'ended', sessionId: 'gone-elsewhere', reason: 'revoked', code: 'AUTH_SESSION_REVOKED' })
  await sleep(50)
  again.close()
  t.same(ended, ['replaced', 'revoked'], 'a second message about an end already announced is ignored')
})

t.test('a 401 after another tab signed in again is retried with the new pair, not announced', async (t) => {
  const { baseUrl, apiStatuses } = await listeningApp(t)
  const web = sharedWebStorage()
  const [a, b] = tabs(baseUrl, 2, () => ({ storage: localStorageAdapter('k', web), locks: fakeLocks() }), t)
  const ended: string[] = []
  a.on('session-ended', ({ reason }) => ended.push(reason))
  await a.login(alice)
  // a's call leaves with the old pair while b signs in again (replacing it)
  const slow = createAuthClient({ baseUrl, storage: localStorageAdapter('k', web), fetch: async (url, init) => { await sleep(100); return await fetch(url, init) } })
  const pending = slow.fetch('/api/me')
  await sleep(20)
  await b.login(alice)
  t.equal((await pending).status, 200)
  t.same(apiStatuses, [401, 200])
  t.same(ended, [])
  t.equal((await a.fetch('/api/me')).status, 200)
})

t.test('the retry with another tab\'s pair may find the session ended: announced then', async (t) => {
  const { baseUrl, apiStatuses } = await listeningApp(t)
  const web = sharedWebStorage()
  const [b] = tabs(baseUrl, 1, () => ({ storage: localStorageAdapter('k', web) }), t)
  const slow = createAuthClient({ baseUrl, storage: localStorageAdapter('k', web), fetch: async (url, init) => { if (String(url).endsWith('/api/me')) await sleep(100); return await fetch(url, init) } })
  const ended: string[] = []
  slow.on('session-ended', ({ reason }) => ended.push(reason))
  await b.login(alice)
  // slow's call leaves with the first pair; b refreshes, then a login elsewhere replaces the session
  const pending = slow.fetch('/api/me')
  await sleep(20)
  await b.refresh()
  await loginElsewhere(baseUrl, 'alice')
  const res = await pending
  t.equal(res.status, 401)
  t.equal((await res.json()).code, 'AUTH_SESSION_REPLACED')
  t.same(apiStatuses, [401, 401], 'retried once with the newer pair')
  t.same(ended, ['replaced'])
  t.equal(await slow.session(), null)
})
