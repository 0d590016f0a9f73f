import type { FastifyInstance } from 'fastify'
import { createHmac } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import { TEST_SECRET, bearer, exampleApp, login } from './helpers/app.js'

/*
 * Access tokens whose exp, iat or nbf is no usable NumericDate (RFC 7519
 * section 2), signed with the test app's own secret. Signed over raw JSON
 * text, so that a claim can be what JSON.stringify never writes: 1e309 is
 * valid JSON that JSON.parse reads as Infinity.
 */

const b64 = (text: string) => Buffer.from(text).toString('base64url')
const HEADER = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))

/** The token's claims with `members` (raw JSON text, say `"exp":1e309`) in place of the claims they name. */
function rawToken (claims: Record<string, unknown>, members: Record<string, string>): string {
  const kept = Object.fromEntries(Object.entries(claims).filter(([name]) => !(name in members)))
  const extra = Object.entries(members).map(([name, raw]) => `${JSON.stringify(name)}:${raw}`).join(',')
  const body = b64(JSON.stringify(kept).slice(0, -1) + ',' + extra + '}')
  const signature = createHmac('sha256', TEST_SECRET).update(`${HEADER}.${body}`).digest('base64url')
  return `${HEADER}.${body}.${signature}`
}

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as Record<string, unknown>

/** A live session's claims: a token made from them fails for its NumericDates or not at all. */
async function liveClaims (app: FastifyInstance, username: string) {
  return claimsOf((await login(app, username)).access_token)
}

async function transfer (app: FastifyInstance, token: string) {
  return await app.inject({ method: 'POST', url: '/api/transfer', headers: bearer(token), payload: { amount: 1 } })
}

function isInvalid (t: Test, res: Awaited<ReturnType<FastifyInstance['inject']>>, what: string) {
  t.equal(res.statusCode, 401, what)
  t.equal(res.json().code, 'AUTH_TOKEN_INVALID', what)
}

t.test('a token signed with the test secret over raw JSON is accepted as it stands (the cases below fail for their claims only)', async (t) => {
  const app = await exampleApp(t)
  const claims = await liveClaims(app, 'alice')
  const token = rawToken(claims, { exp: String(claims.exp) })
  t.equal((await app.inject({ url: '/api/me', headers: bearer(token) })).statusCode, 200)
  t.equal((await transfer(app, token)).statusCode, 200)
})

t.test('exp, iat or nbf that is not a finite NumericDate in [0, 253402300799] is AUTH_TOKEN_INVALID, on plain and guarded routes', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const claims = await liveClaims(app, 'alice')
  const now = Math.floor(Date.now() / 1000)
  const cases: Array<Record<string, string>> = [
    { exp: '1e309' }, // Infinity: would never expire
    { exp: '1e20' },
    { exp: '253402300800' }, // one second past the end of year 9999
    { iat: '1e309' },
    { iat: '1e20' },
    { iat: '-1' },
    { nbf: '-1e309' }, // -Infinity: "valid since forever"
    { nbf: '1e309' },
    { nbf: '"NaN"' },
    { nbf: '-1' },
    { exp: '"1e309"' }
  ]
  for (const members of cases) {
    const what = JSON.stringify(members)
    const token = rawToken({ ...claims, iat: now }, members)
    isInvalid(t, await app.inject({ url: '/api/me', headers: bearer(token) }), `${what} on /api/me`)
    isInvalid(t, await transfer(app, token), `${what} on a guarded route`)
  }
})

t.test('the largest NumericDate (end of year 9999) and fractional ones are valid, on plain and guarded routes', async (t) => {
  const app = await exampleApp(t, { sso: 'off' })
  const now = Math.floor(Date.now() / 1000)
  const cases: Array<Record<string, string>> = [
    { exp: '253402300799' },
    // Not on a whole millisecond: the guarded route's one-time key TTL would not be an integer.
    { exp: String(now + 60.0005) },
    { iat: String(now - 0.25), nbf: String(now - 0.25), exp: String(now + 30.5) }
  ]
  for (const members of cases) {
    const what = JSON.stringify(members)
    const token = rawToken(await liveClaims(app, 'alice'), members)
    t.equal((await app.inject({ url: '/api/me', headers: bearer(token) })).statusCode, 200, `${what} on /api/me`)
    t.same((await transfer(app, token)).json(), { ok: true }, `${what} on a guarded route`)
    t.equal((await transfer(app, token)).json().code, 'AUTH_TOKEN_REPLAYED', `${what} is spent there`)
  }
})
