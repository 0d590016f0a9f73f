import type { LightMyRequestResponse } from 'fastify'
import { randomUUID } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK } from 'jose'
import t from 'tap'
import type { Test } from 'tap'
import { TEST_SECRET, exampleApp } from './helpers/app.js'
import type { LoginAnswer } from './helpers/app.js'
import { assertRefused } from './helpers/attack.js'
import type { DpopKey, ProofInput } from './helpers/dpop.js'
import { ath, dpopKey, proof } from './helpers/dpop.js'
import { ecSigner, hmacSigner, keyPair, rawToken } from './helpers/raw-token.js'

/*
 * DPoP (RFC 9449) proofs as an attacker shapes them: each is AUTH_DPOP_INVALID
 * with the DPoP challenge, and spends nothing. (Non-integer or non-finite iat
 * values are covered elsewhere.)
 */

const app = await exampleApp(t, { sso: 'off', loginRateMax: 1000, refreshRateMax: 1000 })
const twin = await exampleApp(t, { keyPrefix: app.tokens.keys.prefix })
const key = await dpopKey()
const otherKey = await dpopKey()
const raw = keyPair('ES256')
const rawJwk = raw.publicKey.export({ format: 'jwk' })
const CHALLENGE = 'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA Ed25519 PS256 RS256"'
const ORIGIN = 'http://localhost:80'
const now = () => Math.floor(Date.now() / 1000)

async function dpopLogin (username = 'alice'): Promise<LoginAnswer> {
  const res = await app.inject({
    method: 'POST', url: '/auth/login', headers: { dpop: await proof(key, { htm: 'POST', htu: '/auth/login' }) }, payload: { username, password: `${username}-pass` }
  })
  if (res.statusCode !== 200) throw new Error(`DPoP login failed: ${res.statusCode}`)
  return res.json()
}

const bound = await dpopLogin()
const token = bound.access_token

/** GET /api/me with `Authorization: <scheme> <token>` and the given DPoP header (none when undefined). */
function call (dpop: string | string[] | undefined, opts: { scheme?: string, accessToken?: string, url?: string, target?: typeof app } = {}): Promise<LightMyRequestResponse> {
  const headers: Record<string, string | string[]> = { authorization: `${opts.scheme ?? 'DPoP'} ${opts.accessToken ?? token}` }
  if (dpop !== undefined) headers.dpop = dpop
  return (opts.target ?? app).inject({ method: 'GET', url: opts.url ?? '/api/me', headers: headers as Record<string, string> })
}

const proofFor = (input: Partial<ProofInput> = {}, signer: DpopKey = key) =>
  proof(signer, { htm: 'GET', htu: '/api/me', token, ...input })

/** The claims of a proof for GET /api/me bound to `token`, for raw proofs. */
const proofClaims = (extra: Record<string, unknown> = {}) =>
  ({ htm: 'GET', htu: `${ORIGIN}/api/me`, iat: now(), jti: randomUUID(), ath: ath(token), ...extra })

function assertProofRefused (t: Test, res: LightMyRequestResponse): void {
  assertRefused(t, res, 401, 'AUTH_DPOP_INVALID')
  t.equal(res.headers['www-authenticate'], CHALLENGE, 'the DPoP challenge')
}

t.test('control: a fresh proof made with the bound key is accepted', async (t) => {
  t.equal((await call(await proofFor())).statusCode, 200)
})

const proofs: Array<[string, () => Promise<string>]> = [
  ['typ "JWT"', () => proofFor({ header: { typ: 'JWT' } })],
  ['no typ', () => proofFor({ header: { typ: undefined } })],
  ['typ "at+jwt"', () => proofFor({ header: { typ: 'at+jwt' } })],
  ['alg none, unsigned', async () => rawToken({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk }, proofClaims(), '')],
  ['alg none, carrying a real signature', async () => {
    const [, , signature] = (await proofFor()).split('.')
    return rawToken({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk }, proofClaims(), signature)
  }],
  ['HS256 with a symmetric jwk', async () => rawToken({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: Buffer.from('k'.repeat(32)).toString('base64url') } }, proofClaims(), hmacSigner('k'.repeat(32)))],
  ['HS256 MACed with the server\'s own JWT secret, with the bound public jwk', async () => rawToken({ alg: 'HS256', typ: 'dpop+jwt', jwk: key.publicJwk }, proofClaims(), hmacSigner(TEST_SECRET))],
  ['ES384, an algorithm not configured', async () => rawToken({ alg: 'ES384', typ: 'dpop+jwt', jwk: rawJwk }, proofClaims(), ecSigner(raw.privateKey))],
  ['alg RS256 over an EC jwk', async () => rawToken({ alg: 'RS256', typ: 'dpop+jwt', jwk: rawJwk }, proofClaims(), ecSigner(raw.privateKey))],
  ['a jwk carrying the private key (d)', async () => proofFor({ header: { jwk: await exportJWK(key.privateKey) } })],
  ['a symmetric jwk (kty oct) with an asymmetric alg', async () => rawToken({ alg: 'ES256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: 'AAAA' } }, proofClaims(), ecSigner(raw.privateKey))],
  ['a jwk of kty oct without k', async () => rawToken({ alg: 'ES256', typ: 'dpop+jwt', jwk: { kty: 'oct' } }, proofClaims(), ecSigner(raw.privateKey))],
  ['no jwk', () => proofFor({ header: { jwk: undefined } })],
  ['the bound key\'s jwk over another key\'s signature', async () => rawToken({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk }, proofClaims(), ecSigner(raw.privateKey))],
  ['no jti', () => proofFor({ claims: { jti: undefined } })],
  ['an empty jti', () => proofFor({ claims: { jti: '' } })],
  ['a jti longer than 256 characters', () => proofFor({ claims: { jti: 'j'.repeat(257) } })],
  ['no htm', () => proofFor({ claims: { htm: undefined } })],
  ['htm POST for a GET', () => proofFor({ htm: 'POST' })],
  ['htm "get" in lower case', () => proofFor({ htm: 'get' })],
  ['no htu', () => proofFor({ claims: { htu: undefined } })],
  ['htu on another host', () => proofFor({ htu: 'http://evil.example/api/me' })],
  ['htu with another scheme', () => proofFor({ htu: 'https://localhost/api/me' })],
  ['htu with another port', () => proofFor({ htu: 'http://localhost:8080/api/me' })],
  ['htu with a trailing slash', () => proofFor({ htu: '/api/me/' })],
  ['htu of another route', () => proofFor({ htu: '/auth/sessions' })],
  ['htu that is not a URL', () => proofFor({ claims: { htu: '/api/me' } })],
  ['no ath for a bound token', () => proofFor({ token: undefined })],
  ['ath of another access token', () => proofFor({ token: `${token}x` })],
  ['ath with base64 padding', () => proofFor({ claims: { ath: `${ath(token)}=` } })],
  ['ath as hex of the same hash', () => proofFor({ claims: { ath: Buffer.from(ath(token), 'base64url').toString('hex') } })],
  ['iat 90 s in the past (window 60 s)', () => proofFor({ claims: { iat: now() - 90 } })],
  ['iat 90 s in the future', () => proofFor({ claims: { iat: now() + 90 } })],
  ['no iat', () => proofFor({ claims: { iat: undefined } })],
  ['an exp already past', () => proofFor({ claims: { exp: now() - 5 } })],
  ['a valid signature by a key other than the token\'s cnf', () => proofFor({}, otherKey)],
  ['padding past 8 KB', () => proofFor({ claims: { pad: 'p'.repeat(9000) } })]
]
for (const [what, make] of proofs) {
  t.test(`DPoP proof with ${what}`, async (t) => {
    assertProofRefused(t, await call(await make()))
  })
}

t.test('DPoP proof htu with a query and a fragment: ignored, as RFC 9449 section 4.3 says', async (t) => {
  t.equal((await call(await proofFor({ htu: `${ORIGIN}/api/me?admin=1#top` }))).statusCode, 200)
})

t.test('DPoP proof replayed on the same instance', async (t) => {
  const dpop = await proofFor()
  t.equal((await call(dpop)).statusCode, 200)
  assertProofRefused(t, await call(dpop))
})

t.test('DPoP proof replayed on another instance sharing the store', async (t) => {
  const dpop = await proofFor()
  t.equal((await call(dpop)).statusCode, 200)
  assertProofRefused(t, await call(dpop, { target: twin }))
})

t.test('DPoP proof sent twice in one request (two DPoP headers)', async (t) => {
  assertProofRefused(t, await call([await proofFor(), await proofFor()]))
})

t.test('bound token downgraded to Bearer without a proof', async (t) => {
  assertProofRefused(t, await call(undefined, { scheme: 'Bearer' }))
})

t.test('bound token downgraded to Bearer with a valid proof', async (t) => {
  assertProofRefused(t, await call(await proofFor(), { scheme: 'Bearer' }))
})

t.test('bound token under the DPoP scheme without a proof', async (t) => {
  assertProofRefused(t, await call(undefined))
})

t.test('bound token on a replay-guarded route with another key\'s proof: the one use is not spent', async (t) => {
  const transfer = async (signer: DpopKey) => await app.inject({
    method: 'POST',
    url: '/api/transfer',
    headers: { authorization: `DPoP ${token}`, dpop: await proof(signer, { htm: 'POST', htu: '/api/transfer', token }) },
    payload: { amount: 1 }
  })
  assertProofRefused(t, await transfer(otherKey))
  t.equal((await transfer(key)).statusCode, 200)
})

const refreshWith = async (refreshToken: string, dpop?: string) => await app.inject({
  method: 'POST', url: '/auth/refresh', headers: dpop === undefined ? {} : { dpop }, payload: { refresh_token: refreshToken }
})

t.test('refresh of a key-bound session with another key\'s proof', async (t) => {
  const pair = await dpopLogin()
  assertProofRefused(t, await refreshWith(pair.refresh_token, await proof(otherKey, { htm: 'POST', htu: '/auth/refresh' })))
  t.equal((await refreshWith(pair.refresh_token, await proof(key, { htm: 'POST', htu: '/auth/refresh' }))).statusCode, 200, 'the session is untouched')
})

t.test('refresh of a key-bound session without any proof', async (t) => {
  const pair = await dpopLogin()
  assertProofRefused(t, await refreshWith(pair.refresh_token))
})

t.test('login with a proof whose jwk carries the private key opens no session', async (t) => {
  const res = await app.inject({
    method: 'POST',
    url: '/auth/login',
    headers: { dpop: await proof(key, { htm: 'POST', htu: '/auth/login', header: { jwk: await exportJWK(key.privateKey) } }) },
    payload: { username: 'bob', password: 'bob-pass' }
  })
  assertProofRefused(t, res)
  t.same(await app.tokens.listSessions('bob'), [])
})

t.test('login with a replayed proof', async (t) => {
  const dpop = await proof(key, { htm: 'POST', htu: '/auth/login' })
  const login = () => app.inject({ method: 'POST', url: '/auth/login', headers: { dpop }, payload: { username: 'alice', password: 'alice-pass' } })
  t.equal((await login()).statusCode, 200)
  assertProofRefused(t, await login())
})

t.test('login with a raw proof signed by a node:crypto key binds to that key\'s thumbprint only', async (t) => {
  const rawProof = (htm: string, htu: string, extra: Record<string, unknown> = {}) =>
    rawToken({ alg: 'ES256', typ: 'dpop+jwt', jwk: rawJwk }, { htm, htu: `${ORIGIN}${htu}`, iat: now(), jti: randomUUID(), ...extra }, ecSigner(raw.privateKey))
  const res = await app.inject({ method: 'POST', url: '/auth/login', headers: { dpop: rawProof('POST', '/auth/login') }, payload: { username: 'alice', password: 'alice-pass' } })
  t.equal(res.statusCode, 200)
  const rawBound = res.json().access_token as string
  const claims = JSON.parse(Buffer.from(rawBound.split('.')[1], 'base64url').toString())
  t.equal(claims.cnf.jkt, await calculateJwkThumbprint(rawJwk as never, 'sha256'))
  t.equal((await call(rawProof('GET', '/api/me', { ath: ath(rawBound) }), { accessToken: rawBound })).statusCode, 200)
  assertProofRefused(t, await call(await proof(key, { htm: 'GET', htu: '/api/me', token: rawBound }), { accessToken: rawBound }))
})
