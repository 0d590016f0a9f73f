import { createSigner } from 'fast-jwt'
import t from 'tap'
import { Redis } from 'ioredis'
import { REDIS_URL, TEST_SECRET, bearer, exampleApp, login, me, storedSession } from './helpers/app.js'

const SECRET = TEST_SECRET

function payloadOf (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
}

t.test('no token, or a token of another scheme, is AUTH_TOKEN_MISSING with a bare Bearer challenge', async (t) => {
  const app = await exampleApp(t)
  const pair = await login(app, 'alice')
  const headerSets = [
    {},
    { authorization: `Basic ${Buffer.from('alice:alice-pass').toString('base64')}` },
    { authorization: `Token ${pair.access_token}` },
    { authorization: 'Bearer' },
    { authorization: 'Bearer    ' },
    { authorization: pair.access_token }
  ]
  for (const headers of headerSets) {
    const res = await app.inject({ method: 'GET', url: '/api/me', headers })
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'AUTH_TOKEN_MISSING')
    t.equal(res.headers['www-authenticate'], 'Bearer')
  }
})

t.test('a token in the query string or body is not read', async (t) => {
  const app = await exampleApp(t)
  const pair = await login(app, 'alice')
  const res = await app.inject({ method: 'GET', url: `/api/me?access_token=${pair.access_token}` })
  t.equal(res.json().code, 'AUTH_TOKEN_MISSING')
  const post = await app.inject({ method: 'POST', url: '/auth/logout', payload: { access_token: pair.access_token } })
  t.equal(post.json().code, 'AUTH_TOKEN_MISSING')
})

t.test('the scheme name is case-insensitive', async (t) => {
  const app = await exampleApp(t)
  const pair = await login(app, 'alice')
  for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
    const res = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `${scheme} ${pair.access_token}` } })
    t.equal(res.statusCode, 200, scheme)
  }
})

t.test('malformed, forged, unsigned or wrong-algorithm tokens are AUTH_TOKEN_INVALID', async (t) => {
  const app = await exampleApp(t)
  const pair = await login(app, 'alice')
  const claims = payloadOf(pair.access_token)
  const [header, body] = pair.access_token.split('.')
  const noneHeader = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')
  const tokens = {
    garbage: 'not-a-jwt',
    'opaque refresh-like token': 'YWxpY2U.abc.0.' + 'x'.repeat(43),
    'bad signature': `${header}.${body}.${'A'.repeat(43)}`,
    'alg none': `${noneHeader}.${body}.`,
    'HS512 with the same secret': createSigner({ key: SECRET, algorithm: 'HS512' })(claims),
    'another secret': createSigner({ key: 'x'.repeat(40) })(claims),
    'missing sid': createSigner({ key: SECRET })({ ...claims, sid: undefined }),
    'missing claims version': createSigner({ key: SECRET })({ ...claims, cv: undefined }),
    'non-integer claims version': createSigner({ key: SECRET })({ ...claims, cv: 'x' }),
    'empty sub': createSigner({ key: SECRET })({ ...claims, sub: '' }),
    'numeric sub': createSigner({ key: SECRET })({ ...claims, sub: 42 })
  }
  for (const [name, token] of Object.entries(tokens)) {
    const res = await me(app, token)
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().code, 'AUTH_TOKEN_INVALID', name)
    t.match(res.headers['www-authenticate'], /^Bearer error="invalid_token"/, name)
  }
})

t.test('an access token past exp is AUTH_TOKEN_EXPIRED (no clock tolerance by default)', async (t) => {
  const app = await exampleApp(t)
  const pair = await login(app, 'alice')
  const claims = payloadOf(pair.access_token)
  const now = Math.floor(Date.now() / 1000)
  const expired = createSigner({ key: SECRET })({ ...claims, iat: now - 10, exp: now - 1 })
  const res = await me(app, expired)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'AUTH_TOKEN_EXPIRED')
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token", error_description="AUTH_TOKEN_EXPIRED"')
})

t.test('a genuine token whose session is unknown is AUTH_SESSION_REVOKED', async (t) => {
  const app = await exampleApp(t)
  const pair = await login(app, 'alice')
  const claims = payloadOf(pair.access_token)
  const orphan = createSigner({ key: SECRET })({ ...claims, sid: 'no-such-session' })
  const res = await me(app, orphan)
  t.equal(res.json().code, 'AUTH_SESSION_REVOKED')
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token", error_description="AUTH_SESSION_REVOKED"')
})

t.test('request.auth carries the caller', async (t) => {
  const app = await exampleApp(t)
  app.get('/whoami', { onRequest: app.authenticate }, async (request) => {
    const { token, ...auth } = request.auth!
    return { ...auth, tokenLength: token.length }
  })
  const pair = await login(app, 'bob')
  const claims = payloadOf(pair.access_token)
  const res = await app.inject({ method: 'GET', url: '/whoami', headers: bearer(pair.access_token) })
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const { deadline, lastSeen } = (await storedSession(redis, app, 'bob', pair.session_id))!
  t.same(res.json(), {
    userId: 'bob',
    sessionId: pair.session_id,
    jti: claims.jti,
    claims,
    expiresAt: (claims.exp as number) * 1000,
    sessionLiveUntil: Math.min(deadline, lastSeen + app.tokens.options.idleMs),
    tokenLength: pair.access_token.length
  })
})
