import fc from 'fast-check'
import type { FastifyInstance, InjectOptions } from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import { TEST_SECRET, bearer, login, me } from './helpers/app.js'
import { ContractBreach, announce, checkAnswer, checkRefused, fuzzApp, holds } from './helpers/fuzz.js'
import {
  buildJwt, forgedJwt, headerSafe, headerText, mutate, mutations, payloadOf, sameJwt, serverSignedJwt, signedLikeTheServer
} from './helpers/fuzz-arbitraries.js'

/*
 * Authorization headers against every Bearer-protected route of the example
 * server: random text, mutations of genuine tokens, JWTs built from scratch
 * (signed with the server's own secret too), and scheme and whitespace
 * variants of a genuine token.
 */

announce(t, 'test/fuzz.tokens.test.ts')

interface Target { app: FastifyInstance, alice: string, aliceSid: string, root: string, rootSid: string }

async function target (t: Test, localCache: boolean): Promise<Target> {
  const app = await fuzzApp(t, { localCache })
  const alice = await login(app, 'alice')
  const root = await login(app, 'root')
  return { app, alice: alice.access_token, aliceSid: alice.session_id, root: root.access_token, rootSid: root.session_id }
}

/** Every route that takes a Bearer token, with what it needs besides; a forged token accepted on one of them would act as its user. */
function bearerRoutes (sid: string): Array<Omit<InjectOptions, 'headers'>> {
  return [
    { method: 'GET', url: '/api/me' },
    { method: 'GET', url: '/auth/sessions' },
    { method: 'POST', url: '/auth/logout' },
    { method: 'POST', url: '/auth/logout-all' },
    { method: 'DELETE', url: `/auth/sessions/${sid}` },
    { method: 'POST', url: '/auth/password', payload: { current_password: 'alice-pass', new_password: 'a-new-password' } },
    { method: 'POST', url: '/api/transfer', payload: { amount: 1 } },
    { method: 'POST', url: '/admin/users/bob/revoke' },
    { method: 'PUT', url: '/admin/users/bob/roles', payload: { roles: ['user'] } }
  ]
}

/**
 * Routes whose success ends no session: the only ones a token the server
 * could have signed is sent to (it may rightly be accepted, and the other
 * cases need the sessions live). An admin's role change to the same roles
 * changes nothing either.
 */
const SAFE_ROUTES: Array<Omit<InjectOptions, 'headers'>> = [
  { method: 'GET', url: '/api/me' },
  { method: 'GET', url: '/auth/sessions' },
  { method: 'POST', url: '/api/transfer', payload: { amount: 1 } },
  { method: 'PUT', url: '/admin/users/bob/roles', payload: { roles: ['user'] } }
]

/** RFC 6750 section 3 (and RFC 9449 section 7.1): a 401 from a protected route names its scheme. */
function checkChallenge (res: Awaited<ReturnType<FastifyInstance['inject']>>): void {
  if (res.statusCode === 401 && !/^(Bearer|DPoP)\b/.test(String(res.headers['www-authenticate']))) {
    throw new ContractBreach(`401 without a Bearer or DPoP challenge: ${res.body}`)
  }
}

const SCHEMES = fc.oneof(
  fc.constantFrom('Bearer', 'bearer', 'BEARER', 'BeArEr', 'DPoP', 'dpop', 'Basic', 'Token', 'Bearer:', ''),
  headerText(12)
)

t.test('fuzz: Authorization headers on Bearer routes', async (t) => {
  const targets = [await target(t, false), await target(t, true)]
  const routes = targets.map((x) => bearerRoutes(x.aliceSid))
  const which = fc.integer({ min: 0, max: targets.length - 1 })

  await holds(t, 'any header value is refused with the contract\'s error and challenge', fc.asyncProperty(
    which, fc.nat(), fc.oneof(headerText(), fc.tuple(SCHEMES, headerText()).map(([s, v]) => `${s} ${v}`)),
    async (i, route, authorization) => {
      const res = await targets[i].app.inject({ ...routes[i][route % routes[i].length], headers: { authorization } })
      checkRefused(res, 'a random Authorization header')
      checkChallenge(res)
    }))

  await holds(t, 'a mutated genuine token is refused on every route', fc.asyncProperty(
    which, fc.nat(), fc.boolean(), fc.constantFrom('Bearer', 'bearer', 'DPoP'), mutations,
    async (i, route, asRoot, scheme, edits) => {
      const { alice, root } = targets[i]
      const [genuine, donor] = asRoot ? [root, alice] : [alice, root]
      // Node trims a header value, and so does the token reader: a leading or
      // trailing blank is no mutation; nor are grafts that rebuild the donor.
      const presented = headerSafe(mutate(genuine, edits, donor)).trim()
      fc.pre(!sameJwt(presented, genuine) && !sameJwt(presented, donor))
      const res = await targets[i].app.inject({ ...routes[i][route % routes[i].length], headers: { authorization: `${scheme} ${presented}` } })
      checkRefused(res, 'a mutated token')
      checkChallenge(res)
    }))

  await holds(t, 'a JWT not signed as the server signs is refused on every route', fc.asyncProperty(
    which.chain((i) => fc.tuple(fc.constant(i), forgedJwt(payloadOf(targets[i].alice)))), fc.nat(),
    async ([i, forged], route) => {
      const { app, alice } = targets[i]
      const token = buildJwt(forged, TEST_SECRET, alice)
      // Other algorithms under the server's secret (HS512, none, ...) stay in;
      // the genuine header and claims under the genuine signature are no forgery.
      fc.pre(!signedLikeTheServer(forged) && !sameJwt(token, alice))
      const res = await app.inject({ ...routes[i][route % routes[i].length], headers: bearer(token) })
      checkRefused(res, `a token signed with ${forged.signing}`)
      checkChallenge(res)
    }))

  await holds(t, 'a JWT signed with the server\'s secret is accepted only for the live session it names', fc.asyncProperty(
    which.chain((i) => fc.tuple(fc.constant(i), fc.oneof(serverSignedJwt(payloadOf(targets[i].alice)), serverSignedJwt(payloadOf(targets[i].root))))),
    fc.nat(),
    async ([i, forged], route) => {
      const { app, alice, root, aliceSid, rootSid } = targets[i]
      const token = buildJwt(forged, TEST_SECRET, alice)
      fc.pre(!sameJwt(token, alice) && !sameJwt(token, root))
      const res = await app.inject({ ...SAFE_ROUTES[route % SAFE_ROUTES.length], headers: bearer(token) })
      checkChallenge(res)
      if (checkAnswer(res) !== undefined) return
      // Whoever holds the secret can mint tokens, but only for a session that is live.
      const claims = forged.payload.as === 'json' ? forged.payload.value as Record<string, unknown> : {}
      const live = (claims.sub === 'alice' && claims.sid === aliceSid) || (claims.sub === 'root' && claims.sid === rootSid)
      if (!live) throw new ContractBreach(`a token naming no live session was accepted: ${res.statusCode}`)
    }))

  await holds(t, 'a genuine token is read exactly under a case-insensitive Bearer scheme and one space', fc.asyncProperty(
    which, SCHEMES, fc.constantFrom(' ', '  ', '\t', '', ' \t', '\t '), fc.constantFrom('', ' ', '\t', '  '),
    async (i, scheme, gap, tail) => {
      const { app, alice } = targets[i]
      const header = `${scheme}${gap}${alice}${tail}`
      const space = header.indexOf(' ')
      const readable = space >= 0 && header.slice(0, space).toLowerCase() === 'bearer' && header.slice(space + 1).trim() === alice
      const res = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: header } })
      const error = checkAnswer(res)
      if (readable !== (error === undefined)) {
        throw new ContractBreach(`scheme ${JSON.stringify(scheme)}, gap ${JSON.stringify(gap)}: expected ${readable ? '200' : 'a refusal'}, got ${res.statusCode}`)
      }
    }))

  for (const { app, alice, root } of targets) {
    t.equal((await me(app, alice)).statusCode, 200, 'the app still answers a genuine token')
    t.equal((await app.inject({ method: 'PUT', url: '/admin/users/bob/roles', headers: bearer(root), payload: { roles: ['user'] } })).statusCode, 204, 'and an admin one')
  }
})
