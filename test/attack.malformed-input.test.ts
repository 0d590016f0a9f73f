import type { LightMyRequestResponse } from 'fastify'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { TEST_SECRET, bearer, exampleApp, login, me } from './helpers/app.js'
import { assertRefused } from './helpers/attack.js'
import { claimsOf, hmacSigner, rawToken } from './helpers/raw-token.js'

/*
 * Oversized and malformed input of every kind: each gets a 4xx with a stable
 * code (never a 500, never a 503), and whatever is stored comes back as sent.
 */

const app = await exampleApp(t, { sso: 'off', loginRateMax: 1000, refreshRateMax: 1000 })
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as AddressInfo).port
const alice = await login(app, 'alice')
const root = await login(app, 'root')
const withAuthorization = (authorization: string) => app.inject({ method: 'GET', url: '/api/me', headers: { authorization } })
const postJson = (url: string, payload: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...headers }, payload })
const loginWith = (fields: Record<string, unknown>) =>
  app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass', ...fields } })

/** One raw HTTP/1.1 exchange over a socket, for what an HTTP client library would not send. */
function rawRequest (head: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`${head}Host: localhost\r\nConnection: close\r\n\r\n`))
    let answer = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk) => { answer += chunk })
    socket.on('close', () => {
      const [statusLine, ...rest] = answer.split('\r\n')
      resolve({ status: Number(statusLine.split(' ')[1]), body: rest.join('\r\n').split('\r\n\r\n').slice(1).join('') })
    })
    socket.on('error', reject)
  })
}

// The Authorization header
t.test('a 64 KB bearer token', async (t) => {
  assertRefused(t, await withAuthorization(`Bearer ${'a'.repeat(65_536)}`), 401, 'AUTH_TOKEN_INVALID')
})

t.test('a 1 MB JWT-shaped token whose header segment is huge, under a forged signature', async (t) => {
  const huge = rawToken({ alg: 'HS256', pad: 'x'.repeat(750_000) }, claimsOf(alice.access_token), hmacSigner('not-the-server-secret'))
  assertRefused(t, await withAuthorization(`Bearer ${huge}`), 401, 'AUTH_TOKEN_INVALID')
})

t.test('over HTTP, an Authorization header past the 16 KB header limit is 431 from the HTTP parser, not a 500', async (t) => {
  const res = await rawRequest(`GET /api/me HTTP/1.1\r\nAuthorization: Bearer ${'a'.repeat(20_000)}\r\n`)
  t.equal(res.status, 431)
  // Answered by Fastify's client error handler, before any route: its body has no code.
  t.same(JSON.parse(res.body), { error: 'Request Header Fields Too Large', message: 'Exceeded maximum allowed HTTP header size', statusCode: 431 })
})

t.test('over HTTP, a NUL byte inside the Authorization header is 400 from the HTTP parser, not a 500', async (t) => {
  const res = await rawRequest(`GET /api/me HTTP/1.1\r\nAuthorization: Bearer ${alice.access_token}\u0000\r\n`)
  t.equal(res.status, 400)
  t.same(JSON.parse(res.body), { error: 'Bad Request', message: 'Client Error', statusCode: 400 })
})

t.test('over HTTP, two Authorization headers: the first counts, so a genuine second one gets nothing in', async (t) => {
  const res = await rawRequest(`GET /api/me HTTP/1.1\r\nAuthorization: Bearer not-a-token\r\nAuthorization: Bearer ${alice.access_token}\r\n`)
  t.equal(res.status, 401)
  t.equal(JSON.parse(res.body).code, 'AUTH_TOKEN_INVALID')
})

t.test('over HTTP, two Authorization headers: a junk second one does not spoil a genuine first', async (t) => {
  const res = await rawRequest(`GET /api/me HTTP/1.1\r\nAuthorization: Bearer ${alice.access_token}\r\nAuthorization: Bearer not-a-token\r\n`)
  t.equal(res.status, 200)
  t.equal(JSON.parse(res.body).user_id, 'alice')
})

t.test('two tokens joined by a comma in one header (what a proxy merging headers makes)', async (t) => {
  assertRefused(t, await withAuthorization(`Bearer ${alice.access_token}, Bearer ${alice.access_token}`), 401, 'AUTH_TOKEN_INVALID')
})

const missing: Array<[string, string]> = [
  ['an empty bearer ("Bearer ")', 'Bearer '],
  ['the scheme alone ("Bearer")', 'Bearer'],
  ['spaces only after the scheme', 'Bearer     '],
  ['a tab instead of the space', `Bearer\t${alice.access_token}`],
  ['the token without a scheme', alice.access_token],
  ['another scheme (Basic)', `Basic ${Buffer.from('alice:alice-pass').toString('base64')}`]
]
for (const [what, header] of missing) {
  t.test(`Authorization: ${what}`, async (t) => {
    const res = await withAuthorization(header)
    assertRefused(t, res, 401, 'AUTH_TOKEN_MISSING')
    t.equal(res.headers['www-authenticate'], 'Bearer', 'a bare challenge')
  })
}

for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
  t.test(`Authorization scheme spelled "${scheme}" (RFC 7235: case-insensitive)`, async (t) => {
    t.equal((await withAuthorization(`${scheme} ${alice.access_token}`)).statusCode, 200)
  })
}

const [h, p, s] = alice.access_token.split('.')
const malformed: Array<[string, string]> = [
  ['two segments', `${h}.${p}`],
  ['four segments', `${h}.${p}.${s}.${s}`],
  ['five segments (the shape of a JWE)', `${h}.${p}.${s}.${s}.${s}`],
  ['three empty segments', '..'],
  ['standard base64 characters in the header segment', `${h.slice(0, -2)}+/.${p}.${s}`],
  ['base64 padding on the signature', `${h}.${p}.${s}=`],
  ['segments that decode to something other than JSON', `${Buffer.from('not json').toString('base64url')}.${Buffer.from('nor this').toString('base64url')}.${s}`],
  ['a non-ASCII character inside the token', `${h}.${p}é.${s}`],
  ['a space inside the token', `${h}.${p} .${s}`],
  ['trailing text after the token', `${alice.access_token} extra`]
]
for (const [what, token] of malformed) {
  t.test(`a bearer token with ${what}`, async (t) => {
    assertRefused(t, await withAuthorization(`Bearer ${token}`), 401, 'AUTH_TOKEN_INVALID')
  })
}

// Bodies
t.test('a 2 MB login body', async (t) => {
  assertRefused(t, await postJson('/auth/login', JSON.stringify({ username: 'bob', password: 'x'.repeat(2_000_000) })), 413, 'FST_ERR_CTP_BODY_TOO_LARGE')
})

const nested = (depth: number, inner: string) => '['.repeat(depth) + inner + ']'.repeat(depth)
t.test('a username nested 100,000 arrays deep', async (t) => {
  assertRefused(t, await postJson('/auth/login', `{"username":${nested(100_000, '"bob"')},"password":"bob-pass"}`), 400, 'FST_ERR_VALIDATION')
})

t.test('an extra field nested 100,000 arrays deep, with __proto__ at the bottom', async (t) => {
  assertRefused(t, await postJson('/auth/login', `{"username":"bob","password":"bob-pass","x":${nested(100_000, '{"__proto__":{"admin":true}}')}}`), 400, 'FST_ERR_CTP_INVALID_JSON_BODY')
})

t.test('an extra field nested 50,000 objects deep, with constructor.prototype at the bottom', async (t) => {
  const deep = '{"a":'.repeat(50_000) + '{"constructor":{"prototype":{"admin":true}}}' + '}'.repeat(50_000)
  assertRefused(t, await postJson('/auth/login', `{"username":"bob","password":"bob-pass","x":${deep}}`), 400, 'FST_ERR_CTP_INVALID_JSON_BODY')
})

t.test('a __proto__ member at the top of the login body (prototype pollution)', async (t) => {
  assertRefused(t, await postJson('/auth/login', '{"username":"bob","password":"bob-pass","__proto__":{"roles":["admin"]}}'), 400, 'FST_ERR_CTP_INVALID_JSON_BODY')
  t.equal(({} as Record<string, unknown>).roles, undefined, 'no prototype was touched')
})

t.test('a constructor.prototype member at the top of the login body', async (t) => {
  assertRefused(t, await postJson('/auth/login', '{"username":"bob","password":"bob-pass","constructor":{"prototype":{"roles":["admin"]}}}'), 400, 'FST_ERR_CTP_INVALID_JSON_BODY')
})

t.test('truncated JSON', async (t) => {
  assertRefused(t, await postJson('/auth/login', '{"username":"bob","password":'), 400, 'FST_ERR_CTP_INVALID_JSON_BODY')
})

t.test('JSON followed by garbage', async (t) => {
  assertRefused(t, await postJson('/auth/login', '{"username":"bob","password":"bob-pass"}x'), 400, 'FST_ERR_CTP_INVALID_JSON_BODY')
})

t.test('a JSON array as the login body', async (t) => {
  assertRefused(t, await postJson('/auth/login', '[{"username":"bob","password":"bob-pass"}]'), 400, 'FST_ERR_VALIDATION')
})

t.test('a JSON string as the refresh body', async (t) => {
  assertRefused(t, await postJson('/auth/refresh', JSON.stringify('a-token')), 400, 'FST_ERR_VALIDATION')
})

t.test('a content type that only starts like JSON (application/jsonx)', async (t) => {
  assertRefused(t, await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/jsonx' }, payload: '{}' }), 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
})

const wrongTypes: Array<[string, string, Record<string, unknown>, Record<string, string>?]> = [
  ['a numeric username', '/auth/login', { username: 42, password: 'bob-pass' }],
  ['a null password', '/auth/login', { username: 'bob', password: null }],
  ['an object as device_id', '/auth/login', { username: 'bob', password: 'bob-pass', device_id: {} }],
  ['an array as device_name', '/auth/login', { username: 'bob', password: 'bob-pass', device_name: ['phone'] }],
  ['a boolean as device_type', '/auth/login', { username: 'bob', password: 'bob-pass', device_type: true }],
  ['a numeric refresh_token', '/auth/refresh', { refresh_token: 42 }],
  ['an object as refresh_token', '/auth/refresh', { refresh_token: { $ne: null } }],
  ['a string amount on the replay-guarded transfer', '/api/transfer', { amount: '100' }, bearer(alice.access_token)],
  ['a numeric new_password', '/auth/password', { current_password: 'alice-pass', new_password: 12345678 }, bearer(alice.access_token)]
]
for (const [what, url, body, headers] of wrongTypes) {
  t.test(`${what} (no type coercion)`, async (t) => {
    assertRefused(t, await postJson(url, JSON.stringify(body), headers), 400, 'FST_ERR_VALIDATION')
  })
}

// Unicode and NUL in user names and device fields
const lookalikes: Array<[string, string]> = [
  ['a trailing NUL', 'bob\u0000'],
  ['fullwidth letters', 'ｂｏｂ'],
  ['a combining mark', 'bo\u0301b'],
  ['a zero-width space', 'b\u200bob'],
  ['a right-to-left override', '\u202ebob']
]
for (const [what, username] of lookalikes) {
  t.test(`a login as "bob" with ${what} in the user name`, async (t) => {
    assertRefused(t, await loginWith({ username }), 401, 'AUTH_INVALID_CREDENTIALS')
  })
}

t.test('an empty user name', async (t) => {
  assertRefused(t, await loginWith({ username: '' }), 400, 'FST_ERR_VALIDATION')
})

t.test('a user name of 257 characters', async (t) => {
  assertRefused(t, await loginWith({ username: 'b'.repeat(257) }), 400, 'FST_ERR_VALIDATION')
})

t.test('a device name of 201 characters', async (t) => {
  assertRefused(t, await loginWith({ device_name: 'n'.repeat(201) }), 400, 'FST_ERR_VALIDATION')
})

t.test('device fields with NUL, record separators, escapes, newlines and emoji come back exactly as sent', async (t) => {
  const device = { device_id: 'id|%7C\u0000|', device_type: 't|y%25%', device_name: '📱 Ünï|%7C\u0000\n\r|' }
  const res = await loginWith(device)
  t.equal(res.statusCode, 200)
  const list = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(res.json().access_token) })
  const mine = list.json().sessions.find((s: { current: boolean }) => s.current)
  t.match(mine, device)
})

t.test('a device name of 100 emoji (200 UTF-16 units, 400 bytes) is stored whole', async (t) => {
  const res = await loginWith({ device_name: '📱'.repeat(100) })
  t.equal(res.statusCode, 200)
  const list = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(res.json().access_token) })
  t.equal(list.json().sessions.find((s: { current: boolean }) => s.current).device_name, '📱'.repeat(100))
})

t.test('a lone surrogate in a device name is stored as U+FFFD, not a 500', async (t) => {
  const res = await postJson('/auth/login', '{"username":"bob","password":"bob-pass","device_name":"\\ud800x"}')
  t.equal(res.statusCode, 200)
  const list = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(res.json().access_token) })
  t.equal(list.json().sessions.find((s: { current: boolean }) => s.current).device_name, '\ufffdx')
})

t.test('an admin revoking device "a|b" ends that device only, not device "a" (separators are escaped)', async (t) => {
  const piped = await loginWith({ device_id: 'a|b' })
  const plain = await loginWith({ device_id: 'a' })
  const res = await app.inject({ method: 'POST', url: `/admin/users/bob/revoke?device_id=${encodeURIComponent('a|b')}`, headers: bearer(root.access_token) })
  t.equal(res.statusCode, 204)
  assertRefused(t, await me(app, piped.json().access_token), 401, 'AUTH_SESSION_REVOKED')
  t.equal((await me(app, plain.json().access_token)).statusCode, 200)
})

// Path parameters
t.test('a NUL as the session id', async (t) => {
  assertRefused(t, await app.inject({ method: 'DELETE', url: '/auth/sessions/%00', headers: bearer(alice.access_token) }), 404, 'AUTH_SESSION_NOT_FOUND')
})

t.test('a session id of 65 characters', async (t) => {
  assertRefused(t, await app.inject({ method: 'DELETE', url: `/auth/sessions/${'s'.repeat(65)}`, headers: bearer(alice.access_token) }), 400, 'FST_ERR_VALIDATION')
})

t.test('a session id of 101 characters (past Fastify\'s default parameter length): the schema answers', async (t) => {
  assertRefused(t, await app.inject({ method: 'DELETE', url: `/auth/sessions/${'s'.repeat(101)}`, headers: bearer(alice.access_token) }), 400, 'FST_ERR_VALIDATION')
})

t.test('a session id of 10,000 characters: the schema answers', async (t) => {
  assertRefused(t, await app.inject({ method: 'DELETE', url: `/auth/sessions/${'s'.repeat(10_000)}`, headers: bearer(alice.access_token) }), 400, 'FST_ERR_VALIDATION')
})

t.test('over HTTP, a 20 KB session id in the URL is 431 from the HTTP parser, which bounds every path parameter', async (t) => {
  const res = await rawRequest(`DELETE /auth/sessions/${'s'.repeat(20_000)} HTTP/1.1\r\nAuthorization: Bearer ${alice.access_token}\r\n`)
  t.equal(res.status, 431)
})

t.test('a broken percent-encoding in the session id', async (t) => {
  assertRefused(t, await app.inject({ method: 'DELETE', url: '/auth/sessions/%E0%A4%A', headers: bearer(alice.access_token) }), 400, 'FST_ERR_BAD_URL')
})

t.test('an admin route can revoke a user whose id is as long as login accepts (256 characters)', async (t) => {
  const longName = 'l'.repeat(256)
  const session = await app.tokens.openSession({ userId: longName, claims: { roles: ['user'] } })
  t.equal((await app.inject({ method: 'POST', url: `/admin/users/${longName}/revoke`, headers: bearer(root.access_token) })).statusCode, 204)
  assertRefused(t, await me(app, session.tokens.access_token), 401, 'AUTH_SESSION_REVOKED')
})

t.test('an admin route with a user id of 257 characters', async (t) => {
  assertRefused(t, await app.inject({ method: 'POST', url: `/admin/users/${'u'.repeat(257)}/revoke`, headers: bearer(root.access_token) }), 400, 'FST_ERR_VALIDATION')
})

t.test('an admin role change with 33 roles', async (t) => {
  const res: LightMyRequestResponse = await app.inject({ method: 'PUT', url: '/admin/users/bob/roles', headers: bearer(root.access_token), payload: { roles: Array.from({ length: 33 }, (_, i) => `r${i}`) } })
  assertRefused(t, res, 400, 'FST_ERR_VALIDATION')
})

t.test('an admin role change with a numeric role', async (t) => {
  assertRefused(t, await app.inject({ method: 'PUT', url: '/admin/users/bob/roles', headers: bearer(root.access_token), payload: { roles: [1] } }), 400, 'FST_ERR_VALIDATION')
})
