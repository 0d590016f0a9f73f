import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import { createSigner } from 'fast-jwt'
import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import tokenLifecycle, { authRoutes } from '../plugins/token-lifecycle/index.js'
import { checkOptions } from '../plugins/token-lifecycle/options.js'
import ssoSession from '../plugins/sso-session/index.js'
import { REDIS_URL, TEST_SECRET, bearer, pluginApp } from './helpers/app.js'

async function boot (register: (app: ReturnType<typeof Fastify>) => void) {
  const app = Fastify()
  register(app)
  try {
    await app.ready()
  } finally {
    await app.close()
  }
}

const protectedRoute = (app: Awaited<ReturnType<typeof pluginApp>>) => {
  app.get('/p', { onRequest: app.authenticate }, async (request) => ({ sub: request.auth!.userId }))
}

t.test('bad options fail at register time with a clear message', async (t) => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['no jwt', {}, /the jwt option is required/],
    ['short secret', { jwt: { secret: 'short' } }, /at least 32 bytes/],
    ['HS without secret', { jwt: { algorithm: 'HS384' } }, /jwt.secret is required for HS384/],
    ['unknown algorithm', { jwt: { secret: TEST_SECRET, algorithm: 'none' } }, /unsupported jwt.algorithm "none"/],
    ['RS256 with a secret', { jwt: { algorithm: 'RS256', secret: TEST_SECRET } }, /takes privateKey\/publicKey/],
    ['RS256 without a public key', { jwt: { algorithm: 'RS256' } }, /jwt.publicKey is required/],
    ['huge clock tolerance', { jwt: { secret: TEST_SECRET, clockTolerance: '10m' } }, /at most 5 minutes/],
    ['negative duration', { jwt: { secret: TEST_SECRET }, accessTokenTtl: -1 }, /non-negative number of seconds/],
    ['bad duration string', { jwt: { secret: TEST_SECRET }, idleTimeout: 'soon' }, /duration string such as '15m'/],
    ['duration of another type', { jwt: { secret: TEST_SECRET }, idleTimeout: {} }, /duration string such as '15m' \(got \{\}\)/],
    ['zero duration', { jwt: { secret: TEST_SECRET }, storeTimeout: 0 }, /greater than zero/],
    ['sub-second access TTL', { jwt: { secret: TEST_SECRET }, accessTokenTtl: '500ms' }, /at least one second/],
    ['max age below access TTL', { jwt: { secret: TEST_SECRET }, accessTokenTtl: '10m', maxSessionAge: '5m' }, /maxSessionAge must be at least accessTokenTtl/],
    ['braces in the prefix', { jwt: { secret: TEST_SECRET }, keyPrefix: 'a{b}' }, /keyPrefix must be a non-empty string without braces/],
    ['durability of another type', { jwt: { secret: TEST_SECRET }, durability: 'yes' }, /durability must be false or an object/],
    ['durability without replicas', { jwt: { secret: TEST_SECRET }, durability: { replicas: 0 } }, /durability.replicas must be a positive integer/],
    ['durability with a fraction of a replica', { jwt: { secret: TEST_SECRET }, durability: { replicas: 1.5 } }, /durability.replicas must be a positive integer/],
    ['durability timeout of zero (WAIT would block forever)', { jwt: { secret: TEST_SECRET }, durability: { timeout: 0 } }, /durability.timeout must be greater than zero/],
    ['durability timeout past the store timeout', { jwt: { secret: TEST_SECRET }, durability: { timeout: '1s' } }, /durability.timeout must be less than storeTimeout/]
  ]
  for (const [name, opts, message] of cases) {
    await t.rejects(boot((app) => {
      app.register(fastifyRedis, { url: REDIS_URL, lazyConnect: true })
      app.register(tokenLifecycle, opts as never)
    }), message, name)
  }
})

t.test('durability is off unless asked, and defaults to one replica within 200 ms', (t) => {
  t.equal(checkOptions({ jwt: { secret: TEST_SECRET } }).durability, null)
  t.equal(checkOptions({ jwt: { secret: TEST_SECRET }, durability: false }).durability, null)
  t.same(checkOptions({ jwt: { secret: TEST_SECRET }, durability: {} }).durability, { replicas: 1, timeoutMs: 200 })
  t.same(checkOptions({ jwt: { secret: TEST_SECRET }, storeTimeout: 3, durability: { replicas: 2, timeout: '1.5s' } }).durability, { replicas: 2, timeoutMs: 1500 })
  t.end()
})

t.test('without a Redis client the plugin says how to fix it', async (t) => {
  await t.rejects(boot((app) => { app.register(tokenLifecycle, { jwt: { secret: TEST_SECRET } }) }), /Register @fastify\/redis before this plugin, or pass \{ redis \}/)
  await t.rejects(boot((app) => {
    app.register(fastifyRedis, { url: REDIS_URL, lazyConnect: true })
    app.register(tokenLifecycle, { jwt: { secret: TEST_SECRET }, redisNamespace: 'sessions' })
  }), /with namespace 'sessions'/)
})

t.test('a wrong registration order fails at boot with a clear message', async (t) => {
  await t.rejects(boot((app) => { app.register(ssoSession) }), /fastify-jwt-sessions\/token-lifecycle/)
  await t.rejects(boot((app) => { app.register(authRoutes, { verifyCredentials: async () => null }) }), /fastify-jwt-sessions\/token-lifecycle/)
})

t.test('auth routes check their callbacks at register time', async (t) => {
  await t.rejects(pluginApp(t, {}, (app) => { app.register(authRoutes, {} as never) }), /verifyCredentials is required/)
  await t.rejects(pluginApp(t, {}, (app) => { app.register(authRoutes, { verifyCredentials: async () => null, changePassword: 'x' as never }) }), /changePassword must be a function/)
})

t.test('auth routes work without any extra login config', async (t) => {
  const app = await pluginApp(t, {}, (app) => {
    app.register(authRoutes, { prefix: '/auth', verifyCredentials: async (username) => ({ userId: username }) })
  })
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'u', password: 'p' } })
  t.equal(res.statusCode, 200)
  t.equal((await app.inject({ url: '/auth/sessions', headers: bearer(res.json().access_token) })).json().sessions.length, 1)
})

t.test('a client passed in options (or a namespaced @fastify/redis one) is used', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyRedis, { url: REDIS_URL, namespace: 'auth', enableOfflineQueue: false })
  await app.register(tokenLifecycle, { jwt: { secret: TEST_SECRET }, redisNamespace: 'auth', keyPrefix: `t:ns:${process.pid}` })
  await app.ready()
  t.equal(app.tokens.redis, app.redis.auth)
})

t.test('durations take seconds or strings with units', async (t) => {
  const app = await pluginApp(t, { accessTokenTtl: '90', idleTimeout: '2h', maxSessionAge: '1d', touchInterval: 0.5, storeTimeout: '1500ms' })
  t.match(app.tokens.options, { accessTtlMs: 90_000, idleMs: 7_200_000, maxAgeMs: 86_400_000, touchMs: 500, storeTimeoutMs: 1500 })
})

t.test('a Redis client passed in options is used instead of @fastify/redis', async (t) => {
  const { Redis } = await import('ioredis')
  const client = new Redis(REDIS_URL)
  t.teardown(() => client.quit())
  await new Promise((resolve) => client.once('ready', resolve))
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenLifecycle, { jwt: { secret: TEST_SECRET }, redis: client, keyPrefix: `t:own:${process.pid}` })
  await app.ready()
  t.equal(app.tokens.redis, client)
  const { sessionId } = await app.tokens.openSession({ userId: 'u' })
  t.equal(await app.tokens.endSession('u', sessionId), true)
})

t.test('open-session input is checked', async (t) => {
  const app = await pluginApp(t)
  await t.rejects(app.tokens.openSession({ userId: '' }), /userId must be a non-empty string/)
  await t.rejects(app.tokens.openSession({ userId: 'u', claims: { sub: 'x' } }), /claim 'sub' is reserved/)
  await t.rejects(app.tokens.openSession({ userId: 'u', claims: ['x'] as never }), /claims must be an object/)
  await t.rejects(app.tokens.openSession({ userId: 'u', device: { id: 'x'.repeat(201) } }), /device.id must be a string of at most 200/)
  await t.rejects(app.tokens.endDeviceSessions('u', ''), /deviceId must be a non-empty string/)
  const ok = await app.tokens.openSession({ userId: 'u', claims: null as never })
  t.type(ok.tokens.access_token, 'string')
})

t.test('user ids with braces, colons or percent signs stay in their own hash tag', async (t) => {
  const app = await pluginApp(t, {}, protectedRoute)
  for (const userId of ['a{b}c', 'x:y', '50%', '{}']) {
    const { tokens } = await app.tokens.openSession({ userId })
    const res = await app.inject({ url: '/p', headers: bearer(tokens.access_token) })
    t.same(res.json(), { sub: userId })
    t.equal(await app.tokens.endAllSessions(userId), 1)
  }
  t.match(app.tokens.keys.sessions('a{b}c'), /:\{a%7Bb%7Dc\}:s$/)
})

for (const [algorithm, type, options] of [
  ['RS256', 'rsa', { modulusLength: 2048 }],
  ['ES256', 'ec', { namedCurve: 'P-256' }],
  ['EdDSA', 'ed25519', {}]
] as const) {
  t.test(`${algorithm} key pairs sign and verify; the algorithm is pinned`, async (t) => {
    const { privateKey, publicKey } = generateKeyPairSync(type as 'rsa', { ...options, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } } as never)
    const app = await pluginApp(t, { jwt: { algorithm, privateKey, publicKey } }, protectedRoute)
    const { tokens } = await app.tokens.openSession({ userId: 'kp' })
    t.equal(JSON.parse(Buffer.from(tokens.access_token.split('.')[0], 'base64url').toString()).alg, algorithm)
    t.equal((await app.inject({ url: '/p', headers: bearer(tokens.access_token) })).statusCode, 200)
    const other = await pluginApp(t, {}, protectedRoute)
    const hs = await other.tokens.openSession({ userId: 'kp' })
    t.equal((await app.inject({ url: '/p', headers: bearer(hs.tokens.access_token) })).json().code, 'AUTH_TOKEN_INVALID')
  })
}

t.test('issuer and audience are set and checked when configured', async (t) => {
  const jwt = { secret: TEST_SECRET, issuer: 'https://auth.example', audience: 'api' }
  const prefix = `t:issaud:${process.pid}`
  const app = await pluginApp(t, { jwt, keyPrefix: prefix }, protectedRoute)
  const { tokens } = await app.tokens.openSession({ userId: 'u' })
  const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString())
  t.match(claims, { iss: 'https://auth.example', aud: 'api' })
  t.equal((await app.inject({ url: '/p', headers: bearer(tokens.access_token) })).statusCode, 200)
  const otherAudience = await pluginApp(t, { jwt: { ...jwt, audience: 'admin' }, keyPrefix: prefix }, protectedRoute)
  t.equal((await otherAudience.inject({ url: '/p', headers: bearer(tokens.access_token) })).json().code, 'AUTH_TOKEN_INVALID')
  const otherIssuer = await pluginApp(t, { jwt: { ...jwt, issuer: 'https://evil.example' }, keyPrefix: prefix }, protectedRoute)
  t.equal((await otherIssuer.inject({ url: '/p', headers: bearer(tokens.access_token) })).json().code, 'AUTH_TOKEN_INVALID')
})

t.test('an instance without a private key verifies what another signed, and refuses to sign with a clear error', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const keys = { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }), publicKey: publicKey.export({ type: 'spki', format: 'pem' }) }
  const signing = await pluginApp(t, { jwt: { algorithm: 'EdDSA', ...keys } }, protectedRoute)
  const verifyOnly = await pluginApp(t, { jwt: { algorithm: 'EdDSA', publicKey: keys.publicKey }, keyPrefix: signing.tokens.keys.prefix }, protectedRoute)
  const { tokens } = await signing.tokens.openSession({ userId: 'u' })
  t.same((await verifyOnly.inject({ url: '/p', headers: bearer(tokens.access_token) })).json(), { sub: 'u' })
  await t.rejects(verifyOnly.tokens.openSession({ userId: 'u' }), /this instance only verifies \(no jwt.privateKey\)/)
})

t.test('a token without iss or aud is AUTH_TOKEN_INVALID when they are configured', async (t) => {
  const jwt = { secret: TEST_SECRET, issuer: 'https://auth.example', audience: 'api' }
  const app = await pluginApp(t, { jwt }, protectedRoute)
  const { tokens } = await app.tokens.openSession({ userId: 'u' })
  const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString())
  // Signed with the right key, for a live session: only the missing claim is wrong.
  const sign = createSigner({ key: TEST_SECRET })
  t.equal((await app.inject({ url: '/p', headers: bearer(sign(claims)) })).statusCode, 200, 'with both')
  for (const missing of ['iss', 'aud']) {
    const res = await app.inject({ url: '/p', headers: bearer(sign({ ...claims, [missing]: undefined })) })
    t.equal(res.statusCode, 401, `without ${missing}`)
    t.equal(res.json().code, 'AUTH_TOKEN_INVALID', `without ${missing}`)
  }
  // Only what is configured is required.
  const issuerOnly = await pluginApp(t, { jwt: { secret: TEST_SECRET, issuer: jwt.issuer }, keyPrefix: app.tokens.keys.prefix }, protectedRoute)
  t.equal((await issuerOnly.inject({ url: '/p', headers: bearer(sign({ ...claims, aud: undefined })) })).statusCode, 200, 'issuer only: aud may be absent')
  t.equal((await issuerOnly.inject({ url: '/p', headers: bearer(sign({ ...claims, aud: undefined, iss: undefined })) })).json().code, 'AUTH_TOKEN_INVALID', 'issuer only: iss is required')
})

t.test('clock tolerance accepts a token just past exp, within bounds', async (t) => {
  let now = Date.now()
  const clock = () => now
  const prefix = `t:tol:${process.pid}`
  const strict = await pluginApp(t, { keyPrefix: prefix, clock, accessTokenTtl: 60 }, protectedRoute)
  const { tokens } = await strict.tokens.openSession({ userId: 'u' })
  const tolerant = await pluginApp(t, { keyPrefix: prefix, clock, accessTokenTtl: 60, jwt: { secret: TEST_SECRET, clockTolerance: '5m' } }, protectedRoute)
  // fast-jwt checks exp against the real clock: sign a token that expired 2 s ago.
  now = Date.now() - 62_000
  const old = await strict.tokens.openSession({ userId: 'u' })
  now = Date.now()
  t.equal((await strict.inject({ url: '/p', headers: bearer(old.tokens.access_token) })).json().code, 'AUTH_TOKEN_EXPIRED')
  t.equal((await tolerant.inject({ url: '/p', headers: bearer(old.tokens.access_token) })).statusCode, 200)
  t.equal((await tolerant.inject({ url: '/p', headers: bearer(tokens.access_token) })).statusCode, 200)
})
