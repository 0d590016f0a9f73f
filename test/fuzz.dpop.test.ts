import fc from 'fast-check'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import { login } from './helpers/app.js'
import { ath, dpopKey, proof } from './helpers/dpop.js'
import type { DpopKey } from './helpers/dpop.js'
import { ContractBreach, announce, checkAnswer, checkRefused, fuzzApp, holds } from './helpers/fuzz.js'
import { anyJson, anyText, headerSafe, headerText, mutate, mutations, sameJwt } from './helpers/fuzz-arbitraries.js'
import { refresh } from './helpers/refresh.js'

/*
 * DPoP headers (RFC 9449) at login, refresh and on a protected route with a
 * key-bound token: random text, mutations of valid proofs, and proofs signed
 * with the right key whose claims and header members are drawn, checked
 * against a model of what a proof for the request must carry.
 */

announce(t, 'test/fuzz.dpop.test.ts')

/** The htu of every injected request: light-my-request's host, the default port dropped. */
const ORIGIN = 'http://localhost'

interface Setup {
  app: FastifyInstance
  key: DpopKey
  otherKey: DpopKey
  /** alice's session, bound to `key`. */
  bound: { access_token: string, refresh_token: string }
  /** bob's session, bound to no key. */
  unbound: { access_token: string }
}

async function setup (t: Test): Promise<Setup> {
  const app = await fuzzApp(t)
  const key = await dpopKey()
  const otherKey = await dpopKey('EdDSA')
  const res = await app.inject({
    method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'alice-pass' },
    headers: { dpop: await proof(key, { htm: 'POST', htu: '/auth/login' }) }
  })
  if (res.statusCode !== 200) throw new Error(`DPoP login failed: ${res.statusCode}`)
  return { app, key, otherKey, bound: res.json(), unbound: await login(app, 'bob') }
}

type Place = 'login' | 'refresh' | 'bound' | 'unbound'
const PLACES: Place[] = ['login', 'refresh', 'bound', 'unbound']

/** A request at one of the places a proof is read, carrying `dpop`; none of them may succeed with a bad proof. */
function request (s: Setup, place: Place, dpop: string | undefined): InjectOptions {
  const headers: Record<string, string> = dpop === undefined ? {} : { dpop }
  switch (place) {
    case 'login': return { method: 'POST', url: '/auth/login', headers, payload: { username: 'bob', password: 'bob-pass' } }
    case 'refresh': return { method: 'POST', url: '/auth/refresh', headers, payload: { refresh_token: s.bound.refresh_token } }
    case 'bound': return { method: 'GET', url: '/api/me', headers: { ...headers, authorization: `DPoP ${s.bound.access_token}` } }
    case 'unbound': return { method: 'GET', url: '/api/me', headers: { ...headers, authorization: `Bearer ${s.unbound.access_token}` } }
  }
}

/** A valid proof for the request made at `place`. */
async function validProof (s: Setup, place: Place): Promise<string> {
  switch (place) {
    case 'login': return await proof(s.key, { htm: 'POST', htu: '/auth/login' })
    case 'refresh': return await proof(s.key, { htm: 'POST', htu: '/auth/refresh' })
    case 'bound': return await proof(s.key, { htm: 'GET', htu: '/api/me', token: s.bound.access_token })
    case 'unbound': return await proof(s.key, { htm: 'GET', htu: '/api/me', token: s.unbound.access_token })
  }
}

/** Seconds from now for a proof's iat: well inside the 60 s window, or well outside it, never at its edge (the clock runs on). */
const iatOffset = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -40, max: 40 }) },
  // Fractions: a valid NumericDate (a fractional iat once answered 503, issue #13 defect 5).
  { weight: 2, arbitrary: fc.double({ min: -40, max: 40, noNaN: true }) },
  { weight: 1, arbitrary: fc.integer({ min: 80, max: 10 ** 9 }) },
  { weight: 1, arbitrary: fc.integer({ min: -(10 ** 9), max: -80 }) }
)

const HTUS = [
  '/api/me', '/api/me?x=1', '/api/me#frag', 'http://LOCALHOST/api/me', 'http://localhost:80/api/me', '/api/./me',
  'https://localhost/api/me', 'http://localhost:8080/api/me', '/api/me/', '/API/me', '/api/%6De', '/auth/login', 'localhost/api/me', ''
]

/** What a proof is made of, for a DPoP login of bob or for GET /api/me with the bound token. */
interface DrawnProof {
  place: 'login' | 'bound'
  htm: unknown
  htu: unknown
  ath: unknown
  iat: unknown
  jti: unknown
  exp: 'absent' | 'future' | 'past' | 'text'
  typ: string
  jwk: 'own' | 'other' | 'private' | 'absent'
  signer: 'key' | 'otherKey'
  replay: boolean
}

type Part = Exclude<keyof DrawnProof, 'place' | 'replay'>

/** Each part right: the proof a client would make. */
const RIGHT: Record<DrawnProof['place'], Pick<DrawnProof, Part>> = {
  bound: { htm: 'GET', htu: '/api/me', ath: 'right', iat: { offset: 0 }, jti: 'fresh', exp: 'absent', typ: 'dpop+jwt', jwk: 'own', signer: 'key' },
  login: { htm: 'POST', htu: '/auth/login', ath: 'absent', iat: { offset: 0 }, jti: 'fresh', exp: 'absent', typ: 'dpop+jwt', jwk: 'own', signer: 'key' }
}

/** What each part may be instead, right values among them. */
const PARTS: { [K in Part]: fc.Arbitrary<DrawnProof[K]> } = {
  htm: fc.oneof(fc.constantFrom('GET', 'get', 'POST', 'HEAD', ''), anyJson),
  htu: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...HTUS) }, { weight: 1, arbitrary: anyText(30) }, { weight: 1, arbitrary: anyJson }),
  ath: fc.oneof(fc.constantFrom('right', 'wrong', 'absent'), anyJson),
  iat: fc.oneof({ weight: 3, arbitrary: iatOffset.map((offset) => ({ offset })) }, { weight: 1, arbitrary: fc.constantFrom('now', null, 'absent') }),
  // Any jti that is a valid one is fresh: a drawn one could repeat a spent one.
  jti: fc.oneof(fc.constantFrom('fresh', 'fresh-256', '', 'absent', 'x'.repeat(257)), anyJson.filter((value) => typeof value !== 'string')),
  exp: fc.constantFrom('absent', 'future', 'past', 'text'),
  typ: fc.constantFrom('dpop+jwt', 'JWT', 'DPoP+JWT', 'absent'),
  jwk: fc.constantFrom('own', 'other', 'private', 'absent'),
  signer: fc.constantFrom('key', 'otherKey')
}

/** The right proof with up to three parts drawn anew: a third of the cases are acceptable, the rest differ in little. */
const drawnProof: fc.Arbitrary<DrawnProof> = fc.record({
  place: fc.constantFrom('login' as const, 'bound' as const),
  edits: fc.array(fc.constantFrom(...Object.keys(PARTS) as Part[]).chain((name) => fc.tuple(fc.constant(name), PARTS[name] as fc.Arbitrary<unknown>)), { maxLength: 3 }),
  replay: fc.boolean()
}).map(({ place, edits, replay }) => ({ ...RIGHT[place], ...Object.fromEntries(edits), place, replay }))

/**
 * Whether a proof so drawn must be accepted (RFC 9449 section 4.3): at login
 * any key proven will do; with the bound token only its key, and the proof
 * must carry the token's hash.
 */
function acceptable (d: DrawnProof): boolean {
  const absolute = typeof d.htu === 'string' && d.htu.startsWith('http') ? d.htu : `${ORIGIN}:80${String(d.htu)}`
  const htu = typeof d.htu === 'string' && URL.canParse(absolute) ? new URL(absolute) : null
  const [htm, path] = d.place === 'login' ? ['POST', '/auth/login'] : ['GET', '/api/me']
  const bindingHolds = d.place === 'login' || (d.ath === 'right' && d.signer === 'key')
  return d.htm === htm && htu !== null && htu.origin + htu.pathname === ORIGIN + path && bindingHolds &&
    typeof d.iat === 'object' && d.iat !== null && Math.abs((d.iat as { offset: number }).offset) <= 40 && (d.jti === 'fresh' || d.jti === 'fresh-256') &&
    (d.exp === 'absent' || d.exp === 'future') && d.typ === 'dpop+jwt' && d.jwk === 'own'
}

async function buildProof (s: Setup, d: DrawnProof): Promise<string> {
  const signer = d.signer === 'key' ? s.key : s.otherKey
  const now = Math.floor(Date.now() / 1000)
  const claims: Record<string, unknown> = {
    ath: d.ath === 'right' ? ath(s.bound.access_token) : d.ath === 'wrong' ? ath(s.unbound.access_token) : d.ath === 'absent' ? undefined : d.ath,
    iat: typeof d.iat === 'object' && d.iat !== null ? now + (d.iat as { offset: number }).offset : d.iat === 'now' ? 'now' : d.iat === 'absent' ? undefined : d.iat,
    jti: d.jti === 'fresh' ? randomUUID() : d.jti === 'fresh-256' ? randomUUID().padEnd(256, '-') : d.jti === 'absent' ? undefined : d.jti,
    exp: d.exp === 'future' ? now + 3600 : d.exp === 'past' ? now - 3600 : d.exp === 'text' ? 'soon' : undefined
  }
  const jwk = d.jwk === 'own' ? signer.publicJwk : d.jwk === 'other' ? (d.signer === 'key' ? s.otherKey : s.key).publicJwk
    : d.jwk === 'private' ? { ...signer.publicJwk, d: 'AAAA' } : undefined
  return await proof(signer, {
    // proof() fills htm and htu in; other types are put in as claims.
    htm: typeof d.htm === 'string' ? d.htm : 'GET',
    htu: typeof d.htu === 'string' ? d.htu : '/api/me',
    claims: { ...claims, ...(typeof d.htm === 'string' ? {} : { htm: d.htm }), ...(typeof d.htu === 'string' ? {} : { htu: d.htu }) },
    header: { typ: d.typ === 'absent' ? undefined : d.typ, jwk }
  })
}

t.test('fuzz: DPoP proofs at login, refresh and on protected routes', async (t) => {
  const s = await setup(t)
  const place = fc.constantFrom(...PLACES)

  await holds(t, 'any DPoP header text is refused wherever a proof is read', fc.asyncProperty(
    place, fc.oneof(headerText(300), fc.tuple(headerText(40), headerText(40), headerText(40)).map((parts) => parts.join('.'))),
    async (where, dpop) => {
      const res = await s.app.inject(request(s, where, dpop))
      const { code } = checkRefused(res, `a random DPoP header at ${where}`)
      if (code !== 'AUTH_DPOP_INVALID') throw new ContractBreach(`a random DPoP header at ${where} got ${res.statusCode} ${code}`)
    }))

  await holds(t, 'a mutated valid proof is refused wherever a proof is read', fc.asyncProperty(
    place, mutations,
    async (where, edits) => {
      const genuine = await validProof(s, where)
      const donor = await validProof(s, where)
      const presented = headerSafe(mutate(genuine, edits, donor))
      // A graft of the donor's signature onto its own header and claims is the
      // donor: a valid proof. jose's decoder skips blanks in the signature: a
      // blank there spells the same proof (same jti: no replay either).
      fc.pre(!sameJwt(presented, genuine, true) && !sameJwt(presented, donor, true))
      checkRefused(await s.app.inject(request(s, where, presented)), `a mutated proof at ${where}`)
    }))

  await holds(t, 'a proof is accepted exactly when every part matches the request (and the bound key)', fc.asyncProperty(
    drawnProof,
    async (d) => {
      const dpop = await buildProof(s, d)
      const res = await s.app.inject(request(s, d.place, dpop))
      const error = checkAnswer(res)
      const expected = acceptable(d)
      if ((error === undefined) !== expected) {
        throw new ContractBreach(`expected ${expected ? 'acceptance' : 'a refusal'}, got ${res.statusCode} ${error?.code ?? ''}`)
      }
      if (expected && d.place === 'login' && res.json().token_type !== 'DPoP') throw new ContractBreach('a DPoP login issued no DPoP token')
      if (expected && d.replay) {
        const again = checkRefused(await s.app.inject(request(s, d.place, dpop)), 'a replayed proof')
        if (again.code !== 'AUTH_DPOP_INVALID') throw new ContractBreach(`a replayed proof got ${again.code}`)
      }
    }))

  // The bound session was never refreshed nor ended by any case.
  const next = await refresh(s.app, s.bound.refresh_token, { dpop: await validProof(s, 'refresh') })
  t.equal(next.statusCode, 200, 'the bound session still refreshes with a valid proof')
  const me = await s.app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `DPoP ${next.json().access_token}`, dpop: await proof(s.key, { htm: 'GET', htu: '/api/me', token: next.json().access_token }) } })
  t.equal(me.statusCode, 200, 'and its new access token works with a proof')
})
