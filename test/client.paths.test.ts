import t from 'tap'
import { AuthClientError, createAuthClient, memoryStorage } from '../client/index.js'
import type { ListedSession } from '../client/index.js'
import { prefixedApp } from './helpers/client-prefixed.js'

const alice = { username: 'alice', password: 'alice-pass' }
const TEN_MINUTES = 600_000

t.test('a host app with the routes under /api/auth: login, a call, a refresh before expiry, the session list, logout', async (t) => {
  const { baseUrl, answered } = await prefixedApp(t)
  // The device clock runs ahead on demand: no waiting for a real expiry.
  let ahead = 0
  const client = createAuthClient({ baseUrl, authPrefix: '/api/auth', jitterSeconds: 0, now: () => Date.now() + ahead })
  const first = await client.login({ ...alice, device_id: 'd1', device_type: 'web' })
  t.equal((await client.fetch('/api/me')).status, 200)
  t.same(answered, ['POST /api/auth/login 200', 'GET /api/me 200'])

  ahead = first.refreshAt - Date.now() + 1
  answered.length = 0
  t.equal((await client.fetch('/api/me')).status, 200)
  t.same(answered, ['POST /api/auth/refresh 200', 'GET /api/me 200'], 'refreshed first, at the prefixed route')
  t.equal((await client.session())!.sessionId, first.sessionId, 'same session')

  answered.length = 0
  const listed: ListedSession[] = await client.listSessions()
  const raw = await (await client.fetch('/api/auth/sessions')).json()
  t.same(listed, raw.sessions, 'exactly what the server sent')
  t.match(listed, [{ session_id: first.sessionId, device_id: 'd1', device_type: 'web', device_name: null, current: true }])
  for (const time of [listed[0]!.created_at, listed[0]!.last_seen_at]) t.equal(new Date(time).toISOString(), time, 'ISO 8601 strings')
  t.same(answered, ['GET /api/auth/sessions 200', 'GET /api/auth/sessions 200'])

  const token = await client.getAccessToken()
  answered.length = 0
  await client.logout()
  t.same(answered, ['POST /api/auth/logout 204'])
  t.equal(await client.session(), null)
  const after = await fetch(`${baseUrl}/api/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal((await after.json()).code, 'AUTH_SESSION_REVOKED', 'the server ended it')
})

t.test('under /api/auth, a 401 AUTH_TOKEN_EXPIRED refreshes at the prefixed route and retries once', async (t) => {
  const { baseUrl, skew, answered } = await prefixedApp(t)
  const client = createAuthClient({ baseUrl, authPrefix: '/api/auth/' })
  // A server clock ten minutes behind signs a pair whose `exp` has passed;
  // the device, whose clock disagrees, counts `expires_in` from receipt.
  skew.ms = -TEN_MINUTES
  await client.login(alice)
  skew.ms = 0
  answered.length = 0
  t.equal((await client.fetch('/api/me')).status, 200)
  t.same(answered, ['GET /api/me 401', 'POST /api/auth/refresh 200', 'GET /api/me 200'])
})

t.test('logoutAll ends every session of the user at the prefixed route; a refusal keeps the pair', async (t) => {
  const { baseUrl, answered } = await prefixedApp(t)
  const here = createAuthClient({ baseUrl, authPrefix: '/api/auth' })
  const phone = createAuthClient({ baseUrl, authPrefix: '/api/auth' })
  const events: string[] = []
  here.on('logout', ({ source }) => events.push(`here:logout:${source}`))
  phone.on('session-ended', ({ reason }) => events.push(`phone:ended:${reason}`))
  await here.login(alice)
  await phone.login(alice)
  answered.length = 0
  await here.logoutAll()
  t.same(answered, ['POST /api/auth/logout-all 204'])
  t.equal(await here.session(), null)
  t.equal((await phone.fetch('/api/me')).status, 401)
  t.same(events, ['here:logout:local', 'phone:ended:revoked'])

  await t.rejects(here.logoutAll(), new AuthClientError('Logout of every session failed (401 AUTH_TOKEN_MISSING)', 401, 'AUTH_TOKEN_MISSING'), 'signed out: the server refuses')
  const storage = memoryStorage()
  const down = createAuthClient({ baseUrl, authPrefix: '/api/auth', storage, fetch: async (url, init) => String(url).endsWith('/logout-all') ? new Response('<h1>503</h1>', { status: 503 }) : await fetch(url, init) })
  await down.login({ username: 'bob', password: 'bob-pass' })
  await t.rejects(down.logoutAll(), { name: 'AuthClientError', status: 503, code: null })
  t.ok(await storage.get(), 'not confirmed: the pair is kept, the app may try again')
})

t.test('paths one by one: a refresh route of its own beside the other routes under the prefix', async (t) => {
  const { baseUrl, answered } = await prefixedApp(t, '/token/refresh')
  const client = createAuthClient({ baseUrl, authPrefix: '/api/auth', paths: { refresh: '/token/refresh' } })
  await client.login(alice)
  t.equal(await client.refresh(), true)
  t.equal((await client.fetch('/api/me')).status, 200)
  t.same(answered, ['POST /api/auth/login 200', 'POST /token/refresh 200', 'GET /api/me 200'])
})

t.test('the routes a client asks by default, and with an authPrefix', async (t) => {
  const urls: string[] = []
  const answer = { access_token: 'opaque', expires_in: 60, refresh_token: 'r', session_id: 's' }
  const recording = (extra: object) => createAuthClient({
    baseUrl: 'http://app.invalid',
    ...extra,
    fetch: async (url) => {
      urls.push(String(url))
      return String(url).endsWith('sessions') ? Response.json({ sessions: [] }) : Response.json(answer)
    }
  })
  for (const extra of [{}, { authPrefix: '' }, { authPrefix: '/v2/auth//' }, { paths: { login: 'http://app.invalid/sign-in', sessions: 'my/sessions' } }]) {
    const client = recording(extra)
    await client.login(alice)
    await client.refresh()
    await client.listSessions()
    await client.logoutAll()
  }
  t.same(urls.map((u) => u.slice('http://app.invalid'.length)), [
    '/auth/login', '/auth/refresh', '/auth/sessions', '/auth/logout-all',
    '/login', '/refresh', '/sessions', '/logout-all',
    '/v2/auth/login', '/v2/auth/refresh', '/v2/auth/sessions', '/v2/auth/logout-all',
    '/sign-in', '/auth/refresh', '/my/sessions', '/auth/logout-all'
  ])
})

t.test('authPrefix and paths are checked at creation', async (t) => {
  t.throws(() => createAuthClient({ baseUrl: '', authPrefix: 5 as never }), /authPrefix must be a string/)
  t.throws(() => createAuthClient({ baseUrl: '', paths: '/auth' as never }), /paths must be an object/)
  t.throws(() => createAuthClient({ baseUrl: '', paths: null as never }), /paths must be an object/)
  t.throws(() => createAuthClient({ baseUrl: '', paths: { login: '' } }), /paths.login must be a non-empty string/)
  t.throws(() => createAuthClient({ baseUrl: '', paths: { logout: 42 as never } }), /paths.logout must be a non-empty string/)
  t.throws(() => createAuthClient({ baseUrl: 'https://api.example', paths: { refresh: 'https://evil.example/refresh' } }), /paths.refresh is not on the API's origin/, 'a refresh token never goes to another origin')
  t.throws(() => createAuthClient({ baseUrl: '', authPrefix: '//evil.example/auth' }), /paths.login is not on the API's origin/, 'a prefix a browser reads as another host')
})

t.test('listSessions: a refusal or an answer without a list throws an AuthClientError', async (t) => {
  const { baseUrl } = await prefixedApp(t)
  const signedOut = createAuthClient({ baseUrl, authPrefix: '/api/auth' })
  await t.rejects(signedOut.listSessions(), new AuthClientError('Listing sessions failed (401 AUTH_TOKEN_MISSING)', 401, 'AUTH_TOKEN_MISSING'))
  for (const body of ['<h1>hello</h1>', '{}', 'null', '{"sessions":{}}']) {
    const odd = createAuthClient({ baseUrl, fetch: async () => new Response(body, { status: 200 }) })
    await t.rejects(odd.listSessions(), new AuthClientError('The server answered without a session list', 200, null), body)
  }
})
