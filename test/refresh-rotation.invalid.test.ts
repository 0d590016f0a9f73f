import t from 'tap'
import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { RefreshTokenCodec } from '../plugins/refresh-rotation/token.js'
import { bearer, exampleApp, login, me } from './helpers/app.js'
import { exampleCodec, refresh } from './helpers/refresh.js'

const invalid = (t: Test, res: { statusCode: number, json: () => { code: string }, headers: Record<string, unknown> }, what: string) => {
  t.equal(res.statusCode, 401, what)
  t.equal(res.json().code, 'AUTH_REFRESH_INVALID', what)
  t.match(res.headers['www-authenticate'], /^Bearer error="invalid_token"/, what)
}

t.test('malformed, tampered and foreign tokens are AUTH_REFRESH_INVALID', async (t) => {
  const app = await exampleApp(t, { refreshRateMax: 100 })
  const pair = await login(app, 'alice')
  const parts = pair.refresh_token.split('.')
  const swap = (i: number, value: string) => parts.map((p, j) => (j === i ? value : p)).join('.')
  const lastChar = parts[5].slice(-1)
  const cases: Record<string, string> = {
    empty: '',
    garbage: 'not a token',
    'six empty parts': '.....',
    'access token': pair.access_token,
    'too long': pair.refresh_token + 'A'.repeat(3000),
    'bad mac': swap(5, randomBytes(32).toString('base64url')),
    'non-canonical mac spelling': swap(5, parts[5].slice(0, -1) + (lastChar === 'A' ? 'B' : String.fromCharCode(lastChar.charCodeAt(0) ^ 1))),
    'generation bumped': swap(2, '2'),
    'generation zero': swap(2, '0'),
    'deadline moved': swap(3, String(Number(parts[3]) + 1000)),
    'other session id': swap(1, 'xxxxxxxxxxxxxxxx'),
    'other user': swap(0, Buffer.from('bob').toString('base64url')),
    'short nonce': swap(4, 'abc'),
    'bad session id chars': swap(1, 'a:b'),
    'signed with another key': new RefreshTokenCodec(randomBytes(32)).first('alice', pair.session_id, Number(parts[3])).value
  }
  for (const [what, token] of Object.entries(cases)) invalid(t, await refresh(app, token), what)
  // None of it touched the session.
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 200)
})

t.test('a genuine-looking token that is not the session\'s current one is AUTH_REFRESH_INVALID and harmless', async (t) => {
  const app = await exampleApp(t)
  const pair = await login(app, 'alice')
  const codec = exampleCodec()
  const real = codec.parse(pair.refresh_token)!
  // Same session and generation, another nonce: the digest does not match.
  invalid(t, await refresh(app, codec.first('alice', pair.session_id, real.absoluteDeadline).value), 'digest mismatch')
  // A generation the session never reached.
  invalid(t, await refresh(app, codec.successor(codec.successor(real)).value), 'future generation')
  t.equal((await me(app, pair.access_token)).statusCode, 200)
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 200)
})

t.test('bodies are validated without coercion', async (t) => {
  const app = await exampleApp(t)
  for (const payload of [{ refresh_token: 42 }, { refresh_token: null }, {}, { refresh_token: ['x'] }]) {
    const res = await app.inject({ method: 'POST', url: '/auth/refresh', payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.equal(res.json().code, 'FST_ERR_VALIDATION')
  }
})

t.test('a refresh token presented as a Bearer token is AUTH_TOKEN_INVALID', async (t) => {
  const app = await exampleApp(t)
  const pair = await login(app, 'alice')
  const res = await app.inject({ method: 'GET', url: '/api/me', headers: bearer(pair.refresh_token) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'AUTH_TOKEN_INVALID')
})

t.test('a session replaced under SSO answers AUTH_SESSION_REPLACED, to its own tokens only', async (t) => {
  const app = await exampleApp(t)
  const first = await app.tokens.openSession({ userId: 'alice', claims: { roles: ['user'] } })
  const r2 = (await refresh(app, first.tokens.refresh_token)).json().refresh_token
  await app.tokens.openSession({ userId: 'alice', claims: { roles: ['user'] }, policy: { mode: 'single' } })
  for (const token of [first.tokens.refresh_token, r2]) {
    const res = await refresh(app, token as string)
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'AUTH_SESSION_REPLACED')
  }
  // A forged token naming the replaced session learns nothing.
  const forged = new RefreshTokenCodec(randomBytes(32)).first('alice', first.sessionId, Date.now() + 60_000).value
  invalid(t, await refresh(app, forged), 'forged token of a replaced session')
})

t.test('after logout the refresh token is AUTH_REFRESH_INVALID', async (t) => {
  const app = await exampleApp(t)
  const pair = await login(app, 'alice')
  const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(pair.access_token) })
  t.equal(out.statusCode, 204)
  invalid(t, await refresh(app, pair.refresh_token), 'after logout')
})
