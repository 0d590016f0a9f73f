import fastifyJwt from '@fastify/jwt'
import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import refreshRotation from '../plugins/refresh-rotation/index.js'
import replayGuard from '../plugins/replay-guard/index.js'
import ssoSession from '../plugins/sso-session/index.js'
import tokenLifecycle, { authRoutes } from '../plugins/token-lifecycle/index.js'
import { REDIS_URL, TEST_SECRET, cleanupPrefix, uniquePrefix } from './helpers/app.js'

// Our plugins add only the decorators the README documents; a host app's
// own @fastify/jwt, registered before or after them, keeps working as it
// would alone.

const HOST_SECRET = 'host-secret-host-secret-host-secret-0123'

/** The decorators the README documents, by where they live. */
const DOCUMENTED = {
  instance: ['authenticate', 'refreshRotation', 'replayGuard', 'sso', 'tokens'],
  request: ['auth'],
  reply: [] as string[]
}

async function ourPlugins (app: FastifyInstance, keyPrefix: string): Promise<void> {
  await app.register(tokenLifecycle, { keyPrefix, jwt: { secret: TEST_SECRET } })
  await app.register(ssoSession, { policy: 'single' })
  await app.register(replayGuard, {})
  await app.register(refreshRotation, { loadClaims: async () => ({ roles: ['user'] }) })
  await app.register(authRoutes, {
    prefix: '/auth',
    verifyCredentials: async (username, password) => password === `${username}-pass` ? { userId: username, claims: { roles: ['user'] } } : null
  })
}

/** String-named decorators of an app: its own properties, and those of a request and a reply seen in a handler. */
async function decoratorNames (t: Test, withOurs: boolean) {
  const app = Fastify()
  t.teardown(() => app.close())
  const keyPrefix = uniquePrefix('guest-dec')
  cleanupPrefix(t, keyPrefix)
  await app.register(fastifyRedis, { url: REDIS_URL, enableOfflineQueue: false })
  if (withOurs) await ourPlugins(app, keyPrefix)
  const names = (o: object) => [...new Set([...Object.getOwnPropertyNames(o), ...Object.getOwnPropertyNames(Object.getPrototypeOf(o))])]
  let seen: { request: string[], reply: string[] } = { request: [], reply: [] }
  app.get('/probe', async (request, reply) => {
    seen = { request: names(request), reply: names(reply) }
    return {}
  })
  await app.ready()
  await app.inject({ method: 'GET', url: '/probe' })
  return { app, instance: Object.getOwnPropertyNames(app), ...seen }
}

t.test('our plugins add the documented decorators and no other', async (t) => {
  const bare = await decoratorNames(t, false)
  const ours = await decoratorNames(t, true)
  const added = (what: 'instance' | 'request' | 'reply') => ours[what].filter((name) => !bare[what].includes(name)).sort()
  t.same(added('instance'), DOCUMENTED.instance)
  t.same(added('request'), DOCUMENTED.request)
  t.same(added('reply'), DOCUMENTED.reply)
  for (const name of DOCUMENTED.instance) t.ok(ours.app.hasDecorator(name), name)
  for (const name of DOCUMENTED.request) t.ok(ours.app.hasRequestDecorator(name), name)
  // What @fastify/jwt and @fastify/rate-limit would have added.
  for (const name of ['jwt', 'createRateLimit', 'rateLimit']) t.notOk(ours.app.hasDecorator(name), name)
  for (const name of ['user', 'jwtVerify', 'jwtDecode', 'sessionsJwtVerify', 'sessionsJwtDecode']) t.notOk(ours.app.hasRequestDecorator(name), name)
  for (const name of ['jwtSign', 'sessionsJwtSign']) t.notOk(ours.app.hasReplyDecorator(name), name)
})

for (const order of ['host @fastify/jwt first', 'ours first'] as const) {
  t.test(`a host's own @fastify/jwt keeps working (${order})`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    const keyPrefix = uniquePrefix('guest-jwt')
    cleanupPrefix(t, keyPrefix)
    await app.register(fastifyRedis, { url: REDIS_URL, enableOfflineQueue: false })
    if (order === 'ours first') await ourPlugins(app, keyPrefix)
    await app.register(fastifyJwt, { secret: HOST_SECRET })
    if (order === 'host @fastify/jwt first') await ourPlugins(app, keyPrefix)
    app.post('/host/token', async (_request, reply) => ({ token: await reply.jwtSign({ sub: 'host-user', scope: 'host' }) }))
    app.get('/host/me', async (request) => {
      await request.jwtVerify()
      return request.user
    })
    app.get('/api/me', { onRequest: app.authenticate }, async (request) => ({ user: request.auth!.userId, host: request.user ?? null }))
    await app.ready()

    // The host's decorators: fastify.jwt, reply.jwtSign, request.jwtVerify, request.user.
    const hostToken = (await app.inject({ method: 'POST', url: '/host/token' })).json().token as string
    t.equal(app.jwt.verify<{ sub: string }>(hostToken).sub, 'host-user')
    t.equal(app.jwt.verify<{ sub: string }>(app.jwt.sign({ sub: 'direct' })).sub, 'direct')
    const hostMe = await app.inject({ method: 'GET', url: '/host/me', headers: { authorization: `Bearer ${hostToken}` } })
    t.equal(hostMe.statusCode, 200)
    t.match(hostMe.json(), { sub: 'host-user', scope: 'host' })

    // Ours beside it: each accepts only its own tokens; ours leaves request.user alone.
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'alice-pass' } })
    t.equal(login.statusCode, 200)
    const ourToken = login.json().access_token as string
    const me = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${ourToken}` } })
    t.same(me.json(), { user: 'alice', host: null })
    t.equal((await app.inject({ method: 'GET', url: '/host/me', headers: { authorization: `Bearer ${ourToken}` } })).statusCode, 401)
    t.equal((await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${hostToken}` } })).json().code, 'AUTH_TOKEN_INVALID')
    // The host's decorator object is its own: no namespace of ours in it.
    t.same(Object.keys(app.jwt).sort(), ['cookie', 'decode', 'lookupToken', 'options', 'sign', 'verify'])
  })
}
