import t from 'tap'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { DpopInvalidError } from '../lib/errors.js'
import { dpopChallenge } from '../plugins/replay-guard/index.js'
import { REDIS_URL, storedSession } from './helpers/app.js'
import { customApp, refresh } from './helpers/refresh.js'

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())

/**
 * Stands in for replay-guard's DPoP extension, through the generic extension
 * points only: a request's "proof" is the x-test-jkt header; every issue asks
 * for the session binding 'k' (the header, or '' without one), and binds the
 * tokens (cnf, token type) when there is one.
 */
function fakeDpop (app: FastifyInstance) {
  app.tokens.extend({
    name: 'fake-dpop',
    onIssue (ctx) {
      const jkt = ctx.request?.headers['x-test-jkt'] as string | undefined
      ctx.bindings.push({ field: 'k', value: jkt ?? '', error: () => dpopChallenge(new DpopInvalidError(), []) })
      if (!jkt) return
      ctx.tokenClaims.cnf = { jkt }
      ctx.tokenType = 'DPoP'
    }
  })
}

t.test('a DPoP-bound session refreshes only with a proof of its key, and a refused refresh rotates nothing', async (t) => {
  const { app } = await customApp(t, { before: fakeDpop, lifecycle: { accessTokenTtl: 60 }, refresh: { renewal: { threshold: 90 } } })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' }, headers: { 'x-test-jkt': 'K1' } })
  const pair = login.json()
  t.equal(pair.token_type, 'DPoP')
  const raw = new Redis(REDIS_URL)
  t.teardown(() => raw.quit())
  const generation = async () => (await storedSession(raw, app, 'bob', pair.session_id))!.generation
  for (const headers of [{ 'x-test-jkt': 'K2' }, {}] as Array<Record<string, string>>) {
    const res = await refresh(app, pair.refresh_token, headers)
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'AUTH_DPOP_INVALID')
    t.equal(res.headers['www-authenticate'], 'DPoP error="invalid_dpop_proof"', 'the binding\'s own error')
    t.equal(await generation(), 1, 'not rotated')
  }
  const ok = await refresh(app, pair.refresh_token, { 'x-test-jkt': 'K1' })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().token_type, 'DPoP')
  t.same(claimsOf(ok.json().access_token).cnf, { jkt: 'K1' })
  t.equal(await generation(), 2)
  // Proactive renewal keeps the key binding.
  const me = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${ok.json().access_token}` } })
  t.same(claimsOf(me.headers['x-access-token'] as string).cnf, { jkt: 'K1' })
})

t.test('a session without a key binding refreshes with or without a proof', async (t) => {
  const { app } = await customApp(t, { before: fakeDpop })
  const pair = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' } })).json()
  t.equal(pair.token_type, 'Bearer')
  const res = await refresh(app, pair.refresh_token)
  t.equal(res.statusCode, 200)
  t.equal(res.json().token_type, 'Bearer')
})
