import t from 'tap'
import type { Test } from 'tap'
import { bearer, exampleApp, login, me } from './helpers/app.js'
import { assertRefused } from './helpers/attack.js'
import { refresh } from './helpers/refresh.js'

/*
 * Cross-site requests (what a page on another origin can make a browser send:
 * form posts, simple requests, no Authorization header) and insecure direct
 * object references (one user naming another user's sessions, or an admin
 * route). No ambient credential exists here (tokens travel in the
 * Authorization header and bodies only), so none of these does anything.
 */

const app = await exampleApp(t, { sso: 'off', loginRateMax: 1000, refreshRateMax: 1000 })
const credentials = JSON.stringify({ username: 'alice', password: 'alice-pass' })
const post = (url: string, contentType: string | undefined, payload: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, headers: contentType === undefined ? headers : { ...headers, 'content-type': contentType }, payload })

/** The session still works: its access token is accepted. */
async function stillLive (t: Test, accessToken: string): Promise<void> {
  t.equal((await me(app, accessToken)).statusCode, 200, 'the session is untouched')
}

t.test('cross-site form post: text/plain carrying JSON credentials to /auth/login', async (t) => {
  assertRefused(t, await post('/auth/login', 'text/plain', credentials), 400, 'FST_ERR_VALIDATION')
})

t.test('cross-site form post: text/plain;charset=UTF-8 carrying JSON credentials to /auth/login', async (t) => {
  assertRefused(t, await post('/auth/login', 'text/plain;charset=UTF-8', credentials), 400, 'FST_ERR_VALIDATION')
})

t.test('cross-site form post: urlencoded credentials to /auth/login', async (t) => {
  assertRefused(t, await post('/auth/login', 'application/x-www-form-urlencoded', 'username=alice&password=alice-pass'), 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
})

t.test('cross-site form post: multipart credentials to /auth/login', async (t) => {
  const body = '--b\r\nContent-Disposition: form-data; name="username"\r\n\r\nalice\r\n--b\r\nContent-Disposition: form-data; name="password"\r\n\r\nalice-pass\r\n--b--\r\n'
  assertRefused(t, await post('/auth/login', 'multipart/form-data; boundary=b', body), 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
})

t.test('a body without any content type to /auth/login', async (t) => {
  assertRefused(t, await post('/auth/login', undefined, credentials), 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
})

t.test('cross-site form post: text/plain carrying a refresh token to /auth/refresh rotates nothing', async (t) => {
  const pair = await login(app, 'alice')
  assertRefused(t, await post('/auth/refresh', 'text/plain', JSON.stringify({ refresh_token: pair.refresh_token })), 400, 'FST_ERR_VALIDATION')
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 200, 'the token was still current')
})

t.test('cross-site form post: urlencoded refresh token to /auth/refresh', async (t) => {
  const pair = await login(app, 'alice')
  assertRefused(t, await post('/auth/refresh', 'application/x-www-form-urlencoded', `refresh_token=${pair.refresh_token}`), 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 200, 'the token was still current')
})

t.test('cross-site form post to /auth/logout-all (no Authorization header)', async (t) => {
  const pair = await login(app, 'alice')
  assertRefused(t, await post('/auth/logout-all', 'text/plain', ''), 401, 'AUTH_TOKEN_MISSING')
  await stillLive(t, pair.access_token)
})

t.test('cross-site form post to /auth/password with the access token in the body', async (t) => {
  const pair = await login(app, 'alice')
  const body = `current_password=alice-pass&new_password=attacker-pass&access_token=${pair.access_token}`
  assertRefused(t, await post('/auth/password', 'application/x-www-form-urlencoded', body), 401, 'AUTH_TOKEN_MISSING')
  await stillLive(t, pair.access_token)
})

t.test('cross-site form post to /api/transfer with the access token in the query string', async (t) => {
  const pair = await login(app, 'alice')
  assertRefused(t, await post(`/api/transfer?access_token=${pair.access_token}`, 'text/plain', '{"amount":100}'), 401, 'AUTH_TOKEN_MISSING')
})

t.test('an access token in a cookie (an ambient credential) is not read', async (t) => {
  const pair = await login(app, 'alice')
  const res = await app.inject({ method: 'GET', url: '/api/me', headers: { cookie: `access_token=${pair.access_token}; authorization=Bearer%20${pair.access_token}` } })
  assertRefused(t, res, 401, 'AUTH_TOKEN_MISSING')
})

t.test('a GET to a POST-only route (an image tag or a prefetch) finds no route', async (t) => {
  const pair = await login(app, 'alice')
  assertRefused(t, await app.inject({ method: 'GET', url: '/auth/logout' }), 404, 'FST_ERR_NOT_FOUND')
  await stillLive(t, pair.access_token)
})

t.test('a CORS preflight from another origin gets no route and no Access-Control-Allow-Origin', async (t) => {
  const res = await app.inject({
    method: 'OPTIONS',
    url: '/api/me',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' }
  })
  assertRefused(t, res, 404, 'FST_ERR_NOT_FOUND')
  t.equal(res.headers['access-control-allow-origin'], undefined)
})

t.test('a cross-site text/plain post with a forged Origin still needs the Bearer token', async (t) => {
  const res = await post('/auth/logout', 'text/plain', '', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })
  assertRefused(t, res, 401, 'AUTH_TOKEN_MISSING')
})

// IDOR
t.test('IDOR: a user deletes another user\'s session by its id', async (t) => {
  const alice = await login(app, 'alice')
  const bob = await login(app, 'bob')
  assertRefused(t, await app.inject({ method: 'DELETE', url: `/auth/sessions/${bob.session_id}`, headers: bearer(alice.access_token) }), 404, 'AUTH_SESSION_NOT_FOUND')
  await stillLive(t, bob.access_token)
})

t.test('IDOR: the same, naming the other user in the query string', async (t) => {
  const alice = await login(app, 'alice')
  const bob = await login(app, 'bob')
  assertRefused(t, await app.inject({ method: 'DELETE', url: `/auth/sessions/${bob.session_id}?user_id=bob&sub=bob`, headers: bearer(alice.access_token) }), 404, 'AUTH_SESSION_NOT_FOUND')
  await stillLive(t, bob.access_token)
})

t.test('IDOR: logout naming another user\'s session in the body ends only the caller\'s own', async (t) => {
  const alice = await login(app, 'alice')
  const bob = await login(app, 'bob')
  const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(alice.access_token), payload: { session_id: bob.session_id, user_id: 'bob' } })
  t.equal(res.statusCode, 204)
  assertRefused(t, await me(app, alice.access_token), 401, 'AUTH_SESSION_REVOKED')
  await stillLive(t, bob.access_token)
})

t.test('IDOR: the session list shows none of another user\'s sessions', async (t) => {
  const alice = await login(app, 'alice')
  const bob = await login(app, 'bob')
  const res = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(alice.access_token) })
  t.equal(res.statusCode, 200)
  const ids = (res.json().sessions as Array<{ session_id: string }>).map((s) => s.session_id)
  t.ok(ids.includes(alice.session_id))
  t.notOk(ids.includes(bob.session_id))
})

const fieldNames: Array<[string, (sid: string) => string]> = [
  ['the user\'s claims-change field ("!c")', () => '!c'],
  ['a field of the caller\'s own session ("<sid>:r", its refresh state)', (sid) => `${sid}:r`],
  ['a hash tag of another user ("{bob}")', () => '{bob}'],
  ['a wildcard ("*")', () => '*']
]
for (const [what, id] of fieldNames) {
  t.test(`IDOR: deleting ${what} as a session id`, async (t) => {
    const alice = await login(app, 'alice')
    assertRefused(t, await app.inject({ method: 'DELETE', url: `/auth/sessions/${encodeURIComponent(id(alice.session_id))}`, headers: bearer(alice.access_token) }), 404, 'AUTH_SESSION_NOT_FOUND')
    await stillLive(t, alice.access_token)
    t.equal((await refresh(app, alice.refresh_token)).statusCode, 200, 'its refresh state is intact')
  })
}

t.test('IDOR: a non-admin revokes another user on the admin route', async (t) => {
  const alice = await login(app, 'alice')
  const bob = await login(app, 'bob')
  assertRefused(t, await app.inject({ method: 'POST', url: '/admin/users/bob/revoke', headers: bearer(alice.access_token) }), 403, 'AUTH_FORBIDDEN')
  await stillLive(t, bob.access_token)
})

t.test('IDOR: a non-admin revokes one of another user\'s devices', async (t) => {
  const alice = await login(app, 'alice')
  const bob = await login(app, 'bob', { device_id: 'phone' })
  assertRefused(t, await app.inject({ method: 'POST', url: '/admin/users/bob/revoke?device_id=phone', headers: bearer(alice.access_token) }), 403, 'AUTH_FORBIDDEN')
  await stillLive(t, bob.access_token)
})

t.test('IDOR: a non-admin grants themself the admin role', async (t) => {
  const alice = await login(app, 'alice')
  const res = await app.inject({ method: 'PUT', url: '/admin/users/alice/roles', headers: bearer(alice.access_token), payload: { roles: ['admin'] } })
  assertRefused(t, res, 403, 'AUTH_FORBIDDEN')
  const next = (await refresh(app, alice.refresh_token)).json().access_token as string
  t.same((await me(app, next)).json().roles, ['user'], 'a refresh still gives the user role only')
})

t.test('IDOR: the admin route without any token', async (t) => {
  assertRefused(t, await app.inject({ method: 'POST', url: '/admin/users/bob/revoke' }), 401, 'AUTH_TOKEN_MISSING')
})

const pathTricks = ['/admin/users/bob/revoke/', '/admin//users/bob/revoke', '/Admin/users/bob/revoke', '/admin/users/bob/revoke;x', '/admin/users/bob%2Frevoke']
for (const url of pathTricks) {
  t.test(`IDOR: a non-admin reaches the admin route as ${url}`, async (t) => {
    const alice = await login(app, 'alice')
    const bob = await login(app, 'bob')
    assertRefused(t, await app.inject({ method: 'POST', url, headers: bearer(alice.access_token) }), 404, 'FST_ERR_NOT_FOUND')
    await stillLive(t, bob.access_token)
  })
}

for (const url of ['/admin/users/bob/./revoke', '/admin/users/../users/bob/revoke', '/admin/users/%62ob/revoke']) {
  t.test(`IDOR: a non-admin reaches the admin route through ${url} (a client or proxy that resolves the path lands on the route: still forbidden)`, async (t) => {
    const alice = await login(app, 'alice')
    const bob = await login(app, 'bob')
    assertRefused(t, await app.inject({ method: 'POST', url, headers: bearer(alice.access_token) }), 403, 'AUTH_FORBIDDEN')
    await stillLive(t, bob.access_token)
  })
}

t.test('IDOR: a method override header does not turn a POST into the DELETE route', async (t) => {
  const alice = await login(app, 'alice')
  const bob = await login(app, 'bob')
  const res = await app.inject({ method: 'POST', url: `/auth/sessions/${bob.session_id}`, headers: { ...bearer(alice.access_token), 'x-http-method-override': 'DELETE' } })
  assertRefused(t, res, 404, 'FST_ERR_NOT_FOUND')
  await stillLive(t, bob.access_token)
})
