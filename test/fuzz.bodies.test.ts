import fc from 'fast-check'
import type { FastifyInstance, InjectOptions } from 'fastify'
import t from 'tap'
import { bearer, login, me } from './helpers/app.js'
import { ContractBreach, announce, checkAnswer, checkRefused, fuzzApp, holds } from './helpers/fuzz.js'
import { anyJson, anyText, headerText, hugeText, poisonsPrototype, wellFormedText } from './helpers/fuzz-arbitraries.js'

/*
 * Login, password-change and device bodies: JSON values of every type,
 * unicode of every kind, strings up to the body limit. Logins that succeed
 * are bob's (the only demo pair the arbitraries can hit), so alice's session,
 * which the password cases use, stays live.
 */

announce(t, 'test/fuzz.bodies.test.ts')

/** Fastify's default body limit. */
const BODY_LIMIT = 1024 * 1024

/** The login schema's limits (token-lifecycle/routes.ts), counted as TypeBox counts: UTF-16 units. */
const LIMITS = { username: [1, 256], password: [0, 1024], device_id: [0, 200], device_type: [0, 64], device_name: [0, 200] } as const

/** A value for a string field limited to `max`: mostly strings about that long, sometimes far longer, sometimes no string at all. */
const field = (max: number) => fc.oneof(
  { weight: 4, arbitrary: anyText(max + 4) },
  { weight: 1, arbitrary: hugeText(max * 3) },
  { weight: 1, arbitrary: anyJson }
)

/** Some other member: any value, sometimes a string that brings the body near or past its limit. */
const extra = fc.oneof({ weight: 4, arbitrary: anyJson }, { weight: 1, arbitrary: hugeText(BODY_LIMIT + 1000) })

const loginBody = fc.record({
  username: fc.oneof(fc.constantFrom('bob', 'alice', 'root', 'BOB', 'bob ', ''), field(256)),
  // Never another demo user's password: their sessions stay as they are.
  password: fc.oneof(fc.constantFrom('bob-pass', 'Bob-pass', 'bob-pass ', ''), field(1024)),
  device_id: field(200),
  device_type: field(64),
  device_name: field(200),
  extra
}, { requiredKeys: [] })

/** Bodies that pass the schema, or nearly: they reach the credential check and the session store. */
const nearlyValidLogin = fc.record({
  username: fc.oneof(fc.constant('bob'), fc.constant('bob'), wellFormedText(256).filter((name) => name !== '')),
  password: fc.oneof(fc.constant('bob-pass'), fc.constant('bob-pass'), wellFormedText(1024)),
  device_id: wellFormedText(200),
  device_type: wellFormedText(64),
  device_name: wellFormedText(200)
}, { requiredKeys: ['username', 'password'] }).chain((body) => fc.oneof(
  { weight: 3, arbitrary: fc.constant(body) },
  // One field spoiled.
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...Object.keys(LIMITS)), field(300)).map(([name, value]) => ({ ...body, [name]: value })) }
))

type Sendable = { json: unknown } | { raw: string, type: string }

const rawBody = fc.record({
  raw: fc.oneof(anyText(200), fc.constantFrom('{', '{"username":"bob","password":"bob-pass"', '{"__proto__":{"x":1}}', 'null', '[]', '')),
  type: fc.oneof(fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data'), headerText(30))
})

function injection (url: string, body: Sendable, headers: Record<string, string> = {}): InjectOptions {
  return 'json' in body
    ? { method: 'POST', url, headers: { ...headers, 'content-type': 'application/json' }, payload: JSON.stringify(body.json) ?? '' }
    : { method: 'POST', url, headers: { ...headers, 'content-type': body.type }, payload: body.raw }
}

const fits = (value: unknown, [min, max]: readonly [number, number]) => typeof value === 'string' && value.length >= min && value.length <= max

/**
 * What a login body must get, where the contract says so: a 400 for a field
 * of the wrong type or length, 200 for bob's password, else a 401. Undefined
 * where Fastify refuses earlier (size, prototype keys).
 */
function expectedLogin (body: Record<string, unknown>, payload: string): string | undefined {
  if (Buffer.byteLength(payload) > BODY_LIMIT || poisonsPrototype(body)) return undefined
  const valid = fits(body.username, LIMITS.username) && fits(body.password, LIMITS.password) &&
    (['device_id', 'device_type', 'device_name'] as const).every((name) => body[name] === undefined || fits(body[name], LIMITS[name]))
  if (!valid) return 'FST_ERR_VALIDATION'
  return body.username === 'bob' && body.password === 'bob-pass' ? 'ok' : 'AUTH_INVALID_CREDENTIALS'
}

async function sessionsOf (app: FastifyInstance, token: string): Promise<Array<Record<string, unknown>>> {
  const res = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(token) })
  if (checkAnswer(res) !== undefined) throw new ContractBreach(`GET /auth/sessions refused a fresh token: ${res.statusCode}`)
  return res.json().sessions
}

t.test('fuzz: login, password and device bodies', async (t) => {
  const app = await fuzzApp(t)
  const byType = await fuzzApp(t, { sso: 'device-type' })
  const alice = await login(app, 'alice')

  await holds(t, 'a login body gets 200 only for the right password, a 400 for a bad field, else a 401', fc.asyncProperty(
    fc.oneof(
      { weight: 3, arbitrary: nearlyValidLogin.map((json): Sendable => ({ json })) },
      { weight: 3, arbitrary: loginBody.map((json): Sendable => ({ json })) },
      { weight: 1, arbitrary: anyJson.map((json): Sendable => ({ json })) },
      { weight: 1, arbitrary: rawBody }
    ),
    async (body) => {
      const options = injection('/auth/login', body)
      const res = await app.inject(options)
      const error = checkAnswer(res)
      const json = 'json' in body ? body.json : undefined
      if (typeof json !== 'object' || json === null || Array.isArray(json)) {
        if (error === undefined) throw new ContractBreach(`a login without an object body was accepted: ${res.statusCode}`)
        return
      }
      const expected = expectedLogin(json as Record<string, unknown>, options.payload as string)
      if (expected === undefined) {
        if (error === undefined) throw new ContractBreach(`an oversized or poisoned login body was accepted: ${res.statusCode}`)
      } else if ((error?.code ?? 'ok') !== expected) {
        throw new ContractBreach(`expected ${expected}, got ${res.statusCode} ${error?.code ?? ''}`)
      }
    }))

  await holds(t, 'device fields within their limits come back unchanged in the session list', fc.asyncProperty(
    fc.record({ device_id: wellFormedText(200), device_type: wellFormedText(64), device_name: wellFormedText(200) }, { requiredKeys: [] }),
    async (device) => {
      const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass', ...device } })
      if (checkAnswer(res) !== undefined) throw new ContractBreach(`a valid login was refused: ${res.statusCode}`)
      const listed = await sessionsOf(app, res.json().access_token)
      // SSO 'single': bob's one session is this one.
      const expected = { device_id: device.device_id || null, device_type: device.device_type || 'unknown', device_name: device.device_name || null }
      const got = listed.map(({ device_id: id, device_type: type, device_name: name }) => ({ device_id: id, device_type: type, device_name: name }))
      if (JSON.stringify(got) !== JSON.stringify([expected])) {
        throw new ContractBreach(`listed ${JSON.stringify(got)}, expected ${JSON.stringify([expected])}`)
      }
    }))

  await holds(t, 'under the device-type policy a login replaces exactly the sessions of its device type', fc.asyncProperty(
    fc.oneof(wellFormedText(64), fc.constant(undefined)), fc.oneof(wellFormedText(64), fc.constant(undefined)),
    async (first, second) => {
      const a = await byType.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass', device_type: first } })
      const b = await byType.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass', device_type: second } })
      if (checkAnswer(a) !== undefined || checkAnswer(b) !== undefined) throw new ContractBreach('a valid login was refused')
      const token = b.json().access_token
      // As sets: two logins in the same millisecond are listed in session id order.
      const listed = (await sessionsOf(byType, token)).map((s) => s.session_id).sort()
      const same = (first || 'unknown') === (second || 'unknown')
      const expected = (same ? [b.json().session_id] : [a.json().session_id, b.json().session_id]).sort()
      // Leave bob with no session for the next case.
      checkAnswer(await byType.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(token) }))
      if (JSON.stringify(listed) !== JSON.stringify(expected)) {
        throw new ContractBreach(`types ${JSON.stringify(first)} then ${JSON.stringify(second)}: ${listed.length} sessions listed, expected ${expected.length}`)
      }
    }), 0.5)

  await holds(t, 'a password-change body never changes a password it does not know', fc.asyncProperty(
    fc.oneof(
      { weight: 4, arbitrary: fc.record({ current_password: field(1024), new_password: field(1024), extra }, { requiredKeys: [] }).map((json): Sendable => ({ json })) },
      { weight: 1, arbitrary: anyJson.map((json): Sendable => ({ json })) },
      { weight: 1, arbitrary: rawBody }
    ),
    async (body) => {
      const res = await app.inject(injection('/auth/password', body, bearer(alice.access_token)))
      const { code } = checkRefused(res, 'a password change without the current password')
      if (res.statusCode === 401) throw new ContractBreach(`a wrong password change ended the session: ${code}`)
    }))

  t.equal((await me(app, alice.access_token)).statusCode, 200, 'alice\'s session is still live')
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'alice-pass' } })
  t.equal(res.statusCode, 200, 'and her password is unchanged')
})
