import { Redis } from 'ioredis'
import t from 'tap'
import replayGuard from '../plugins/replay-guard/index.js'
import { readAuthorization } from '../plugins/token-lifecycle/index.js'
import type { VerifyPlan } from '../lib/types.js'
import { REDIS_URL, pluginApp } from './helpers/app.js'
import { customApp, refresh } from './helpers/refresh.js'

t.test('readAuthorization: Bearer, and the extra schemes given (lower case), nothing else', async (t) => {
  const extra = new Set(['proof'])
  t.same(readAuthorization('Bearer abc', new Set()), { scheme: 'bearer', token: 'abc' })
  t.same(readAuthorization('PROOF abc', extra), { scheme: 'proof', token: 'abc' })
  t.equal(readAuthorization('Proof abc', new Set()), undefined, 'not accepted unless an extension asks')
  t.equal(readAuthorization('Basic abc', extra), undefined)
  t.equal(readAuthorization('Bearer ', extra), undefined)
  t.equal(readAuthorization('Bearer', extra), undefined)
  t.equal(readAuthorization(undefined, extra), undefined)
})

t.test('an extension\'s extra Authorization scheme is read by authenticate, and the plan says which came', async (t) => {
  const schemes: string[] = []
  const app = await pluginApp(t, {}, (app) => {
    app.tokens.extend({ name: 'custom', schemes: ['Custom'], onVerify (_request, _reply, _payload, plan: VerifyPlan) { schemes.push(plan.scheme) } })
    app.get('/p', { onRequest: app.authenticate }, async () => ({ ok: true }))
  })
  const { access_token: token } = (await app.tokens.openSession({ userId: 'u1' })).tokens
  for (const scheme of ['Bearer', 'custom', 'CUSTOM']) {
    t.equal((await app.inject({ method: 'GET', url: '/p', headers: { authorization: `${scheme} ${token}` } })).statusCode, 200, scheme)
  }
  t.same(schemes, ['bearer', 'custom', 'custom'])
  t.equal((await app.inject({ method: 'GET', url: '/p', headers: { authorization: `Other ${token}` } })).json().code, 'AUTH_TOKEN_MISSING')
  t.throws(() => app.tokens.extend({ name: 'bad', schemes: ['two words'] }), /bad: scheme "two words" is not an Authorization scheme name/)
  t.throws(() => app.tokens.extend({ name: 'bad', schemes: [42 as never] }), /bad: scheme 42/)
})

t.test('the token type is the issue context\'s: an extension sets it, the login and the refresh answer it', async (t) => {
  const { app } = await customApp(t, {
    before: (app) => app.tokens.extend({ name: 'typed', onIssue (ctx) { if (ctx.request?.headers['x-typed'] !== undefined) ctx.tokenType = 'Custom' } })
  })
  const typed = { 'x-typed': '1' }
  const login = await app.inject({ method: 'POST', url: '/auth/login', headers: typed, payload: { username: 'bob', password: 'bob-pass' } })
  t.equal(login.json().token_type, 'Custom')
  t.equal((await refresh(app, login.json().refresh_token, typed)).json().token_type, 'Custom')
  const plain = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' } })).json()
  t.equal(plain.token_type, 'Bearer', 'Bearer unless an extension says otherwise')
})

t.test('replay-guard with DPoP off still asks for the key binding at refresh: a session bound while DPoP was on refuses a refresh without its key', async (t) => {
  const { app } = await customApp(t, { before: async (app) => { await app.register(replayGuard) } })
  const pair = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' } })).json()
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 200, 'an unbound session refreshes')
  const raw = new Redis(REDIS_URL)
  t.teardown(() => raw.quit())
  const pair2 = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' } })).json()
  // As a login with DPoP on would have left it (its binding field, lib/session-record.ts).
  await raw.hset(app.tokens.keys.sessions('bob'), `${pair2.session_id}:k`, 'some-thumbprint')
  const res = await refresh(app, pair2.refresh_token)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'AUTH_DPOP_INVALID')
  t.equal(res.headers['www-authenticate'], 'DPoP error="invalid_dpop_proof"', 'no algs: DPoP is off')
})
