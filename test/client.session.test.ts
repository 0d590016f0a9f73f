import t from 'tap'
import { AuthClientError, createAuthClient, decodeJwtPayload, memoryStorage } from '../client/index.js'
import { listeningApp, loginElsewhere } from './helpers/client.js'

t.test('login stores a pair, fetch sends it as a Bearer token, and answers a standard Response', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const storage = memoryStorage()
  const client = createAuthClient({ baseUrl: `${baseUrl}/`, storage })
  t.teardown(() => client.close())
  t.equal(await client.session(), null, 'signed out at first')
  t.equal(await client.getAccessToken(), null)
  t.equal(await client.refresh(), false, 'nothing to refresh when signed out')
  const unauthenticated = await client.fetch('/api/me')
  t.equal(unauthenticated.status, 401, 'signed out: the request goes without a token')
  t.equal((await unauthenticated.json()).code, 'AUTH_TOKEN_MISSING')

  const logins: string[] = []
  client.on('login', ({ sessionId, source }) => logins.push(`${source}:${sessionId}`))
  const session = await client.login({ username: 'alice', password: 'alice-pass', device_id: 'd1', device_type: 'script', device_name: 'tap' })
  t.equal(session.userId, 'alice')
  t.same(session.claims.roles, ['user'])
  t.same(logins, [`local:${session.sessionId}`])
  t.ok(session.expiresAt > Date.now() + 290_000 && session.expiresAt <= Date.now() + 300_000, 'expiry from exp (clocks agree)')
  t.ok(session.refreshAt <= session.expiresAt - 30_000 && session.refreshAt >= session.expiresAt - 35_000, '30 s before, plus up to 5 s of jitter')
  t.same(await client.session(), session, 'the same jitter for one pair')

  const res = await client.fetch('api/me', { headers: { accept: 'application/json' } })
  t.ok(res instanceof Response)
  t.same(await res.json(), { user_id: 'alice', session_id: session.sessionId, roles: ['user'] })
  const stored = await storage.get()
  t.equal(await client.getAccessToken(), stored!.access_token)
  t.equal(decodeJwtPayload(stored!.access_token)!.sid, session.sessionId)

  const list = await (await client.fetch('/auth/sessions')).json()
  t.match(list.sessions, [{ session_id: session.sessionId, device_id: 'd1', device_type: 'script', device_name: 'tap', current: true }])
  t.same(await client.listSessions(), list.sessions, 'listSessions answers the list as the server sent it')
})

t.test('a token never goes to another server; absolute URLs under baseUrl get it', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const seen: Array<string | null> = []
  const client = createAuthClient({
    baseUrl,
    fetch: async (url, init) => {
      seen.push(new Headers(init?.headers).get('authorization'))
      return await fetch(url, init)
    }
  })
  t.teardown(() => client.close())
  await client.login({ username: 'alice', password: 'alice-pass' })
  seen.length = 0
  const elsewhere = `${baseUrl.replace('127.0.0.1', 'localhost')}/api/me`
  await t.rejects(client.fetch(elsewhere), { name: 'AuthClientError', message: /is not the API's origin; nothing was sent/ })
  t.equal((await client.fetch(`${baseUrl}/api/me`)).status, 200)
  t.equal((await client.fetch(`${baseUrl}?x=1`)).status, 200, 'the demo page')
  t.equal((await client.fetch(baseUrl)).status, 200)
  t.equal((await client.fetch('/api/me')).status, 200)
  t.equal((await client.fetch('/\\evil.example/x')).status, 404, 'a backslash after baseUrl is a path on our server')
  t.same(seen.map((h) => h?.startsWith('Bearer ') ?? null), [true, true, true, true, true], 'nothing went to the other server')
})

const pair = () => ({ access_token: 'a', refresh_token: 'r', session_id: 's', expires_at: Date.now() + 60_000, obtained_at: Date.now() })
const FOREIGN = ['//evil.example/steal', '/\\evil.example/x', '\\\\evil', '/\t/evil', '/\n/evil', '\\/evil', 'https://evil.example/x', 'HTTP://127.0.0.1.evil/x', 'javascript:alert(1)', 'data:text/plain,x']

t.test('same-origin client (baseUrl \'\'): paths a browser reads as another host are refused, nothing sent', async (t) => {
  const urls: string[] = []
  const page = createAuthClient({
    baseUrl: '',
    storage: { get: pair, set () {}, remove () {} },
    fetch: async (url, init) => { urls.push(`${String(url)} ${new Headers(init?.headers).has('authorization')}`); return new Response('{}') }
  })
  for (const path of FOREIGN) await t.rejects(page.fetch(path), { name: 'AuthClientError', status: 0 }, JSON.stringify(path))
  t.same(urls, [], 'no request at all, so no Authorization header')
  await page.fetch('/api/me')
  await page.fetch('api/me')
  await page.fetch('/api/me?q=//evil.example')
  t.same(urls, ['/api/me true', '/api/me true', '/api/me?q=//evil.example true'], 'ordinary relative paths still work')
})

t.test('in a page, relative paths resolve against the page and only its origin gets the token', async (t) => {
  const g = globalThis as { document?: unknown, location?: unknown }
  g.location = { href: 'https://app.example/shop/cart' }
  g.document = { baseURI: 'https://app.example/shop/' }
  t.teardown(() => { delete g.location; delete g.document })
  const urls: string[] = []
  const page = createAuthClient({
    baseUrl: '',
    broadcast: false,
    storage: { get: pair, set () {}, remove () {} },
    fetch: async (url, init) => { urls.push(`${String(url)} ${new Headers(init?.headers).has('authorization')}`); return new Response('{}') }
  })
  for (const path of FOREIGN) await t.rejects(page.fetch(path), { name: 'AuthClientError' }, JSON.stringify(path))
  await page.fetch('/api/me')
  await page.fetch('api/me')
  await page.fetch('https://app.example/x')
  t.same(urls, ['https://app.example/api/me true', 'https://app.example/api/me true', 'https://app.example/x true'])
  // a page without a document (a worker): its location is the base
  delete g.document
  urls.length = 0
  const worker = createAuthClient({ baseUrl: '', storage: { get: pair, set () {}, remove () {} }, fetch: async (url) => { urls.push(String(url)); return new Response('{}') } })
  await worker.fetch('/api/me')
  await t.rejects(worker.fetch('/\\evil.example/x'))
  t.same(urls, ['https://app.example/api/me'])
})

t.test('a refused login throws an AuthClientError with the status and code', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const client = createAuthClient({ baseUrl })
  await t.rejects(client.login({ username: 'alice', password: 'wrong' }), { name: 'AuthClientError', status: 401, code: 'AUTH_INVALID_CREDENTIALS', message: 'Login failed (401 AUTH_INVALID_CREDENTIALS)' })
  await t.rejects(client.login({ username: 'alice', password: 42 as unknown as string }), { status: 400, code: 'FST_ERR_VALIDATION' })
  const html = createAuthClient({ baseUrl, fetch: async () => new Response('<h1>Bad gateway</h1>', { status: 502 }) })
  await t.rejects(html.login({ username: 'alice', password: 'alice-pass' }), new AuthClientError('Login failed (502)', 502, null))
  const odd = createAuthClient({ baseUrl, fetch: async () => Response.json({ hello: 'world' }) })
  await t.rejects(odd.login({ username: 'alice', password: 'alice-pass' }), { message: 'The server answered without a token pair', status: 200 })
  t.equal(await client.session(), null, 'nothing stored')
})

t.test('globalThis.fetch is looked up at each call when no fetch is given', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const client = createAuthClient({ baseUrl })
  const original = globalThis.fetch
  let calls = 0
  globalThis.fetch = async (...args: Parameters<typeof fetch>) => { calls++; return await original(...args) }
  t.teardown(() => { globalThis.fetch = original })
  await client.login({ username: 'bob', password: 'bob-pass' })
  t.equal((await client.fetch('/api/me')).status, 200)
  t.equal(calls, 2)
})

t.test('logout ends the session on the server and forgets the pair; a second logout does nothing', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const storage = memoryStorage()
  const client = createAuthClient({ baseUrl, storage })
  const events: string[] = []
  client.on('logout', ({ source }) => events.push(`logout:${source}`))
  client.on('session-ended', ({ reason }) => events.push(`ended:${reason}`))
  await client.login({ username: 'alice', password: 'alice-pass' })
  const token = (await storage.get())!.access_token
  await client.logout()
  t.equal(await storage.get(), null)
  const after = await fetch(`${baseUrl}/api/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal((await after.json()).code, 'AUTH_SESSION_REVOKED', 'the server ended it')
  await client.logout()
  t.same(events, ['logout:local'], 'a logout is not a session-ended event')
})

t.test('logout while offline still forgets the pair', async (t) => {
  const { baseUrl } = await listeningApp(t)
  let offline = false
  const client = createAuthClient({ baseUrl, fetch: async (url, init) => { if (offline) throw new TypeError('fetch failed'); return await fetch(url, init) } })
  await client.login({ username: 'alice', password: 'alice-pass' })
  offline = true
  await client.logout()
  t.equal(await client.session(), null)
})

t.test('a session ended elsewhere shows as session-ended on the next call, once, with the pair cleared', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const storage = memoryStorage()
  const client = createAuthClient({ baseUrl, storage })
  const reasons: string[] = []
  client.on('session-ended', ({ reason, code }) => reasons.push(`${reason}:${code}`))
  await client.login({ username: 'alice', password: 'alice-pass' })
  await loginElsewhere(baseUrl, 'alice')
  const responses = await Promise.all(Array.from({ length: 5 }, () => client.fetch('/api/me')))
  t.same(responses.map((r) => r.status), [401, 401, 401, 401, 401], 'the app still gets the answer')
  t.same(reasons, ['replaced:AUTH_SESSION_REPLACED'], 'one event for five failed calls')
  t.equal(await storage.get(), null)

  await client.login({ username: 'alice', password: 'alice-pass' })
  const admin = await loginElsewhere(baseUrl, 'root')
  t.equal((await fetch(`${baseUrl}/admin/users/alice/revoke`, { method: 'POST', headers: { authorization: `Bearer ${admin.access_token}` } })).status, 204)
  t.equal((await client.fetch('/api/me')).status, 401)
  t.same(reasons, ['replaced:AUTH_SESSION_REPLACED', 'revoked:AUTH_SESSION_REVOKED'], 'a new login can end again')
})

t.test('other 401s and errors reach the app untouched', async (t) => {
  const { baseUrl } = await listeningApp(t)
  const client = createAuthClient({ baseUrl })
  await client.login({ username: 'alice', password: 'alice-pass' })
  const forbidden = await client.fetch('/admin/users/bob/revoke', { method: 'POST' })
  t.equal(forbidden.status, 403)
  const once = await client.fetch('/api/transfer', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":1}' })
  t.equal(once.status, 200)
  const replayed = await client.fetch('/api/transfer', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":1}' })
  t.equal((await replayed.json()).code, 'AUTH_TOKEN_REPLAYED', 'not a refresh reason')
  const text401 = createAuthClient({ baseUrl, storage: { get: () => ({ access_token: 'x', refresh_token: 'y', session_id: 's', expires_at: Date.now() + 60_000, obtained_at: Date.now() }), set () {}, remove () {} }, fetch: async () => new Response('no', { status: 401 }) })
  t.equal((await text401.fetch('/api/me')).status, 401, 'a 401 without a JSON code')
  t.equal(await client.session() !== null, true, 'still signed in')
})

t.test('options are checked at creation', async (t) => {
  t.throws(() => createAuthClient({} as never), /baseUrl must be a string/)
  t.throws(() => createAuthClient({ baseUrl: '', refreshBeforeSeconds: -1 }), /refreshBeforeSeconds must be a number >= 0/)
  t.throws(() => createAuthClient({ baseUrl: '', jitterSeconds: Number.NaN }), /jitterSeconds must be a number >= 0/)
  t.throws(() => createAuthClient({ baseUrl: '', refreshBeforeSeconds: '5' as never }), /refreshBeforeSeconds/)
})

t.test('decodeJwtPayload reads claims without verifying, and gives null for anything else', async (t) => {
  const enc = (v: string) => Buffer.from(v).toString('base64url')
  t.same(decodeJwtPayload(`x.${enc('{"sub":"ü","exp":1}')}.y`), { sub: 'ü', exp: 1 })
  t.equal(decodeJwtPayload('opaque'), null)
  t.equal(decodeJwtPayload(`x.${enc('not json')}.y`), null)
  t.equal(decodeJwtPayload(`x.${enc('42')}.y`), null)
  t.equal(decodeJwtPayload(`x.${enc('null')}.y`), null)
})

t.test('the demo page and its bundle', async (t) => {
  const { app } = await listeningApp(t)
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], 'text/html')
  t.match(page.body, '<script type="module" src="/demo/client.js"></script>')
  const [first, second] = await Promise.all([app.inject('/demo/client.js'), app.inject('/demo/client.js')])
  t.equal(first.statusCode, 200)
  t.match(first.headers['content-type'], 'text/javascript')
  t.match(first.body, 'createAuthClient')
  t.equal(second.body, first.body, 'built once')
})
