import t from 'tap'
import { bearer, exampleApp, login, me } from './helpers/app.js'

t.test('login answers a token pair whose access token works at once', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const pair = await login(app, 'alice', { device_id: 'phone-1', device_type: 'phone', device_name: 'Pixel' })
  t.equal(pair.token_type, 'Bearer')
  t.equal(pair.expires_in, 300)
  t.type(pair.session_id, 'string')
  const claims = JSON.parse(Buffer.from(pair.access_token.split('.')[1], 'base64url').toString())
  t.same(Object.keys(claims).sort(), ['cv', 'exp', 'iat', 'jti', 'roles', 'sid', 'sub'])
  t.equal(claims.sub, 'alice')
  t.equal(claims.sid, pair.session_id)
  t.equal(claims.exp - claims.iat, 300)
  const res = await me(app, pair.access_token)
  t.equal(res.statusCode, 200)
  t.same(res.json(), { user_id: 'alice', session_id: pair.session_id, roles: ['user'] })
})

t.test('wrong password or unknown user is 401 AUTH_INVALID_CREDENTIALS with a Bearer challenge', async (t) => {
  const app = await exampleApp(t)
  for (const payload of [{ username: 'alice', password: 'nope' }, { username: 'mallory', password: 'x' }]) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload })
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'AUTH_INVALID_CREDENTIALS')
    t.equal(res.headers['www-authenticate'], 'Bearer')
  }
})

t.test('login bodies are validated without coercion', async (t) => {
  const app = await exampleApp(t)
  for (const payload of [{ username: 'alice' }, { username: 'alice', password: 42 }, { username: '', password: 'x' }, { username: 'alice', password: 'alice-pass', device_type: 7 }]) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.equal(res.json().code, 'FST_ERR_VALIDATION')
  }
})

t.test('token responses are not cacheable', async (t) => {
  const app = await exampleApp(t)
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' } })
  t.equal(res.headers['cache-control'], 'no-store')
  const ok = await app.inject({ method: 'GET', url: '/api/me', headers: bearer(res.json().access_token) })
  t.equal(ok.statusCode, 200)
})
