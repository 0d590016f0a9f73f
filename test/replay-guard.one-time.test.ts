import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Test } from 'tap'
import replayGuard from '../plugins/replay-guard/index.js'
import tokenLifecycle from '../plugins/token-lifecycle/index.js'
import { REDIS_URL, bearer, exampleApp, login, me, uniquePrefix } from './helpers/app.js'
import { TEST_SECRET, pluginApp } from './helpers/replay.js'

const transfer = (app: FastifyInstance, token: string, amount: unknown = 10) =>
  app.inject({ method: 'POST', url: '/api/transfer', headers: bearer(token), payload: { amount } })

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())

/** Every one-time key a user has under a prefix. */
async function onceKeys (t: Test, prefix: string, user: string): Promise<string[]> {
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  return (await redis.keys(`${prefix}:{${user}}:o:*`)).sort()
}

t.test('a guarded route accepts an access token once, then answers 401 AUTH_TOKEN_REPLAYED with a Bearer challenge', async (t) => {
  const app = await exampleApp(t)
  const { access_token: token } = await login(app, 'alice')
  const first = await transfer(app, token)
  t.equal(first.statusCode, 200)
  t.same(first.json(), { ok: true })
  const again = await transfer(app, token)
  t.equal(again.statusCode, 401)
  t.equal(again.json().code, 'AUTH_TOKEN_REPLAYED')
  t.equal(again.headers['www-authenticate'], 'Bearer error="invalid_token", error_description="AUTH_TOKEN_REPLAYED"')
  // Other routes still accept the token, as often as they like.
  t.equal((await me(app, token)).statusCode, 200)
  t.equal((await me(app, token)).statusCode, 200)
  // A new token is a new use.
  const { access_token: next } = await login(app, 'bob')
  t.equal((await transfer(app, next)).statusCode, 200)
})

t.test('the transfer body is validated without coercion, and a refused body spends nothing', async (t) => {
  const app = await exampleApp(t)
  const { access_token: token } = await login(app, 'alice')
  const res = await transfer(app, token, '10')
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'FST_ERR_VALIDATION')
  // onRequest authentication ran first: the use is spent even though the body was refused.
  t.equal((await transfer(app, token)).json().code, 'AUTH_TOKEN_REPLAYED')
  const noToken = await app.inject({ method: 'POST', url: '/api/transfer', payload: { amount: 1 } })
  t.equal(noToken.statusCode, 401)
  t.equal(noToken.json().code, 'AUTH_TOKEN_MISSING')
  t.equal(noToken.headers['www-authenticate'], 'Bearer')
})

t.test('100 parallel uses of one guarded token give exactly one success', async (t) => {
  const app = await exampleApp(t)
  const { access_token: token } = await login(app, 'alice')
  const answers = await Promise.all(Array.from({ length: 100 }, () => transfer(app, token)))
  const ok = answers.filter((r) => r.statusCode === 200)
  const replayed = answers.filter((r) => r.statusCode === 401 && r.json().code === 'AUTH_TOKEN_REPLAYED')
  t.equal(ok.length, 1)
  t.equal(replayed.length, 99)
})

t.test('a replay across two app instances sharing Redis is caught', async (t) => {
  const keyPrefix = uniquePrefix('two')
  const a = await exampleApp(t, { keyPrefix })
  const b = await exampleApp(t, { keyPrefix })
  const { access_token: token } = await login(a, 'alice')
  const answers = await Promise.all([transfer(a, token), transfer(b, token)])
  t.same(answers.map((r) => r.statusCode).sort(), [200, 401])
  const later = await transfer(b, token)
  t.equal(later.json().code, 'AUTH_TOKEN_REPLAYED')
  t.equal((await me(b, token)).statusCode, 200)
})

t.test('the spent jti is keyed on user and jti (not the token) and expires with the token', async (t) => {
  const keyPrefix = uniquePrefix('ttl')
  // exp is whole seconds, floored: a 3 s lifetime leaves the token at least 2 s to be spent in.
  const app = await exampleApp(t, { keyPrefix, accessTtl: 3 })
  const { access_token: token } = await login(app, 'alice')
  const { jti, exp } = claimsOf(token)
  // The key's TTL counts from when the server read its clock, no sooner than this.
  const spentFrom = Date.now()
  t.equal((await transfer(app, token)).statusCode, 200)
  // ...and Redis set it no later than this: it expires by exp + (spentBy - spentFrom).
  const spentBy = Date.now()
  const keys = await onceKeys(t, keyPrefix, 'alice')
  t.same(keys, [`${keyPrefix}:{alice}:o:rg POST /api/transfer:${jti}`])
  t.notOk(keys[0].includes(token), 'the raw token is never a key')
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const pttl = await redis.pttl(keys[0])
  t.ok(pttl > 0 && pttl <= exp * 1000 - spentFrom + 1, `PTTL ${pttl} ends with the token`)
  await sleep(Math.max(0, exp * 1000 + (spentBy - spentFrom) - Date.now()) + 10)
  t.equal(await redis.exists(keys[0]), 0, 'the key is gone once the token expired')
  t.equal((await transfer(app, token)).json().code, 'AUTH_TOKEN_EXPIRED')
})

t.test('hook factory: a named scope is shared by its routes, and the default scope is the route', async (t) => {
  const { app, issue, keyPrefix } = await pluginApp(t, {}, (app) => {
    app.post('/pay/a', { onRequest: app.replayGuard({ scope: 'payments' }) }, async () => ({ ok: true }))
    app.post('/pay/b', { onRequest: app.replayGuard({ scope: 'payments' }) }, async () => ({ ok: true }))
    app.post('/own/:id', { onRequest: app.replayGuard() }, async () => ({ ok: true }))
    app.post('/cfg', { onRequest: app.authenticate, config: { replayGuard: { scope: 'payments' } } }, async () => ({ ok: true }))
    app.post('/cfg-default', { onRequest: app.authenticate, config: { replayGuard: {} } }, async () => ({ ok: true }))
    app.post('/off', { onRequest: app.authenticate, config: { replayGuard: false } }, async () => ({ ok: true }))
  })
  const token = await issue()
  const post = (url: string) => app.inject({ method: 'POST', url, headers: bearer(token) })
  t.equal((await post('/pay/a')).statusCode, 200)
  t.equal((await post('/pay/b')).json().code, 'AUTH_TOKEN_REPLAYED', 'same scope, same use')
  t.equal((await post('/cfg')).json().code, 'AUTH_TOKEN_REPLAYED', 'config scope joins the hook scope')
  t.equal((await post('/own/1')).statusCode, 200)
  t.equal((await post('/own/2')).json().code, 'AUTH_TOKEN_REPLAYED', 'the default scope is the URL pattern, not the URL')
  t.equal((await post('/cfg-default')).statusCode, 200)
  t.equal((await post('/cfg-default')).json().code, 'AUTH_TOKEN_REPLAYED')
  t.equal((await post('/off')).statusCode, 200)
  t.equal((await post('/off')).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/plain', headers: bearer(token) })).statusCode, 200)
  const { jti } = claimsOf(token)
  t.same(await onceKeys(t, keyPrefix, 'u1'), [
    `${keyPrefix}:{u1}:o:rg POST /cfg-default:${jti}`,
    `${keyPrefix}:{u1}:o:rg POST /own/%3Aid:${jti}`,
    `${keyPrefix}:{u1}:o:rg payments:${jti}`
  ])
  // The hook still authenticates.
  const res = await app.inject({ method: 'POST', url: '/pay/a' })
  t.equal(res.json().code, 'AUTH_TOKEN_MISSING')
})

/** token-lifecycle and replay-guard, then `routes`; resolves when ready (or rejects, as the boot does). */
async function bootWith (t: Test, routes: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const keyPrefix = uniquePrefix('boot')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyRedis, { url: REDIS_URL })
  await app.register(tokenLifecycle, { keyPrefix, jwt: { secret: TEST_SECRET } })
  await app.register(replayGuard)
  await app.after()
  routes(app)
  await app.ready()
  return app
}

t.test('a route with config.replayGuard whose own hooks do not authenticate is refused at boot, not per request', async (t) => {
  const wrapped = (app: FastifyInstance) => async (request: FastifyRequest, reply: FastifyReply) => { await app.authenticate(request, reply) }
  const unguarded: Array<[string, (app: FastifyInstance) => object]> = [
    ['no hook at all', () => ({})],
    ['a preHandler of its own', () => ({ preHandler: async () => {} })],
    ['authenticate wrapped in a hook of the app (not recognisable)', (app) => ({ onRequest: wrapped(app) })]
  ]
  for (const [what, hooks] of unguarded) {
    await t.rejects(bootWith(t, (app) => { app.post('/x', { ...hooks(app), config: { replayGuard: true } }, async () => ({ ok: true })) }),
      /replay-guard: POST \/x has config.replayGuard but neither fastify.authenticate nor a fastify.replayGuard\(\) hook/, what)
  }
  await t.rejects(bootWith(t, (app) => {
    app.addHook('onRequest', app.authenticate)
    app.post('/x', { config: { replayGuard: true } }, async () => ({ ok: true }))
  }), /has config.replayGuard but neither/, 'an instance-wide hook is not the route\'s own: refused too (say it on the route)')
  const guarded: Array<[string, (app: FastifyInstance) => object]> = [
    ['authenticate as onRequest', (app) => ({ onRequest: app.authenticate })],
    ['authenticate in a list of onRequest hooks', (app) => ({ onRequest: [async () => {}, app.authenticate] })],
    ['authenticate as preHandler', (app) => ({ preHandler: [app.authenticate] })],
    ['a replayGuard() hook', (app) => ({ onRequest: app.replayGuard({ scope: 'other' }) })]
  ]
  for (const [what, hooks] of guarded) {
    const app = await bootWith(t, (app) => { app.post('/x', { ...hooks(app), config: { replayGuard: true } }, async () => ({ ok: true })) })
    t.ok(app.hasRoute({ method: 'POST', url: '/x' }), what)
  }
})

t.test('fail-closed backstop: a route whose authenticate hook went away after the boot check answers 500, never serves the token twice', async (t) => {
  const { app, issue } = await pluginApp(t, {}, (app) => {
    // An onRoute hook of the app, after replay-guard's: rewrites the route's hooks past its check.
    app.addHook('onRoute', (route) => { if (route.url === '/stripped') route.onRequest = [] })
    app.post('/stripped', { onRequest: app.authenticate, config: { replayGuard: true } }, async () => ({ ok: true }))
  })
  const token = await issue()
  const res = await app.inject({ method: 'POST', url: '/stripped', headers: bearer(token) })
  t.equal(res.statusCode, 500)
})

t.test('bad route config or hook scope fails at register time', async (t) => {
  for (const [config, hookScope] of [[{ replayGuard: 'yes' }, undefined], [{ replayGuard: { scope: '' } }, undefined], [{ replayGuard: [] }, undefined], [{ replayGuard: null }, undefined], [{}, 42], [{}, 'x'.repeat(201)]] as const) {
    await t.rejects(bootWith(t, (app) => {
      const onRequest = hookScope === undefined ? app.authenticate : app.replayGuard({ scope: hookScope as unknown as string })
      app.route({ method: 'POST', url: '/x', onRequest, config: config as object, handler: async () => ({}) })
    }), TypeError, JSON.stringify([config, hookScope]))
  }
})

t.test('the plugin needs token-lifecycle registered first', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(replayGuard)
  await t.rejects(async () => { await app.ready() }, /token-lifecycle/)
  t.pass('a wrong order fails at boot: declared with fastify-plugin dependencies')
})

t.test('a guarded route verifies its one-time token without the verifier cache; other routes keep it', async (t) => {
  const seen: object[] = []
  const { app, issue } = await pluginApp(t, {}, (app) => {
    const remember = async (request: { auth: { claims: object } | null }) => { seen.push(request.auth!.claims); return { ok: true } }
    app.get('/seen', { onRequest: app.authenticate }, remember)
    app.post('/guarded', { onRequest: app.authenticate, config: { replayGuard: true } }, remember)
  })
  const token = await issue()
  const call = (method: 'GET' | 'POST', url: string) => app.inject({ method, url, headers: bearer(token) })
  t.equal((await call('POST', '/guarded')).statusCode, 200)
  t.equal((await call('GET', '/seen')).statusCode, 200)
  t.equal((await call('GET', '/seen')).statusCode, 200)
  t.not(seen[1], seen[0], 'the guarded route left nothing in the cache')
  t.equal(seen[2], seen[1], 'an ordinary route is answered from the cache')
  t.equal((await call('POST', '/guarded')).json().code, 'AUTH_TOKEN_REPLAYED')
})
