import fc from 'fast-check'
import t from 'tap'
import { bearer, login, me } from './helpers/app.js'
import { ContractBreach, announce, checkAnswer, checkRefused, fuzzApp, holds } from './helpers/fuzz.js'
import { anyJson, anyText, wellFormedText } from './helpers/fuzz-arbitraries.js'

/*
 * Path parameters and query strings: session ids, user ids and device ids of
 * every kind (they end up in Redis keys and record fields), and query strings
 * that must change nothing about authentication.
 */

announce(t, 'test/fuzz.paths.test.ts')

/**
 * A path segment as a client would send it: percent-encoded text, or raw
 * characters and broken escapes. Never '.' or '..' (nor %2E%2E): URL resolution removes
 * those (another route, not another parameter; an unknown route answers
 * Fastify's own 404, which has no `code`).
 */
const segment = fc.oneof(
  { weight: 4, arbitrary: wellFormedText(120).map(encodeURIComponent) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,80}$/) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%ZZ', '%E0%A4%A', '%00', '%2F', '.x', '%7B%7D', ':', '%7C', 'x'.repeat(101), '%25') }
).filter((text) => text !== '.' && text !== '..')

/** A query string: anything at all, the token among it (it must not be read from there). */
const query = fc.oneof(
  wellFormedText(80).map((text) => `?${encodeURIComponent(text)}=${encodeURIComponent(text)}`),
  anyText(40).map((text) => `?${text.replace(/[#\s]/g, '')}`),
  fc.constantFrom('?', '?&&', '?x=%ZZ', '?access_token=x', '??', '?device_id=', '?device_id=%00')
)

t.test('fuzz: path parameters and query strings', async (t) => {
  const app = await fuzzApp(t)
  const alice = await login(app, 'alice', { device_id: 'phone' })
  const bob = await login(app, 'bob', { device_id: 'phone' })
  const root = await login(app, 'root')

  await holds(t, 'DELETE /auth/sessions/:id ends none but the caller\'s own session', fc.asyncProperty(
    fc.oneof(segment, fc.constant(bob.session_id), fc.constant(root.session_id)),
    async (id) => {
      const res = await app.inject({ method: 'DELETE', url: `/auth/sessions/${id}`, headers: bearer(alice.access_token) })
      checkRefused(res, 'ending a session that is not the caller\'s')
      if (res.statusCode === 401) throw new ContractBreach(`the caller's token was refused: ${res.body}`)
    }))
  t.equal((await me(app, bob.access_token)).statusCode, 200, 'bob\'s session outlived every attempt to end it')
  t.equal((await me(app, alice.access_token)).statusCode, 200, 'and so did alice\'s')

  await holds(t, 'admin routes take any user id and device id without a server error', fc.asyncProperty(
    // root's own sessions and roles stay as they are: the admin token serves every case.
    segment.filter((id) => decodeSafely(id) !== 'root'),
    fc.option(segment.filter((device) => decodeSafely(device) !== 'phone')),
    fc.oneof(fc.record({ roles: fc.array(wellFormedText(70), { maxLength: 34 }) }), anyJson),
    async (user, device, body) => {
      const revoke = await app.inject({ method: 'POST', url: `/admin/users/${user}/revoke${device === null ? '' : `?device_id=${device}`}`, headers: bearer(root.access_token) })
      checkAnswer(revoke)
      const roles = await app.inject({ method: 'PUT', url: `/admin/users/${user}/roles`, headers: { ...bearer(root.access_token), 'content-type': 'application/json' }, payload: JSON.stringify(body) ?? '' })
      checkAnswer(roles)
      for (const res of [revoke, roles]) {
        if (res.statusCode === 401 || res.statusCode === 403) throw new ContractBreach(`the admin token was refused: ${res.body}`)
      }
    }))

  await holds(t, 'a query string changes nothing about who is authenticated', fc.asyncProperty(
    query, fc.constantFrom('/api/me', '/auth/sessions'),
    async (q, path) => {
      const withToken = await app.inject({ method: 'GET', url: `${path}${q}`, headers: bearer(root.access_token) })
      const error = checkAnswer(withToken)
      // A query Fastify cannot parse may be refused; the token never is.
      if (error !== undefined && withToken.statusCode === 401) throw new ContractBreach(`a query string made a genuine token fail: ${error.code}`)
      const without = await app.inject({ method: 'GET', url: `${path}${q}&access_token=${root.access_token}` })
      checkRefused(without, 'a token in the query string')
    }), 0.5)

  t.equal((await me(app, root.access_token)).statusCode, 200, 'the admin session is still live')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' } })).statusCode, 200, 'and logins still work')
})

/** The text a percent-encoded segment stands for, or itself when it is no valid encoding. */
function decodeSafely (text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
