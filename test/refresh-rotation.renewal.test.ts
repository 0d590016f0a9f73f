import t from 'tap'
import { customApp } from './helpers/refresh.js'

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())

async function loginBob (app: Awaited<ReturnType<typeof customApp>>['app']) {
  return (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' } })).json()
}

t.test('proactive renewal is off by default', async (t) => {
  const { app } = await customApp(t, { lifecycle: { accessTokenTtl: 2 } })
  const pair = await loginBob(app)
  const res = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${pair.access_token}` } })
  t.equal(res.statusCode, 200)
  t.notOk(res.headers['x-access-token'])
})

t.test('when on, a protected response carries a fresh access token once fewer than N seconds remain', async (t) => {
  const { app } = await customApp(t, { lifecycle: { accessTokenTtl: 60 }, refresh: { renewal: { threshold: 90 } } })
  const pair = await loginBob(app)
  const res = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${pair.access_token}` } })
  t.equal(res.statusCode, 200)
  const fresh = res.headers['x-access-token'] as string
  t.type(fresh, 'string')
  t.equal(res.headers['x-access-token-expires-in'], '60')
  t.equal(res.headers['cache-control'], 'no-store')
  const before = claimsOf(pair.access_token)
  const after = claimsOf(fresh)
  t.equal(after.sub, 'bob')
  t.equal(after.sid, before.sid)
  t.equal(after.cv, before.cv)
  t.same(after.roles, ['user'])
  t.not(after.jti, before.jti)
  const again = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${fresh}` } })
  t.equal(again.statusCode, 200)
  // Unauthenticated answers carry nothing.
  const anon = await app.inject({ method: 'GET', url: '/api/me' })
  t.equal(anon.statusCode, 401)
  t.notOk(anon.headers['x-access-token'])
})

t.test('a token with plenty of time left is not renewed; the header name is an option', async (t) => {
  const { app } = await customApp(t, { lifecycle: { accessTokenTtl: 60 }, refresh: { renewal: { threshold: '10s', header: 'X-Fresh-Token' } } })
  const pair = await loginBob(app)
  const res = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${pair.access_token}` } })
  t.notOk(res.headers['x-fresh-token'])
  const { app: soon } = await customApp(t, { lifecycle: { accessTokenTtl: 5 }, refresh: { renewal: { threshold: '10s', header: 'X-Fresh-Token' } } })
  const p2 = await loginBob(soon)
  const r2 = await soon.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${p2.access_token}` } })
  t.type(r2.headers['x-fresh-token'], 'string')
})

t.test('a renewed token never outlives its session: its exp stops at the absolute deadline', async (t) => {
  const clock = { now: Date.now() }
  const { app } = await customApp(t, {
    lifecycle: { accessTokenTtl: 60, maxSessionAge: 100, clock: () => clock.now },
    refresh: { renewal: { threshold: 90 } }
  })
  const pair = await loginBob(app)
  const deadline = clock.now + 100_000
  clock.now += 70_000
  const renewed = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${pair.access_token}` } })
  t.equal(renewed.statusCode, 200)
  t.equal(claimsOf(renewed.headers['x-access-token'] as string).exp, Math.floor(deadline / 1000), 'cut at the deadline, not 60 s on')
  t.equal(renewed.headers['x-access-token-expires-in'], String(Math.floor(deadline / 1000) - Math.floor(clock.now / 1000)))
})
