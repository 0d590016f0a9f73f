import type { FastifyInstance, InjectOptions } from 'fastify'
import { Redis } from 'ioredis'
import { SignJWT, calculateJwkThumbprint, exportJWK } from 'jose'
import { createHash, randomUUID } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import { newIssueContext } from '../lib/issue-context.js'
import { REDIS_URL, exampleApp, recordCommands, storedSession } from './helpers/app.js'
import type { DpopKey } from './helpers/dpop.js'
import { ath, dpopKey, proof, rawProof } from './helpers/dpop.js'
import { pluginApp } from './helpers/replay.js'

const CHALLENGE = 'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA Ed25519 PS256 RS256"'
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

async function dpopLogin (app: FastifyInstance, key: DpopKey, username = 'alice') {
  const res = await app.inject({
    method: 'POST',
    url: '/auth/login',
    headers: { dpop: await proof(key, { htm: 'POST', htu: '/auth/login' }) },
    payload: { username, password: `${username}-pass` }
  })
  t.equal(res.statusCode, 200, 'DPoP login')
  return res.json() as { access_token: string, token_type: string, session_id: string }
}

/** A request with `Authorization: <scheme> <token>` and, unless null, a proof made for it. */
async function call (app: FastifyInstance, token: string, key: DpopKey | null, opts: { method?: 'GET' | 'POST', url?: string, scheme?: string, proofOf?: Parameters<typeof proof>[1], dpop?: string } = {}) {
  const method = opts.method ?? 'GET'
  const url = opts.url ?? '/api/me'
  const headers: Record<string, string> = { authorization: `${opts.scheme ?? 'DPoP'} ${token}` }
  if (opts.dpop !== undefined) headers.dpop = opts.dpop
  else if (key) headers.dpop = await proof(key, opts.proofOf ?? { htm: method, htu: url.split('?')[0], token })
  const req: InjectOptions = { method, url, headers }
  if (method === 'POST') req.payload = { amount: 1 }
  return await app.inject(req)
}

function isDpopInvalid (t: Test, res: Awaited<ReturnType<FastifyInstance['inject']>>, what: string) {
  t.equal(res.statusCode, 401, what)
  t.equal(res.json().code, 'AUTH_DPOP_INVALID', what)
  t.equal(res.headers['www-authenticate'], CHALLENGE, what)
}

t.test('a login with a DPoP proof binds the tokens to the key (cnf.jkt, token_type DPoP, session field k)', async (t) => {
  const app = await exampleApp(t)
  const key = await dpopKey()
  const pair = await dpopLogin(app, key)
  const jkt = await calculateJwkThumbprint(key.publicJwk, 'sha256')
  t.equal(pair.token_type, 'DPoP')
  t.same(claimsOf(pair.access_token).cnf, { jkt })
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  t.equal((await storedSession(redis, app, 'alice', pair.session_id))!.jkt, jkt)
  // The protected routes take it with a proof, under the DPoP scheme (any case).
  t.equal((await call(app, pair.access_token, key)).statusCode, 200)
  t.equal((await call(app, pair.access_token, key, { scheme: 'dpop', url: '/api/me?x=1' })).statusCode, 200, 'query is not part of htu')
  t.same((await call(app, pair.access_token, key, { method: 'POST', url: '/api/transfer' })).json(), { ok: true })
  const again = await call(app, pair.access_token, key, { method: 'POST', url: '/api/transfer' })
  t.equal(again.json().code, 'AUTH_TOKEN_REPLAYED', 'a fresh proof does not make the token new again')
  // Without a proof the login stays Bearer.
  const plain = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' } })
  t.equal(plain.json().token_type, 'Bearer')
})

t.test('other asymmetric algorithms work (EdDSA, PS256)', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  for (const alg of ['EdDSA', 'PS256']) {
    const key = await dpopKey(alg)
    const pair = await dpopLogin(app, key)
    t.equal((await call(app, pair.access_token, key)).statusCode, 200, alg)
  }
})

t.test('an unbound Bearer token is accepted with a valid proof, refused with a bad one', async (t) => {
  const app = await exampleApp(t)
  const key = await dpopKey()
  const token = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' } })).json().access_token
  t.equal((await call(app, token, key, { scheme: 'Bearer' })).statusCode, 200)
  t.equal((await call(app, token, key, { scheme: 'DPoP' })).statusCode, 200, 'and under the DPoP scheme')
  t.equal((await call(app, token, null, { scheme: 'Bearer' })).statusCode, 200, 'no proof: plain Bearer')
  isDpopInvalid(t, await call(app, token, key, { scheme: 'Bearer', proofOf: { htm: 'POST', htu: '/api/me', token } }), 'bad proof on a Bearer route')
  isDpopInvalid(t, await call(app, token, null, { scheme: 'DPoP' }), 'the DPoP scheme without a proof')
})

t.test('bound tokens need a matching proof under the DPoP scheme', async (t) => {
  const app = await exampleApp(t)
  const key = await dpopKey()
  const other = await dpopKey()
  const { access_token: token } = await dpopLogin(app, key)
  isDpopInvalid(t, await call(app, token, null), 'bound token without proof')
  isDpopInvalid(t, await call(app, token, null, { scheme: 'Bearer' }), 'bound token as Bearer without proof')
  isDpopInvalid(t, await call(app, token, key, { scheme: 'Bearer' }), 'bound token downgraded to Bearer')
  isDpopInvalid(t, await call(app, token, other), 'thumbprint mismatch: proof key is not cnf.jkt')
  isDpopInvalid(t, await call(app, token, null, { method: 'POST', url: '/api/transfer' }), 'guarded route without proof')
  // None of the refused attempts spent the guarded use.
  t.equal((await call(app, token, key, { method: 'POST', url: '/api/transfer' })).statusCode, 200)
})

t.test('proofs that do not match the request, or are not well-formed proofs, are refused', async (t) => {
  const app = await exampleApp(t)
  const key = await dpopKey()
  const { access_token: token } = await dpopLogin(app, key)
  const now = Math.floor(Date.now() / 1000)
  const base = { htm: 'GET', htu: '/api/me', token }
  const good = await proof(key, base)
  const [h, p, s] = good.split('.')
  const hs256 = await new SignJWT({ htm: 'GET', htu: 'http://localhost:80/api/me', iat: now, jti: 'x1', ath: ath(token) })
    .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: Buffer.from('k'.repeat(32)).toString('base64url') } } as { alg: string })
    .sign(Buffer.from('k'.repeat(32)))
  const privateJwk = await exportJWK(key.privateKey)
  const cases: Array<[string, string | Promise<string>]> = [
    ['wrong htm', proof(key, { ...base, htm: 'POST' })],
    ['wrong htu path', proof(key, { ...base, htu: '/api/other' })],
    ['wrong htu host', proof(key, { ...base, htu: 'http://evil.example/api/me' })],
    ['htu not a URL', proof(key, { ...base, claims: { htu: 'not a url' } })],
    ['htu not a string', proof(key, { ...base, claims: { htu: 42 } })],
    ['stale iat', proof(key, { ...base, claims: { iat: now - 120 } })],
    ['iat from the future', proof(key, { ...base, claims: { iat: now + 120 } })],
    ['no iat', proof(key, { ...base, claims: { iat: undefined } })],
    ['no jti', proof(key, { ...base, claims: { jti: undefined } })],
    ['jti not a string', proof(key, { ...base, claims: { jti: 42 } })],
    ['empty jti', proof(key, { ...base, claims: { jti: '' } })],
    ['jti too long', proof(key, { ...base, claims: { jti: 'j'.repeat(257) } })],
    ['missing ath', proof(key, { htm: 'GET', htu: '/api/me' })],
    ['garbage ath', proof(key, { ...base, claims: { ath: 'garbage' } })],
    ['ath of another token', proof(key, { ...base, token: token + 'x' })],
    ['wrong typ', proof(key, { ...base, header: { typ: 'JWT' } })],
    ['no typ', proof(key, { ...base, header: { typ: undefined } })],
    ['no jwk', proof(key, { ...base, header: { jwk: undefined } })],
    ['jwk not an object', proof(key, { ...base, header: { jwk: 'key' } })],
    ['private key in jwk', proof(key, { ...base, header: { jwk: privateJwk } })],
    ['symmetric alg (HS256)', hs256],
    ['alg none', `${b64({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk })}.${p}.`],
    ['alg not in the list (ES384)', `${b64({ alg: 'ES384', typ: 'dpop+jwt', jwk: key.publicJwk })}.${p}.${s}`],
    ['bad signature', `${h}.${b64({ ...claimsOf(good), htm: 'GET', jti: 'other' })}.${s}`],
    ['garbage', 'garbage'],
    ['oversized', 'a'.repeat(9000)]
  ]
  for (const [what, dpop] of cases) isDpopInvalid(t, await call(app, token, key, { dpop: await dpop }), what)
  // Still fine with a good proof.
  t.equal((await call(app, token, key, { dpop: good })).statusCode, 200)
})

t.test('a proof is single-use, across routes and instances', async (t) => {
  const app = await exampleApp(t)
  const twin = await exampleApp(t, { keyPrefix: app.tokens.keys.prefix })
  const key = await dpopKey()
  const { access_token: token } = await dpopLogin(app, key)
  const dpop = await proof(key, { htm: 'GET', htu: '/api/me', token })
  t.equal((await call(app, token, key, { dpop })).statusCode, 200)
  isDpopInvalid(t, await call(app, token, key, { dpop }), 'replayed proof jti')
  isDpopInvalid(t, await call(twin, token, key, { dpop }), 'replayed on another instance')
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const [spent] = await redis.keys(`${app.tokens.keys.prefix}:{alice}:o:dpop:*`)
  const pttl = await redis.pttl(spent)
  t.ok(pttl > 0 && pttl <= 61_000, `the proof jti is kept for the iat window (PTTL ${pttl})`)
})

t.test('login with an invalid or replayed proof is 401 AUTH_DPOP_INVALID and opens no session', async (t) => {
  const app = await exampleApp(t)
  const key = await dpopKey()
  const login = (dpop: string) => app.inject({ method: 'POST', url: '/auth/login', headers: { dpop }, payload: { username: 'alice', password: 'alice-pass' } })
  isDpopInvalid(t, await login(await proof(key, { htm: 'POST', htu: '/auth/refresh' })), 'wrong htu at login')
  isDpopInvalid(t, await login('garbage'), 'garbage at login')
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  t.equal(await redis.exists(app.tokens.keys.sessions('alice')), 0, 'no session was opened')
  const dpop = await proof(key, { htm: 'POST', htu: '/auth/login' })
  t.equal((await login(dpop)).statusCode, 200)
  isDpopInvalid(t, await login(dpop), 'replayed proof at login')
})

t.test('refresh binds the new tokens (cnf, token type) and asks for the session binding, but writes no session field', async (t) => {
  const { app } = await pluginApp(t, { dpop: true }, (app) => {
    app.post('/refresh-like', async (request) => {
      const ctx = newIssueContext({ kind: 'refresh', request, userId: 'u1', sessionId: 's1', now: Date.now(), absoluteDeadline: Date.now() + 60_000 })
      await app.tokens.runIssueExtensions(ctx)
      return { fields: ctx.fields, tokenClaims: ctx.tokenClaims, tokenType: ctx.tokenType, bindings: ctx.bindings.map(({ field, value }) => ({ field, value })) }
    })
  })
  const key = await dpopKey()
  const jkt = await calculateJwkThumbprint(key.publicJwk, 'sha256')
  const res = await app.inject({ method: 'POST', url: '/refresh-like', headers: { dpop: await proof(key, { htm: 'POST', htu: '/refresh-like' }) } })
  t.same(res.json(), { fields: {}, tokenClaims: { cnf: { jkt } }, tokenType: 'DPoP', bindings: [{ field: 'k', value: jkt }] })
  t.same((await app.inject({ method: 'POST', url: '/refresh-like' })).json(), { fields: {}, tokenClaims: {}, tokenType: 'Bearer', bindings: [{ field: 'k', value: '' }] },
    'no proof: no binding of the tokens, and a session bound to a key refuses the refresh')
  const issued = await app.tokens.openSession({ userId: 'u1' })
  t.equal(issued.tokens.token_type, 'Bearer', 'no request, no binding')
})

t.test('required mode: no token without a proof, no request without a bound token', async (t) => {
  const { app } = await pluginApp(t, { dpop: { required: true } }, (app) => {
    app.post('/login', async (request) => (await app.tokens.openSession({ userId: 'u1', request })).tokens)
  })
  const key = await dpopKey()
  await t.rejects(app.tokens.openSession({ userId: 'u1' }), { code: 'AUTH_DPOP_INVALID' }, 'programmatic login without a request')
  isDpopInvalid(t, await app.inject({ method: 'POST', url: '/login' }), 'login without proof')
  const bound = await app.inject({ method: 'POST', url: '/login', headers: { dpop: await proof(key, { htm: 'POST', htu: '/login' }) } })
  t.equal(bound.json().token_type, 'DPoP')
  const token = bound.json().access_token
  t.equal((await call(app, token, key, { url: '/plain' })).statusCode, 200)
  const unbound = app.tokens.signAccessToken({ userId: 'u1', sessionId: 'x', claimsVersion: 1, absoluteDeadline: Date.now() + 60_000 }).token
  isDpopInvalid(t, await call(app, unbound, null, { url: '/plain', scheme: 'Bearer' }), 'unbound token without proof')
  isDpopInvalid(t, await call(app, unbound, key, { url: '/plain', scheme: 'Bearer' }), 'unbound token with a proof')
})

t.test('htu: a configured public origin, or the forwarded one behind a trusted proxy', async (t) => {
  const key = await dpopKey()
  await t.test('origin option', async (t) => {
    const { app, issue } = await pluginApp(t, { dpop: { origin: 'https://API.example.com:443', algorithms: ['ES256'], iatWindow: '30s' } })
    const token = await issue()
    t.equal((await call(app, token, key, { url: '/plain', proofOf: { htm: 'GET', htu: 'https://api.example.com/plain', token } })).statusCode, 200)
    const res = await call(app, token, key, { url: '/plain', proofOf: { htm: 'GET', htu: '/plain', token } })
    t.equal(res.headers['www-authenticate'], 'DPoP error="invalid_dpop_proof", algs="ES256"')
  })
  await t.test('trustProxy', async (t) => {
    const { app, issue } = await pluginApp(t, { dpop: true }, undefined, { trustProxy: true })
    const token = await issue()
    const headers = {
      authorization: `Bearer ${token}`,
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'public.example',
      dpop: await proof(key, { htm: 'GET', htu: 'https://public.example/plain', token })
    }
    t.equal((await app.inject({ method: 'GET', url: '/plain', headers })).statusCode, 200)
    const badHost = await app.inject({ method: 'GET', url: '/plain', headers: { authorization: `Bearer ${token}`, host: 'bad host', dpop: await proof(key, { htm: 'GET', htu: '/plain', token }) } })
    t.equal(badHost.json().code, 'AUTH_DPOP_INVALID', 'a Host that makes no URL matches nothing')
  })
})

t.test('the proof never reaches the log', async (t) => {
  const lines: string[] = []
  const { app, issue } = await pluginApp(t, { dpop: true }, undefined, { logger: { level: 'info', stream: { write: (line: string) => { lines.push(line) } } } })
  const token = await issue()
  const key = await dpopKey()
  const dpop = await proof(key, { htm: 'POST', htu: '/plain', token })
  isDpopInvalid(t, await call(app, token, key, { url: '/plain', dpop }), 'wrong htm')
  const log = lines.join('')
  t.match(log, /DPoP proof refused/)
  t.notOk(log.includes(dpop.split('.')[2]), 'no proof signature in the log')
  t.notOk(log.includes(token.split('.')[2]), 'no token in the log')
  t.notOk(log.includes(createHash('sha256').update(token).digest('base64url')), 'no ath in the log')
})

t.test('a guarded DPoP request is one Redis call, and spends its two ids all-or-none', async (t) => {
  const app = await exampleApp(t)
  const key = await dpopKey()
  const { access_token: token } = await dpopLogin(app, key)
  t.equal((await call(app, token, key)).statusCode, 200, 'warm-up: the script is cached')
  const sent = recordCommands(t, app)
  const spentProof = await proof(key, { htm: 'POST', htu: '/api/transfer', token })
  t.equal((await call(app, token, key, { method: 'POST', url: '/api/transfer', dpop: spentProof })).statusCode, 200)
  t.same(sent, ['evalsha'], 'session check, token jti and proof jti in one script call')
  const again = await call(app, token, key, { method: 'POST', url: '/api/transfer', dpop: spentProof })
  t.equal(again.json().code, 'AUTH_DPOP_INVALID', 'a replayed request reports its replayed proof')

  // All or none: a refused proof spends nothing, and neither does an already spent token.
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const { access_token: bobs } = await dpopLogin(app, key, 'bob')
  const guardKeys = () => redis.keys(`${app.tokens.keys.prefix}:{bob}:o:rg *`)
  isDpopInvalid(t, await call(app, bobs, key, { method: 'POST', url: '/api/transfer', proofOf: { htm: 'GET', htu: '/api/transfer', token: bobs } }), 'bad proof on a guarded route')
  t.same(await guardKeys(), [], 'the refused proof did not spend the token')
  t.equal((await call(app, bobs, key, { method: 'POST', url: '/api/transfer' })).statusCode, 200)
  t.equal((await guardKeys()).length, 1)
  const unspent = await proof(key, { htm: 'POST', htu: '/api/transfer', token: bobs })
  t.equal((await call(app, bobs, key, { method: 'POST', url: '/api/transfer', dpop: unspent })).json().code, 'AUTH_TOKEN_REPLAYED')
  t.equal(await redis.exists(app.tokens.keys.once('bob', 'dpop', `${claimsOf(bobs).cnf.jkt}.${claimsOf(unspent).jti}`)), 0, 'the replayed token did not spend the proof')
})

t.test('a refresh proved with another key is refused with the configured algorithms; the bound key refreshes, once per proof', async (t) => {
  const app = await exampleApp(t)
  const key = await dpopKey()
  const sent = recordCommands(t, app)
  const pair = await dpopLogin(app, key) as { refresh_token?: string }
  t.same(sent, ['evalsha', 'evalsha'], 'login: the rate-limit counter, then one script that also spends the proof')
  const refreshWith = async (refreshToken: unknown, dpop: string) => await app.inject({
    method: 'POST', url: '/auth/refresh', headers: { dpop }, payload: { refresh_token: refreshToken }
  })
  const proofFor = async (k: DpopKey) => await proof(k, { htm: 'POST', htu: '/auth/refresh' })
  isDpopInvalid(t, await refreshWith(pair.refresh_token, await proofFor(await dpopKey())), 'another key')
  const dpop = await proofFor(key)
  sent.length = 0
  const ok = await refreshWith(pair.refresh_token, dpop)
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().token_type, 'DPoP')
  t.equal(sent.filter((c) => c === 'evalsha').length, 3, 'refresh: two rate-limit counters and one script that also spends the proof')
  t.equal(sent.length, 3)
  isDpopInvalid(t, await refreshWith(ok.json().refresh_token, dpop), 'the same proof again, even with the new refresh token')
  t.equal((await refreshWith(ok.json().refresh_token, await proofFor(key))).statusCode, 200, 'which the refused call left current')
})

t.test('a proof with a fractional iat (a valid NumericDate) is accepted at login, refresh and on protected routes', async (t) => {
  const app = await exampleApp(t)
  const key = await dpopKey()
  // Half a second ahead and not on a whole millisecond: the jti's TTL in ms would not be an integer.
  const iat = () => Math.floor(Date.now() / 1000) + 0.5005
  const fractional = async (htm: string, htu: string, token?: string) => await proof(key, { htm, htu, token, claims: { iat: iat() } })
  const login = await app.inject({
    method: 'POST', url: '/auth/login', headers: { dpop: await fractional('POST', '/auth/login') }, payload: { username: 'alice', password: 'alice-pass' }
  })
  t.equal(login.statusCode, 200, 'login')
  // Each step from a session opened with an ordinary proof, so that each fails on its own.
  const pair = await dpopLogin(app, key, 'bob') as { refresh_token?: string }
  const refreshed = await app.inject({
    method: 'POST', url: '/auth/refresh', headers: { dpop: await fractional('POST', '/auth/refresh') }, payload: { refresh_token: pair.refresh_token }
  })
  t.equal(refreshed.statusCode, 200, 'refresh')
  const { access_token: token } = await dpopLogin(app, key, 'root')
  t.equal((await call(app, token, key, { dpop: await fractional('GET', '/api/me', token) })).statusCode, 200, 'protected route')
  const guarded = await call(app, token, key, { method: 'POST', url: '/api/transfer', dpop: await fractional('POST', '/api/transfer', token) })
  t.same(guarded.json(), { ok: true }, 'replay-guarded route')
})

t.test('a proof whose iat is no usable NumericDate (infinite, huge) is AUTH_DPOP_INVALID', async (t) => {
  const app = await exampleApp(t)
  const key = await dpopKey()
  const { access_token: token } = await dpopLogin(app, key)
  const claims = (iat: string) => `{"htm":"GET","htu":"http://localhost:80/api/me","iat":${iat},"jti":"${randomUUID()}","ath":"${ath(token)}"}`
  for (const iat of ['1e309', '-1e309', '1e20', '-1e20']) {
    isDpopInvalid(t, await call(app, token, key, { dpop: await rawProof(key, claims(iat)) }), `iat ${iat}`)
  }
  // The same text with a sane iat passes: the refusals above are the iat's.
  t.equal((await call(app, token, key, { dpop: await rawProof(key, claims(String(Math.floor(Date.now() / 1000)))) })).statusCode, 200)
})
