import fc from 'fast-check'
import type { InjectOptions } from 'fastify'
import t from 'tap'
import { login, me } from './helpers/app.js'
import { ContractBreach, announce, checkAnswer, checkRefused, fuzzApp, holds } from './helpers/fuzz.js'
import { anyJson, anyText, headerText, hugeText, mutate, mutations, poisonsPrototype } from './helpers/fuzz-arbitraries.js'
import { exampleCodec, refresh } from './helpers/refresh.js'
import type { RefreshToken } from '../plugins/refresh-rotation/token.js'

/*
 * POST /auth/refresh: mutations of a genuine refresh token, bodies of every
 * shape, and tokens sealed with the server's own key for sessions it never
 * issued them to.
 */

announce(t, 'test/fuzz.refresh.test.ts')

/** Fastify's default body limit: bodies up to it are parsed, larger ones refused unread. */
const BODY_LIMIT = 1024 * 1024

/** What a refresh body may be: any JSON, a refresh_token of any type or size, text that is no JSON. */
const refreshBody: fc.Arbitrary<{ json: unknown } | { raw: string, type: string }> = fc.oneof(
  { weight: 3, arbitrary: fc.oneof(anyJson, anyText(2100), hugeText(BODY_LIMIT + 100)).map((token) => ({ json: { refresh_token: token } })) },
  { weight: 1, arbitrary: fc.record({ refresh_token: anyJson, extra: anyJson }, { requiredKeys: [] }).map((json) => ({ json })) },
  { weight: 1, arbitrary: anyJson.map((json) => ({ json })) },
  {
    weight: 1,
    arbitrary: fc.record({
      raw: fc.oneof(anyText(200), fc.constantFrom('{', '{"refresh_token":', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}', 'null', '')),
      type: fc.oneof(fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/JSON'), headerText(30))
    })
  }
)

function injectBody (body: { json: unknown } | { raw: string, type: string }): InjectOptions {
  if ('json' in body) {
    return { method: 'POST', url: '/auth/refresh', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body.json) ?? '' }
  }
  return { method: 'POST', url: '/auth/refresh', headers: { 'content-type': body.type }, payload: body.raw }
}

/** Byte length of a body as sent. */
const sizeOf = (options: InjectOptions) => Buffer.byteLength(options.payload as string)

/** Codes a refresh may refuse with when the token names a session (contract, "Refresh semantics"). */
const REFRESH_REFUSALS = ['AUTH_REFRESH_INVALID', 'AUTH_REFRESH_REUSED', 'AUTH_SESSION_EXPIRED', 'AUTH_SESSION_REPLACED', 'AUTH_SESSION_REVOKED']

t.test('fuzz: refresh tokens and bodies', async (t) => {
  const app = await fuzzApp(t)
  const alice = await login(app, 'alice')
  const bob = await login(app, 'bob')
  const codec = exampleCodec()

  await holds(t, 'a mutated genuine refresh token is AUTH_REFRESH_INVALID and leaves the session alone', fc.asyncProperty(
    mutations, fc.boolean(),
    async (edits, ofBob) => {
      const [genuine, donor] = ofBob ? [bob.refresh_token, alice.refresh_token] : [alice.refresh_token, bob.refresh_token]
      const forged = mutate(genuine, edits, donor)
      fc.pre(forged !== genuine && forged !== donor)
      const { code } = checkRefused(await refresh(app, forged), 'a mutated refresh token')
      if (code !== 'AUTH_REFRESH_INVALID') throw new ContractBreach(`a mutated refresh token disclosed ${code}`)
    }))

  await holds(t, 'any body is refused: a refresh_token that is no string is a 400, any other a 401', fc.asyncProperty(
    refreshBody,
    async (body) => {
      const options = injectBody(body)
      const res = await app.inject(options)
      const { code } = checkRefused(res, 'a random refresh body')
      if (!('json' in body) || sizeOf(options) > BODY_LIMIT) return
      // Fastify refuses prototype-poisoning keys before any schema sees them.
      if (code === 'FST_ERR_CTP_INVALID_JSON_BODY' && poisonsPrototype(body.json)) return
      const token = (body.json as { refresh_token?: unknown } | null)?.refresh_token
      const expected = typeof body.json === 'object' && body.json !== null && !Array.isArray(body.json) && typeof token === 'string'
        ? 'AUTH_REFRESH_INVALID'
        : 'FST_ERR_VALIDATION'
      if (code !== expected) throw new ContractBreach(`expected ${expected}, got ${res.statusCode} ${code}`)
    }))

  await holds(t, 'a token sealed with the server\'s key is refused unless it names an older generation of a live session', fc.asyncProperty(
    fc.record({
      // Naming a fresh session: what the forgery does to it (reuse ends it) harms no other case.
      forLiveSession: fc.boolean(),
      // Rotations of that session first: older generations reach the grace and reuse paths.
      rotations: fc.integer({ min: 0, max: 2 }),
      userId: fc.oneof(fc.constantFrom('bob', 'alice', 'root', ''), anyText(40)),
      sessionId: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), anyText(20)),
      generation: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 999_999_999_999_999 })),
      deadline: fc.oneof(
        fc.integer({ min: -60_000, max: 60_000 }).map((ms) => Date.now() + ms),
        fc.integer({ min: 0, max: 9_999_999_999_999_999 }),
        fc.constantFrom(0, 9_999_999_999_999_999, 2 ** 53)
      ),
      nonce: fc.uint8Array({ minLength: 32, maxLength: 32 })
    }),
    async (forged) => {
      let { userId, sessionId } = forged
      if (forged.forLiveSession) {
        // root's sessions only: alice's and bob's tokens serve the other properties.
        const live = await login(app, 'root')
        let current = live.refresh_token
        for (let i = 0; i < forged.rotations; i++) current = (await refresh(app, current)).json().refresh_token
        userId = 'root'
        sessionId = live.session_id
      }
      // The codec's own (private) sealing: no public call mints an arbitrary generation.
      const token = (codec['seal'] as (...args: unknown[]) => RefreshToken)(userId, sessionId, forged.generation, forged.deadline, Buffer.from(forged.nonce))
      // The server's clock reads after this one: a deadline past `before` may still be ahead for it.
      const before = Date.now()
      const res = await refresh(app, token.value)
      const error = checkAnswer(res)
      // Only the server can seal a token, and it does not compare older
      // generations with a digest: one of them, within the grace window, is
      // answered as the genuine one would be.
      const older = forged.forLiveSession && forged.generation <= forged.rotations && forged.deadline > before
      if (error === undefined && !older) throw new ContractBreach(`a sealed token of no issued session was accepted: ${res.statusCode}`)
      if (error !== undefined && !REFRESH_REFUSALS.includes(error.code)) throw new ContractBreach(`unexpected refusal ${res.statusCode} ${error.code}`)
    }))

  await holds(t, 'an access token or anything else in the Authorization header changes nothing about a refresh body', fc.asyncProperty(
    fc.oneof(headerText(), fc.constant(`Bearer ${alice.access_token}`)),
    async (authorization) => {
      const res = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { authorization }, payload: { refresh_token: alice.access_token } })
      const { code } = checkRefused(res, 'an access token as a refresh token')
      if (code !== 'AUTH_REFRESH_INVALID') throw new ContractBreach(`expected AUTH_REFRESH_INVALID, got ${code}`)
    }), 0.2)

  // The genuine tokens still work: no case changed their sessions.
  const next = await refresh(app, alice.refresh_token)
  t.equal(next.statusCode, 200, 'the genuine refresh token still rotates')
  checkAnswer(next)
  t.equal((await me(app, next.json().access_token)).statusCode, 200, 'and its new access token works')
})
