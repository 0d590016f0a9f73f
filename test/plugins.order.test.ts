import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import refreshRotation from '../plugins/refresh-rotation/index.js'
import replayGuard from '../plugins/replay-guard/index.js'
import ssoSession from '../plugins/sso-session/index.js'
import tokenLifecycle, { authRoutes } from '../plugins/token-lifecycle/index.js'
import { REDIS_URL, TEST_SECRET, cleanupPrefix, uniquePrefix } from './helpers/app.js'
import type { DpopKey } from './helpers/dpop.js'
import { dpopKey, proof } from './helpers/dpop.js'

/*
 * No plugin writes another's decorator fields, and every cross-plugin need
 * goes through token-lifecycle's extension points: so the order in which
 * sso-session, replay-guard and refresh-rotation are registered (each after
 * token-lifecycle) changes nothing a client sees.
 */

type Extra = 'sso' | 'guard' | 'refresh'

async function appIn (t: Test, order: Extra[]): Promise<FastifyInstance> {
  const keyPrefix = uniquePrefix('order')
  const app = Fastify()
  t.teardown(() => app.close())
  cleanupPrefix(t, keyPrefix)
  await app.register(fastifyRedis, { url: REDIS_URL })
  await app.register(tokenLifecycle, { keyPrefix, jwt: { secret: TEST_SECRET } })
  for (const extra of order) {
    if (extra === 'sso') await app.register(ssoSession, { policy: 'max:1' })
    if (extra === 'guard') await app.register(replayGuard, { dpop: { algorithms: ['ES256'] } })
    if (extra === 'refresh') await app.register(refreshRotation, { loadClaims: async () => ({ roles: ['user'] }) })
  }
  await app.register(authRoutes, {
    prefix: '/auth',
    verifyCredentials: async (username, password) => password === `${username}-pass` ? { userId: username, claims: { roles: ['user'] } } : null
  })
  app.get('/api/me', { onRequest: app.authenticate }, async (request) => ({ user: request.auth!.userId }))
  app.post('/api/once', { onRequest: app.authenticate, config: { replayGuard: true } }, async () => ({ ok: true }))
  await app.ready()
  return app
}

/** What a client sees of an answer, minus what differs on every run (tokens, ids, times). */
function seen (res: LightMyRequestResponse): object {
  const body = res.json() as Record<string, unknown>
  return {
    status: res.statusCode,
    challenge: res.headers['www-authenticate'] ?? null,
    code: body.code ?? null,
    token_type: body.token_type ?? null,
    members: Object.keys(body)
  }
}

/** One client's story: DPoP login, use, a replay, a refresh with the wrong key and the right one, an SSO replacement. */
async function story (app: FastifyInstance, key: DpopKey, otherKey: DpopKey): Promise<unknown[]> {
  const out: unknown[] = []
  const loginWith = async (dpop: DpopKey | null) => await app.inject({
    method: 'POST',
    url: '/auth/login',
    headers: dpop === null ? {} : { dpop: await proof(dpop, { htm: 'POST', htu: '/auth/login' }) },
    payload: { username: 'alice', password: 'alice-pass' }
  })
  const login = await loginWith(key)
  out.push(seen(login))
  const pair = login.json() as { access_token: string, refresh_token: string }
  const call = async (method: 'GET' | 'POST', url: string, scheme: string, dpop: DpopKey | null, token = pair.access_token) => await app.inject({
    method,
    url,
    headers: {
      authorization: `${scheme} ${token}`,
      ...(dpop === null ? {} : { dpop: await proof(dpop, { htm: method, htu: url, token }) })
    }
  })
  out.push(seen(await call('GET', '/api/me', 'DPoP', key)))
  out.push(seen(await call('GET', '/api/me', 'Bearer', key)), 'a bound token downgraded to Bearer')
  out.push(seen(await call('GET', '/api/me', 'DPoP', null)), 'no proof')
  out.push(seen(await call('POST', '/api/once', 'DPoP', key)))
  out.push(seen(await call('POST', '/api/once', 'DPoP', key)), 'the token again at a one-time route')
  const refresh = async (dpop: DpopKey | null) => await app.inject({
    method: 'POST',
    url: '/auth/refresh',
    headers: dpop === null ? {} : { dpop: await proof(dpop, { htm: 'POST', htu: '/auth/refresh' }) },
    payload: { refresh_token: pair.refresh_token }
  })
  out.push(seen(await refresh(otherKey)), 'refresh with another key')
  out.push(seen(await refresh(null)), 'refresh without a proof')
  out.push(seen(await refresh(key)), 'refresh with the session\'s key')
  out.push(seen(await loginWith(null)), 'a second login (policy max:1)')
  out.push(seen(await call('GET', '/api/me', 'DPoP', key)), 'the first session, replaced')
  return out
}

t.test('sso-session, replay-guard and refresh-rotation in any order after token-lifecycle: the same answers', async (t) => {
  const key = await dpopKey()
  const otherKey = await dpopKey()
  const orders: Extra[][] = [
    ['sso', 'guard', 'refresh'],
    ['refresh', 'guard', 'sso'],
    ['refresh', 'sso', 'guard'],
    ['guard', 'refresh', 'sso']
  ]
  const stories: unknown[][] = []
  for (const order of orders) stories.push(await story(await appIn(t, order), key, otherKey))
  const [first, ...rest] = stories
  t.match(first, [
    { status: 200, token_type: 'DPoP', members: ['access_token', 'token_type', 'expires_in', 'refresh_token', 'refresh_expires_in', 'session_id'] },
    { status: 200 },
    { status: 401, code: 'AUTH_DPOP_INVALID', challenge: 'DPoP error="invalid_dpop_proof", algs="ES256"' }, String,
    { status: 401, code: 'AUTH_DPOP_INVALID' }, String,
    { status: 200 },
    { status: 401, code: 'AUTH_TOKEN_REPLAYED' }, String,
    { status: 401, code: 'AUTH_DPOP_INVALID', challenge: 'DPoP error="invalid_dpop_proof", algs="ES256"' }, String,
    { status: 401, code: 'AUTH_DPOP_INVALID' }, String,
    { status: 200, token_type: 'DPoP', members: ['access_token', 'token_type', 'expires_in', 'refresh_token', 'refresh_expires_in', 'session_id'] }, String,
    { status: 200, token_type: 'Bearer' }, String,
    { status: 401, code: 'AUTH_SESSION_REPLACED' }, String
  ], 'the story as the contract tells it')
  for (const [i, other] of rest.entries()) t.same(other, first, `order ${orders[i + 1].join(', ')} answers as ${orders[0].join(', ')}`)
})
