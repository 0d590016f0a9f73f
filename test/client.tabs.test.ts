import { randomBytes } from 'node:crypto'
import t from 'tap'
import { createAuthClient, localStorageAdapter, memoryStorage } from '../client/index.js'
import type { AuthClientOptions, StoredTokens, WebStorageLike } from '../client/index.js'
import { fakeLocks, listeningApp, loginElsewhere, sleep, waitFor } from './helpers/client.js'

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

/** A fetch that holds the first request to `path` until released, so other tabs act while it is out. */
function holdFirstCall (path: string) {
  let release!: () => void
  const hold = new Promise<void>((resolve) => { release = resolve })
  const held = {
    leaving: false,
    release: () => release(),
    fetch: async (url: string | URL | Request, init?: RequestInit) => {
      if (!held.leaving && String(url).endsWith(path)) {
        held.leaving = true
        await hold
      }
      return await fetch(url, init)
    }
  }
  return held
}

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
  const held = holdFirstCall('/api/me')
  const slow = createAuthClient({ baseUrl, storage: localStorageAdapter('k', web), fetch: held.fetch })
  const pending = slow.fetch('/api/me')
  await waitFor(() => held.leaving, 'the call to leave')
  await b.login(alice)
  held.release()
  t.equal((await pending).status, 200)
  t.same(apiStatuses, [401, 200])
  t.same(ended, [])
  t.equal((await a.fetch('/api/me')).status, 200)
})

t.test('the retry with another tab\'s pair may find the session ended: announced then', async (t) => {
  const { baseUrl, apiStatuses } = await listeningApp(t)
  const web = sharedWebStorage()
  const [b] = tabs(baseUrl, 1, () => ({ storage: localStorageAdapter('k', web) }), t)
  const held = holdFirstCall('/api/me')
  const slow = createAuthClient({ baseUrl, storage: localStorageAdapter('k', web), fetch: held.fetch })
  const ended: string[] = []
  slow.on('session-ended', ({ reason }) => ended.push(reason))
  await b.login(alice)
  // slow's call leaves with the first pair; b refreshes, then a login elsewhere replaces the session
  const pending = slow.fetch('/api/me')
  await waitFor(() => held.leaving, 'the call to leave')
  await b.refresh()
  await loginElsewhere(baseUrl, 'alice')
  held.release()
  const res = await pending
  t.equal(res.status, 401)
  t.equal((await res.json()).code, 'AUTH_SESSION_REPLACED')
  t.same(apiStatuses, [401, 401], 'retried once with the newer pair')
  t.same(ended, ['replaced'])
  t.equal(await slow.session(), null)
})

t.test('a malformed message on the channel is ignored: the tab keeps its session and hears no event', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const theirs = memoryStorage()
  const clients = tabs(baseUrl, 2, (i) => ({ storage: i === 1 ? theirs : memoryStorage() }), t)
  const [a, b] = clients
  const heard: string[] = []
  for (const event of ['login', 'refresh', 'logout', 'session-ended'] as const) b.on(event, () => heard.push(event))
  const { sessionId } = await a.login(alice)
  await waitFor(() => heard.length === 1, 'b to hear of the login')
  const token = await b.getAccessToken()
  const good: StoredTokens = { access_token: 'x', refresh_token: 'y', session_id: sessionId, expires_at: 1, obtained_at: 1 }
  const junk: unknown[] = [
    null, 'logout', 42, [], {},
    { type: 'revoke-everything', sessionId },
    { type: 'logout' }, { type: 'logout', sessionId: 7 },
    { type: 'ended', sessionId, reason: 'bored', code: 'AUTH_SESSION_REVOKED' },
    { type: 'ended', sessionId, reason: 'revoked', code: 401 },
    { type: 'ended', sessionId: null, reason: 'revoked', code: 'AUTH_SESSION_REVOKED' },
    { type: 'tokens', kind: 'login' },
    { type: 'tokens', kind: 'steal', tokens: { ...good, obtained_at: Date.now() + 1000 } },
    { type: 'tokens', kind: 'refresh', tokens: { ...good, obtained_at: 'later' } },
    { type: 'backoff', sessionId, until: 'never' },
    { type: 'backoff', sessionId, until: Number.POSITIVE_INFINITY },
    { type: 'backoff', sessionId: 1, until: 1 }
  ]
  const raw = new BroadcastChannel(clients.channelName)
  t.teardown(() => raw.close())
  for (const message of junk) raw.postMessage(message)
  // A good message after the junk (the pair b holds: no change but an event) shows b went through it all and still listens.
  raw.postMessage({ type: 'tokens', kind: 'refresh', tokens: await theirs.get() })
  await waitFor(() => heard.includes('refresh'), 'b to hear the good message')
  t.same(heard, ['login', 'refresh'], 'no event from the junk')
  t.equal(await b.getAccessToken(), token, 'the pair is kept')
  t.equal((await b.session())?.sessionId, sessionId)
  t.equal((await b.fetch('/api/me')).status, 200)
})
