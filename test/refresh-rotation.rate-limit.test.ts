import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { authRoutes } from '../plugins/token-lifecycle/index.js'
import { exampleApp, login, pluginApp } from './helpers/app.js'
import { customApp, refresh, scanPrefix } from './helpers/refresh.js'

t.test('refreshes per session are limited, grace answers included: 429 with Retry-After', async (t) => {
  const app = await exampleApp(t, { refreshRateMax: 3, refreshRateWindow: 60 }) // the example's windows are seconds (the contract's)
  const pair = await login(app, 'alice')
  for (let i = 0; i < 3; i++) t.equal((await refresh(app, pair.refresh_token)).statusCode, 200, `refresh ${i}`)
  const limited = await refresh(app, pair.refresh_token)
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'AUTH_RATE_LIMITED')
  const after = Number(limited.headers['retry-after'])
  t.ok(after > 0 && after <= 60, `Retry-After ${after}`)
  // Another session of the same user has its own budget.
  const other = await login(app, 'alice', { device_id: 'tablet' })
  t.equal((await refresh(app, other.refresh_token)).statusCode, 200)
  // Every rate-limit key expires.
  const keys = (await scanPrefix(app.tokens.keys.prefix)).filter((k) => k.key.includes(':rl:'))
  t.ok(keys.length >= 3)
  for (const k of keys) t.ok(k.ttl > 0 && k.ttl <= 60_000, `${k.key} ttl ${k.ttl}`)
})

t.test('forged tokens naming a session do not spend its budget', async (t) => {
  const app = await exampleApp(t, { refreshRateMax: 2 })
  const pair = await login(app, 'alice')
  const parts = pair.refresh_token.split('.')
  parts[5] = randomBytes(32).toString('base64url')
  for (let i = 0; i < 5; i++) t.equal((await refresh(app, parts.join('.'))).json().code, 'AUTH_REFRESH_INVALID')
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 200)
})

t.test('refreshes per client address are limited, whatever the token', async (t) => {
  const { app } = await customApp(t, { refresh: { refreshRateLimit: { max: 100, timeWindow: 60_000, addressMax: 3 } } })
  for (let i = 0; i < 3; i++) t.equal((await refresh(app, 'garbage')).statusCode, 401)
  const limited = await refresh(app, 'garbage')
  t.equal(limited.statusCode, 429)
  t.ok(Number(limited.headers['retry-after']) > 0)
})

t.test('login attempts per username and client address are limited: 429 with Retry-After', async (t) => {
  const app = await exampleApp(t, { loginRateMax: 2, loginRateWindow: 60 })
  const attempt = (username: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { username, password } })
  t.equal((await attempt('alice', 'wrong')).statusCode, 401)
  t.equal((await attempt('alice', 'alice-pass')).statusCode, 200)
  const limited = await attempt('alice', 'alice-pass')
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'AUTH_RATE_LIMITED')
  t.ok(Number(limited.headers['retry-after']) > 0)
  // Another username from the same address is counted apart.
  t.equal((await attempt('bob', 'bob-pass')).statusCode, 200)
  // The username is kept out of Redis keys (a digest instead); the key expires.
  const keys = (await scanPrefix(app.tokens.keys.prefix)).filter((k) => k.key.includes(':rl:'))
  t.equal(keys.length, 2)
  for (const k of keys) {
    t.notOk(k.key.includes('alice') || k.key.includes('bob'), k.key)
    t.ok(k.ttl > 0 && k.ttl <= 60_000)
  }
})

t.test('without rate limits nothing is counted', async (t) => {
  const { app, keyPrefix } = await customApp(t, { refresh: { refreshRateLimit: false }, routes: { loginRateLimit: false, changePassword: async () => false } })
  for (let i = 0; i < 15; i++) t.equal((await refresh(app, 'garbage')).statusCode, 401)
  const alice = await login(app, 'alice')
  for (let i = 0; i < 12; i++) {
    const res = await app.inject({ method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${alice.access_token}` }, payload: { current_password: 'x', new_password: 'new-password-1' } })
    t.equal(res.statusCode, 403)
  }
  for (let i = 0; i < 12; i++) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'x' } })
    t.equal(res.statusCode, 401)
    t.notOk(res.headers['x-ratelimit-limit'])
  }
  t.same((await scanPrefix(keyPrefix)).filter((k) => k.key.includes(':rl:')), [])
})

t.test('login limit alone, or refresh limit alone', async (t) => {
  const loginOnly = await customApp(t, { refresh: { refreshRateLimit: false }, routes: { loginRateLimit: { max: 1, timeWindow: 60_000 } } })
  for (let i = 0; i < 3; i++) t.equal((await refresh(loginOnly.app, 'garbage')).statusCode, 401)
  const attempt = (app: typeof loginOnly.app) => app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'x' } })
  t.equal((await attempt(loginOnly.app)).statusCode, 401)
  t.equal((await attempt(loginOnly.app)).statusCode, 429)
  const refreshOnly = await customApp(t, { routes: { loginRateLimit: false } })
  for (let i = 0; i < 12; i++) t.equal((await attempt(refreshOnly.app)).statusCode, 401)
})

t.test('login answers carry the x-ratelimit headers of @fastify/rate-limit; a window given as a string', async (t) => {
  const { app } = await customApp(t, { routes: { loginRateLimit: { max: 2, timeWindow: '30 seconds' } } })
  const attempt = () => app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'x' } })
  const first = await attempt()
  t.equal(first.statusCode, 401)
  t.equal(first.headers['x-ratelimit-limit'], '2')
  t.equal(first.headers['x-ratelimit-remaining'], '1')
  const reset = Number(first.headers['x-ratelimit-reset'])
  t.ok(reset > 0 && reset <= 30, `reset ${reset}`)
  t.notOk(first.headers['retry-after'])
  t.equal((await attempt()).headers['x-ratelimit-remaining'], '0')
  const limited = await attempt()
  t.equal(limited.statusCode, 429)
  t.same(limited.json(), { statusCode: 429, code: 'AUTH_RATE_LIMITED', error: 'Too Many Requests', message: 'Too many requests; retry later' })
  t.equal(limited.headers['x-ratelimit-limit'], '2')
  t.equal(limited.headers['x-ratelimit-remaining'], '0')
  const after = Number(limited.headers['retry-after'])
  t.ok(after > 0 && after <= 30, `Retry-After ${after}`)
  t.equal(limited.headers['x-ratelimit-reset'], limited.headers['retry-after'])
})

t.test('authRoutes checks its loginRateLimit at register time', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [{ max: 0, timeWindow: 60_000 }, /authRoutes: loginRateLimit.max must be a positive integer/],
    [{ max: 1, timeWindow: 60 }, /authRoutes: loginRateLimit.timeWindow must be at least one second/],
    [{ max: 1, timeWindow: '1 fortnight' }, /loginRateLimit.timeWindow/],
    [true, /loginRateLimit.max/]
  ]
  for (const [loginRateLimit, message] of bad) {
    const routes = (app: FastifyInstance) => { app.register(authRoutes, { verifyCredentials: async () => null, loginRateLimit: loginRateLimit as false }) }
    await t.rejects(pluginApp(t, {}, routes), message, JSON.stringify(loginRateLimit))
  }
})

t.test('password-change attempts per user and client address are limited, wrong passwords included: 429', async (t) => {
  const app = await exampleApp(t, { loginRateMax: 2, loginRateWindow: 60 })
  const alice = await login(app, 'alice')
  const change = (token: string, current: string) => app.inject({
    method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${token}` }, payload: { current_password: current, new_password: 'new-password-1' }
  })
  for (let i = 0; i < 2; i++) t.equal((await change(alice.access_token, `guess-${i}`)).json().code, 'AUTH_INVALID_CREDENTIALS', `guess ${i}`)
  // The limit is spent: even the right password is refused now.
  const limited = await change(alice.access_token, 'alice-pass')
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'AUTH_RATE_LIMITED')
  t.ok(Number(limited.headers['retry-after']) > 0)
  // Another user from the same address is counted apart.
  const bob = await login(app, 'bob')
  t.equal((await change(bob.access_token, 'bob-pass')).statusCode, 204)
  // The user id is kept out of Redis keys (a digest instead).
  const keys = (await scanPrefix(app.tokens.keys.prefix)).filter((k) => k.key.includes('password:'))
  t.equal(keys.length, 2)
  for (const k of keys) t.notOk(k.key.includes('alice') || k.key.includes('bob'), k.key)
})
