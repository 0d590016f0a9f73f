import t from 'tap'
import { createAuthClient, defaultStorageKey, localStorageAdapter, memoryStorage } from '../client/index.js'
import type { StoredTokens, TokenStorage, WebStorageLike } from '../client/index.js'
import { listeningApp } from './helpers/client.js'

const pair: StoredTokens = { access_token: 'a.b.c', refresh_token: 'r', session_id: 's', expires_at: 2, obtained_at: 1 }

function fakeWebStorage (): WebStorageLike & { data: Map<string, string> } {
  const data = new Map<string, string>()
  return {
    data,
    getItem: (key) => data.get(key) ?? null,
    setItem: (key, value) => { data.set(key, value) },
    removeItem: (key) => { data.delete(key) }
  }
}

t.test('memoryStorage keeps one pair', async (t) => {
  const s = memoryStorage()
  t.equal(await s.get(), null)
  await s.set(pair)
  t.same(await s.get(), pair)
  await s.remove()
  t.equal(await s.get(), null)
})

t.test('localStorageAdapter keeps the pair as JSON under its key, and reads junk as no pair', async (t) => {
  const web = fakeWebStorage()
  const s = localStorageAdapter('my-app', web)
  t.equal(s.get(), null)
  s.set(pair)
  t.same(JSON.parse(web.data.get('my-app')!), pair)
  t.same(s.get(), pair)
  web.data.set('my-app', '{not json')
  t.equal(s.get(), null)
  for (const junk of ['null', '42', JSON.stringify({ ...pair, expires_at: 'soon' }), JSON.stringify({ ...pair, access_token: undefined }), JSON.stringify({ ...pair, refresh_expires_at: '1' })]) {
    web.data.set('my-app', junk)
    t.equal(s.get(), null, junk)
  }
  web.data.set('my-app', JSON.stringify({ ...pair, refresh_expires_at: 3 }))
  t.same(s.get(), { ...pair, refresh_expires_at: 3 })
  s.remove()
  t.equal(web.data.size, 0)
})

t.test('localStorageAdapter uses globalThis.localStorage by default, looked up at each use', async (t) => {
  const s = localStorageAdapter()
  t.throws(() => s.get(), /no localStorage here; pass a storage/)
  const web = fakeWebStorage()
  const g = globalThis as { localStorage?: WebStorageLike }
  g.localStorage = web
  t.teardown(() => { delete g.localStorage })
  s.set(pair)
  t.ok(web.data.has('fastify-jwt-sessions'))
})

t.test('localStorageAdapter() keeps each API\'s pair under a key of its own; the page\'s own origin keeps the old key', async (t) => {
  const [one, two] = [await listeningApp(t), await listeningApp(t)]
  const web = fakeWebStorage()
  // One adapter given to clients of two APIs, as `storage: localStorageAdapter()` in each does.
  const shared = localStorageAdapter(undefined, web)
  const a = createAuthClient({ baseUrl: one.baseUrl, storage: shared })
  const b = createAuthClient({ baseUrl: `${two.baseUrl}/`, storage: localStorageAdapter(undefined, web) })
  const c = createAuthClient({ baseUrl: two.baseUrl, storage: shared })
  const session = await a.login({ username: 'alice', password: 'alice-pass' })
  t.equal(await b.session(), null, 'the other API\'s client is not signed in by it')
  t.equal((await b.fetch('/api/me')).status, 401, 'and sends no token of another server')
  const other = await b.login({ username: 'bob', password: 'bob-pass' })
  t.equal((await a.session())?.sessionId, session.sessionId, 'each keeps its own')
  t.equal((await c.session())?.sessionId, other.sessionId, 'clients of one API share, trailing slash or not')
  t.same([...web.data.keys()].sort(), [defaultStorageKey(one.baseUrl), defaultStorageKey(two.baseUrl)].sort())
  t.equal(defaultStorageKey(one.baseUrl), `fastify-jwt-sessions:${one.baseUrl}`)

  // baseUrl '': a pair stored before there was one key per API is still found.
  web.data.set('fastify-jwt-sessions', JSON.stringify(pair))
  const sameOrigin = createAuthClient({ baseUrl: '', storage: localStorageAdapter(undefined, web) })
  t.equal((await sameOrigin.session())?.sessionId, 's')
  t.equal(defaultStorageKey(''), 'fastify-jwt-sessions')
  t.same(shared.get(), pair, 'the adapter used directly reads the \'\' key')
  t.equal(localStorageAdapter('explicit', web).forBaseUrl, undefined, 'an explicit key is the key, whatever the API')
})

t.test('an async storage of the app\'s own works the same', async (t) => {
  const { baseUrl, refreshes } = await listeningApp(t, { accessTtl: 2 })
  const calls: string[] = []
  let value: StoredTokens | null = null
  const tick = () => new Promise((resolve) => setTimeout(resolve, 1))
  const storage: TokenStorage = {
    async get () { await tick(); calls.push('get'); return value },
    async set (v) { await tick(); calls.push('set'); value = v },
    async remove () { await tick(); calls.push('remove'); value = null }
  }
  const client = createAuthClient({ baseUrl, storage })
  await client.login({ username: 'alice', password: 'alice-pass' })
  t.equal((await client.fetch('/api/me')).status, 200)
  await new Promise((resolve) => setTimeout(resolve, 2100))
  t.equal((await client.fetch('/api/me')).status, 200, 'refreshed through the async storage')
  t.equal(refreshes.length, 1)
  await client.logout()
  t.equal(value, null)
  t.ok(calls.includes('set') && calls.includes('remove'))
})

t.test('a client shares its session with every client of the same storage', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const web = fakeWebStorage()
  const a = createAuthClient({ baseUrl, storage: localStorageAdapter('k', web) })
  const b = createAuthClient({ baseUrl, storage: localStorageAdapter('k', web) })
  await a.login({ username: 'bob', password: 'bob-pass' })
  t.same(await (await b.fetch('/api/me')).json(), { user_id: 'bob', session_id: (await a.session())!.sessionId, roles: ['user'] })
})
