import t from 'tap'
import { Redis } from 'ioredis'
import { REDIS_URL, bearer, exampleApp, login, me, pluginApp } from './helpers/app.js'
import { customApp } from './helpers/refresh.js'

t.test('logout ends the current session only', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const phone = await login(app, 'alice', { device_id: 'phone' })
  const laptop = await login(app, 'alice', { device_id: 'laptop' })
  const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(phone.access_token) })
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal((await me(app, phone.access_token)).json().code, 'AUTH_SESSION_REVOKED')
  t.equal((await me(app, laptop.access_token)).statusCode, 200)
  const again = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(phone.access_token) })
  t.equal(again.statusCode, 401)
  t.equal(again.json().code, 'AUTH_SESSION_REVOKED')
})

t.test('logout-all ends every session of the user and no one else\'s', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const a1 = await login(app, 'alice')
  const a2 = await login(app, 'alice')
  const b = await login(app, 'bob')
  const res = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(a2.access_token) })
  t.equal(res.statusCode, 204)
  for (const pair of [a1, a2]) t.equal((await me(app, pair.access_token)).json().code, 'AUTH_SESSION_REVOKED')
  t.equal((await me(app, b.access_token)).statusCode, 200)
  const fresh = await login(app, 'alice')
  t.equal((await me(app, fresh.access_token)).statusCode, 200, 'a new login works after logout-all')
})

t.test('the sessions list shows each device with ISO times and marks the current one', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const phone = await login(app, 'alice', { device_id: 'p-1', device_type: 'phone', device_name: 'Pixel 9' })
  const web = await login(app, 'alice')
  await login(app, 'bob')
  const res = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(web.access_token) })
  t.equal(res.statusCode, 200)
  const { sessions } = res.json()
  t.equal(sessions.length, 2)
  const [first, second] = sessions
  t.match(first, { session_id: phone.session_id, device_id: 'p-1', device_type: 'phone', device_name: 'Pixel 9', current: false })
  t.match(second, { session_id: web.session_id, device_id: null, device_type: 'unknown', device_name: null, current: true })
  for (const s of sessions) {
    t.equal(new Date(s.created_at).toISOString(), s.created_at)
    t.equal(new Date(s.last_seen_at).toISOString(), s.last_seen_at)
    t.same(Object.keys(s).sort(), ['created_at', 'current', 'device_id', 'device_name', 'device_type', 'last_seen_at', 'session_id'])
  }
})

t.test('deleting one of my sessions ends it (a lost phone); another user\'s or an unknown one is 404', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const phone = await login(app, 'alice', { device_id: 'phone' })
  const web = await login(app, 'alice')
  const bob = await login(app, 'bob')
  const del = (id: string, token: string) => app.inject({ method: 'DELETE', url: `/auth/sessions/${id}`, headers: bearer(token) })

  const foreign = await del(bob.session_id, web.access_token)
  t.equal(foreign.statusCode, 404)
  t.equal(foreign.json().code, 'AUTH_SESSION_NOT_FOUND')
  t.equal((await me(app, bob.access_token)).statusCode, 200, 'bob is untouched')
  t.equal((await del('nope', web.access_token)).json().code, 'AUTH_SESSION_NOT_FOUND')
  // Not ids this package issues: a field of a session, or no id at all.
  for (const id of [`${web.session_id}:d`, `${web.session_id}%3Ad`, '%20']) {
    t.equal((await del(id, web.access_token)).json().code, 'AUTH_SESSION_NOT_FOUND', id)
  }
  t.equal((await me(app, web.access_token)).statusCode, 200, 'nothing was ended')

  t.equal((await del(phone.session_id, web.access_token)).statusCode, 204)
  t.equal((await me(app, phone.access_token)).json().code, 'AUTH_SESSION_REVOKED')
  t.equal((await me(app, web.access_token)).statusCode, 200)
  t.equal((await del(phone.session_id, web.access_token)).statusCode, 404, 'already ended')
})

t.test('a password change ends every session, the current one included', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const a1 = await login(app, 'alice')
  const a2 = await login(app, 'alice')
  const change = (token: string, payload: unknown) => app.inject({ method: 'POST', url: '/auth/password', headers: bearer(token), payload: payload as object })

  const wrong = await change(a1.access_token, { current_password: 'nope', new_password: 'long-enough' })
  t.equal(wrong.statusCode, 403)
  t.equal(wrong.json().code, 'AUTH_INVALID_CREDENTIALS')
  const short = await change(a1.access_token, { current_password: 'alice-pass', new_password: 'short' })
  t.equal(short.statusCode, 400)
  t.equal(short.json().code, 'FST_ERR_VALIDATION')
  const typed = await change(a1.access_token, { current_password: 'alice-pass', new_password: 12345678 })
  t.equal(typed.json().code, 'FST_ERR_VALIDATION')
  t.equal((await me(app, a1.access_token)).statusCode, 200, 'failed attempts end nothing')

  const ok = await change(a1.access_token, { current_password: 'alice-pass', new_password: 'new-alice-pass' })
  t.equal(ok.statusCode, 204)
  for (const pair of [a1, a2]) t.equal((await me(app, pair.access_token)).json().code, 'AUTH_SESSION_REVOKED')
  const old = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'alice-pass' } })
  t.equal(old.statusCode, 401)
  const fresh = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'new-alice-pass' } })
  t.equal(fresh.statusCode, 200)
})

t.test('admin revoke ends all of a user\'s sessions, or one device\'s; non-admins are refused', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const root = await login(app, 'root')
  const phone = await login(app, 'alice', { device_id: 'lost-phone' })
  const laptop = await login(app, 'alice', { device_id: 'laptop' })
  const revoke = (url: string, token: string) => app.inject({ method: 'POST', url, headers: bearer(token) })

  const denied = await revoke('/admin/users/alice/revoke', laptop.access_token)
  t.equal(denied.statusCode, 403)
  t.equal(denied.json().code, 'AUTH_FORBIDDEN')
  t.equal((await revoke('/admin/users/alice/revoke', 'garbage')).json().code, 'AUTH_TOKEN_INVALID')

  t.equal((await revoke('/admin/users/alice/revoke?device_id=lost-phone', root.access_token)).statusCode, 204)
  t.equal((await me(app, phone.access_token)).json().code, 'AUTH_SESSION_REVOKED')
  t.equal((await me(app, laptop.access_token)).statusCode, 200)

  t.equal((await revoke('/admin/users/alice/revoke', root.access_token)).statusCode, 204)
  t.equal((await me(app, laptop.access_token)).json().code, 'AUTH_SESSION_REVOKED')
  t.equal((await revoke('/admin/users/nobody/revoke', root.access_token)).statusCode, 204, '204 also when there was none')
  t.equal((await me(app, root.access_token)).statusCode, 200, 'the admin stays signed in')
})

t.test('a role change makes live tokens stale without logging out; unknown users are 404', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const root = await login(app, 'root')
  const alice = await login(app, 'alice')
  const bob = await login(app, 'bob')
  const setRoles = (user: string, payload: unknown, token = root.access_token) =>
    app.inject({ method: 'PUT', url: `/admin/users/${user}/roles`, headers: bearer(token), payload: payload as object })

  t.equal((await setRoles('alice', { roles: ['admin'] }, alice.access_token)).json().code, 'AUTH_FORBIDDEN')
  t.equal((await setRoles('alice', { roles: 'admin' })).json().code, 'FST_ERR_VALIDATION')
  const unknown = await setRoles('nobody', { roles: ['user'] })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().code, 'AUTH_USER_NOT_FOUND')

  t.equal((await setRoles('alice', { roles: ['user', 'auditor'] })).statusCode, 204)
  const stale = await me(app, alice.access_token)
  t.equal(stale.statusCode, 401)
  t.equal(stale.json().code, 'AUTH_TOKEN_STALE')
  t.match(stale.headers['www-authenticate'], /error="invalid_token"/)
  t.equal((await me(app, bob.access_token)).statusCode, 200, 'other users are untouched')

  const list = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(root.access_token) })
  t.equal(list.statusCode, 200)
  const fresh = await login(app, 'alice')
  t.same((await me(app, fresh.access_token)).json().roles, ['user', 'auditor'], 'a new token carries the new roles')
})

t.test('a bodiless POST that still says Content-Type: application/json is accepted; bad JSON is a 400', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const root = await login(app, 'root')
  const alice = await login(app, 'alice')
  const json = { 'content-type': 'application/json' }
  const revoke = await app.inject({ method: 'POST', url: '/admin/users/bob/revoke', headers: { ...bearer(root.access_token), ...json } })
  t.equal(revoke.statusCode, 204, 'example routes')
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { ...bearer(alice.access_token), ...json } })
  t.equal(logout.statusCode, 204, 'ready-made routes')
  const noBody = await app.inject({ method: 'POST', url: '/auth/login', headers: json })
  t.equal(noBody.statusCode, 400)
  t.equal(noBody.json().code, 'FST_ERR_VALIDATION', 'a route that needs a body still says so')
  const broken = await app.inject({ method: 'POST', url: '/auth/login', headers: json, payload: '{"username":' })
  t.equal(broken.statusCode, 400)
  t.equal(broken.json().code, 'FST_ERR_CTP_INVALID_JSON_BODY')
  const poisoned = await app.inject({ method: 'POST', url: '/auth/login', headers: json, payload: '{"username":"a","password":"b","__proto__":{"x":1}}' })
  t.equal(poisoned.statusCode, 400, 'prototype poisoning is still refused')
})

t.test('device ids, types and names are stored as given, separators and escapes included', async (t) => {
  const app = await exampleApp(t, { sso: 'device-type' })
  const odd = { device_id: 'id|50%|%7C', device_type: 'pho|ne%', device_name: 'Bob\'s | phone 100%' }
  const first = await login(app, 'alice', odd)
  const other = await login(app, 'alice', { device_id: 'id', device_type: 'pho', device_name: 'x' })
  const listed = (await app.inject({ url: '/auth/sessions', headers: bearer(other.access_token) })).json().sessions
  t.match(listed, [{ session_id: first.session_id, ...odd }, { session_id: other.session_id, device_id: 'id', device_type: 'pho' }])

  const second = await login(app, 'alice', odd)
  t.equal((await me(app, first.access_token)).json().code, 'AUTH_SESSION_REPLACED', 'the same odd type is replaced')
  t.equal((await me(app, other.access_token)).statusCode, 200, 'a type that is only a prefix of it is not')
  t.equal(await app.tokens.endDeviceSessions('alice', 'id'), 1, 'a device id that is only a prefix ends only its own')
  t.equal(await app.tokens.endDeviceSessions('alice', odd.device_id), 1)
  t.equal((await me(app, second.access_token)).json().code, 'AUTH_SESSION_REVOKED')
})

t.test('a login that read the claims before a role change issues a stale first token; one that read them after does not', async (t) => {
  const clock = { now: Date.now() }
  const app = await pluginApp(t, { clock: () => clock.now }, (app) => {
    app.get('/p', { onRequest: app.authenticate }, async (request) => request.auth!.claims)
  })
  const p = (token: string) => app.inject({ url: '/p', headers: bearer(token) })
  const readBefore = clock.now
  clock.now += 5
  t.equal(await app.tokens.invalidateClaims('u'), 0, 'no session yet: the change is still kept')
  const raced = await app.tokens.openSession({ userId: 'u', claims: { roles: ['admin'] }, claimsLoadedAt: readBefore })
  t.equal((await p(raced.tokens.access_token)).json().code, 'AUTH_TOKEN_STALE', 'the old claims are not handed out as current')
  const sameMs = await app.tokens.openSession({ userId: 'u', claims: { roles: ['user'] }, claimsLoadedAt: clock.now })
  t.equal((await p(sameMs.tokens.access_token)).statusCode, 200, 'read at the very time of the change: after it')
  clock.now += 5
  const after = await app.tokens.openSession({ userId: 'u', claims: { roles: ['user'] } })
  t.same((await p(after.tokens.access_token)).json().roles, ['user'])
  t.same((await app.tokens.listSessions('u')).map((s) => s.sessionId).sort(), [raced.sessionId, sameMs.sessionId, after.sessionId].sort(), 'the marker is no session')
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  t.ok(await redis.pttl(app.tokens.keys.sessions('u')) > 0, 'and the hash keeps a TTL')
})

t.test('the login route reads the time before it checks the credentials', async (t) => {
  // An injected clock: a login and a role change in one millisecond would
  // make the login count as after the change (see the test above).
  const clock = { now: Date.now() }
  const { app, roles } = await customApp(t, {
    lifecycle: { clock: () => clock.now },
    // A role change lands while alice's password is being checked, one millisecond on: her first token is stale.
    async duringCredentials () {
      clock.now += 1
      roles.set('alice', ['admin'])
      await app.tokens.invalidateClaims('alice')
    }
  })
  const raced = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'alice-pass' } })).json()
  t.equal((await me(app, raced.access_token)).json().code, 'AUTH_TOKEN_STALE')
  const renewed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: raced.refresh_token } })
  const fresh = await me(app, renewed.json().access_token)
  t.equal(fresh.statusCode, 200, 'a refresh reads the claims afresh')
  t.same(fresh.json().roles, ['admin'])
})
