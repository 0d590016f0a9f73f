import t from 'tap'
import { bearer, exampleApp, login, me } from './helpers/app.js'
import { refresh } from './helpers/refresh.js'

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())

t.test('login answers a refresh token; refresh answers the contract token pair for the same session', async (t) => {
  const app = await exampleApp(t)
  const pair = await login(app, 'alice')
  t.type(pair.refresh_token, 'string')
  t.equal(pair.refresh_expires_in, 1_209_600)
  const res = await refresh(app, pair.refresh_token)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const next = res.json()
  t.same(Object.keys(next).sort(), ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'session_id', 'token_type'])
  t.equal(next.session_id, pair.session_id)
  t.equal(next.token_type, 'Bearer')
  t.equal(next.expires_in, 300)
  t.equal(next.refresh_expires_in, 1_209_600)
  t.not(next.refresh_token, pair.refresh_token)
  t.not(next.access_token, pair.access_token)
  const claims = claimsOf(next.access_token)
  t.equal(claims.sub, 'alice')
  t.equal(claims.sid, pair.session_id)
  t.same(claims.roles, ['user'])
  t.equal((await me(app, next.access_token)).statusCode, 200)
  // The old access token still works until it expires: rotation ends no session.
  t.equal((await me(app, pair.access_token)).statusCode, 200)
  // And the new refresh token rotates in turn.
  const third = await refresh(app, next.refresh_token)
  t.equal(third.statusCode, 200)
  t.not(third.json().refresh_token, next.refresh_token)
})

t.test('refresh_expires_in is the time left to the absolute deadline when that is shorter', async (t) => {
  const app = await exampleApp(t, { refreshTtl: 1000, sessionMaxAge: 500 })
  const pair = await login(app, 'alice')
  t.equal(pair.refresh_expires_in, 500)
  const next = (await refresh(app, pair.refresh_token)).json()
  t.ok(next.refresh_expires_in <= 500 && next.refresh_expires_in >= 498, String(next.refresh_expires_in))
  t.ok(next.expires_in <= 300)
})

t.test('100 concurrent refreshes of one token converge on exactly one successor, every caller 200', async (t) => {
  const app = await exampleApp(t, { refreshRateMax: 1000 })
  const pair = await login(app, 'alice')
  const answers = await Promise.all(Array.from({ length: 100 }, () => refresh(app, pair.refresh_token)))
  t.same([...new Set(answers.map((r) => r.statusCode))], [200])
  const successors = new Set(answers.map((r) => r.json().refresh_token))
  t.equal(successors.size, 1)
  const [successor] = successors
  // The successor is the session's current token: it rotates (and only it moves the session on).
  const res = await refresh(app, successor)
  t.equal(res.statusCode, 200)
  const accessTokens = new Set(answers.map((r) => r.json().access_token))
  t.equal(accessTokens.size, 100, 'each caller gets its own access token')
})

t.test('a lost reply retried within the grace window gets the same successor and raises no alarm', async (t) => {
  const app = await exampleApp(t)
  const pair = await login(app, 'alice')
  const lost = await refresh(app, pair.refresh_token) // the client never sees this answer
  const retry = await refresh(app, pair.refresh_token)
  t.equal(retry.statusCode, 200)
  t.equal(retry.json().refresh_token, lost.json().refresh_token)
  // No alarm: the session lives on, old access token included.
  t.equal((await me(app, pair.access_token)).statusCode, 200)
  t.equal((await refresh(app, retry.json().refresh_token)).statusCode, 200)
})

t.test('grace chain: a token rotated within the window yields its own successor, even when that has rotated since', async (t) => {
  const app = await exampleApp(t)
  const r1 = (await login(app, 'alice')).refresh_token
  const r2 = (await refresh(app, r1)).json().refresh_token
  const r3 = (await refresh(app, r2)).json().refresh_token
  // r1 is two generations back but rotated within the window: its successor is r2, not r3.
  const again1 = await refresh(app, r1)
  t.equal(again1.statusCode, 200)
  t.equal(again1.json().refresh_token, r2)
  // r2, handed out again, follows the same rule: its successor r3.
  const again2 = await refresh(app, r2)
  t.equal(again2.statusCode, 200)
  t.equal(again2.json().refresh_token, r3)
  t.equal((await refresh(app, r3)).statusCode, 200)
})

t.test('a role change makes access tokens stale; a refresh gives the new roles', async (t) => {
  const app = await exampleApp(t)
  const root = await login(app, 'root')
  const alice = await login(app, 'alice')
  const put = await app.inject({ method: 'PUT', url: '/admin/users/alice/roles', headers: bearer(root.access_token), payload: { roles: ['user', 'editor'] } })
  t.equal(put.statusCode, 204)
  const stale = await me(app, alice.access_token)
  t.equal(stale.statusCode, 401)
  t.equal(stale.json().code, 'AUTH_TOKEN_STALE')
  const next = await refresh(app, alice.refresh_token)
  t.equal(next.statusCode, 200)
  const res = await me(app, next.json().access_token)
  t.equal(res.statusCode, 200)
  t.same(res.json().roles, ['user', 'editor'])
})

t.test('a session whose user is gone ends at refresh: AUTH_SESSION_REVOKED', async (t) => {
  const app = await exampleApp(t)
  const { tokens } = await app.tokens.openSession({ userId: 'ghost', claims: { roles: [] } })
  const res = await refresh(app, tokens.refresh_token)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'AUTH_SESSION_REVOKED')
  t.match(res.headers['www-authenticate'], /^Bearer error="invalid_token"/)
  const gone = await me(app, tokens.access_token)
  t.equal(gone.json().code, 'AUTH_SESSION_REVOKED')
})
