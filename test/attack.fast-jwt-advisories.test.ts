import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import refreshRotation from '../plugins/refresh-rotation/index.js'
import tokenLifecycle from '../plugins/token-lifecycle/index.js'
import type { JwtOptions } from '../plugins/token-lifecycle/index.js'
import { REDIS_URL, TEST_SECRET, exampleApp, login, pluginApp } from './helpers/app.js'
import { assertRefused, bearerGet } from './helpers/attack.js'
import { b64url, claimsOf, hmacSigner, keyPair, rawToken } from './helpers/raw-token.js'

/*
 * The fast-jwt advisories, replayed end to end against this package's
 * configuration (algorithm pinned, our own verify cache): each case is what
 * the advisory's attacker tried, and the answer the contract gives it.
 */

const HS = { alg: 'HS256', typ: 'JWT' }

/** Registers token-lifecycle (and `extra`) on a throwaway app; resolves once it started, rejects when it refused to. */
async function boot (jwt: JwtOptions, extra?: (app: ReturnType<typeof Fastify>) => void): Promise<void> {
  const app = Fastify()
  try {
    await app.register(fastifyRedis, { url: REDIS_URL, enableOfflineQueue: false })
    await app.register(tokenLifecycle, { jwt, keyPrefix: `t:adv:${randomBytes(4).toString('hex')}` })
    extra?.(app)
    await app.ready()
  } finally {
    await app.close()
  }
}

const app = await exampleApp(t, { sso: 'off', loginRateMax: 1000 })
const alice = await login(app, 'alice')
const genuine = claimsOf(alice.access_token)
const serverSigned = hmacSigner(TEST_SECRET)

const rsa = keyPair('RS256')
const pkcs1Pem = rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }) as string
const rsaApp = await pluginApp(t, { jwt: { algorithm: 'RS256', privateKey: rsa.privatePem, publicKey: pkcs1Pem } }, (app) => {
  app.get('/p', { onRequest: app.authenticate }, async (request) => ({ sub: request.auth!.userId }))
})
const rsaClaims = claimsOf((await rsaApp.tokens.openSession({ userId: 'kc' })).tokens.access_token)

t.test('CVE-2023-48223: HS256 signed with the PKCS#1 PEM ("BEGIN RSA PUBLIC KEY") an RS256 server verifies with', async (t) => {
  assertRefused(t, await bearerGet(rsaApp, '/p', rawToken(HS, rsaClaims, hmacSigner(pkcs1Pem))), 401, 'AUTH_TOKEN_INVALID')
})

t.test('CVE-2023-48223: HS256 signed with that PEM behind leading whitespace', async (t) => {
  assertRefused(t, await bearerGet(rsaApp, '/p', rawToken(HS, rsaClaims, hmacSigner(`\n  ${pkcs1Pem}`))), 401, 'AUTH_TOKEN_INVALID')
})

t.test('CVE-2023-48223: HS256 signed with the exact text of a public key configured behind leading whitespace', async (t) => {
  const padded = `  \n${rsa.publicPem}`
  const paddedApp = await pluginApp(t, { jwt: { algorithm: 'RS256', privateKey: rsa.privatePem, publicKey: padded } }, (app) => {
    app.get('/p', { onRequest: app.authenticate }, async (request) => ({ sub: request.auth!.userId }))
  })
  const { tokens } = await paddedApp.tokens.openSession({ userId: 'kc' })
  t.equal((await bearerGet(paddedApp, '/p', tokens.access_token)).statusCode, 200, 'the server works with that key')
  assertRefused(t, await bearerGet(paddedApp, '/p', rawToken(HS, claimsOf(tokens.access_token), hmacSigner(padded))), 401, 'AUTH_TOKEN_INVALID')
})

const ec = keyPair('ES256')
const ed = keyPair('EdDSA')
const rsaBody = rsa.publicPem.split('\n').filter((line) => line !== '' && !line.startsWith('-----')).join('\n')
const rsaJwk = rsa.publicKey.export({ format: 'jwk' })
const keyMaterialSecrets: Array<[string, string | Buffer]> = [
  ['CVE-2023-48223: an RSA public key PEM as the HS256 secret', rsa.publicPem],
  ['CVE-2023-48223: a PKCS#1 RSA public key PEM as the HS256 secret', pkcs1Pem],
  ['CVE-2023-48223: a public key PEM behind leading whitespace as the HS256 secret', `\n\t ${rsa.publicPem}`],
  ['GHSA-ww5h-9m49-7xx4: a public key PEM behind non-whitespace bytes as the HS256 secret', `\u200b#key\n${rsa.publicPem}`],
  ['an EC public key PEM as the HS256 secret', ec.publicPem],
  ['the base64 body of a public key PEM, without its header lines, as the HS256 secret', rsaBody],
  ['that body on one line as the HS256 secret', rsaBody.replace(/\n/g, '')],
  ['the DER bytes of a public key as the HS256 secret', rsa.publicKey.export({ type: 'spki', format: 'der' })],
  ['GHSA-g3jj-5cmm-3hxx: a public JWK as JSON as the HS256 secret', JSON.stringify(rsaJwk)],
  ['GHSA-g3jj-5cmm-3hxx: a JWK Set as JSON as the HS256 secret', JSON.stringify({ keys: [ed.publicKey.export({ format: 'jwk' })] })],
  ['GHSA-g3jj-5cmm-3hxx: a bare array of JWKs as the HS256 secret', `  ${JSON.stringify([ec.publicKey.export({ format: 'jwk' })])}`],
  ['a private key PEM (an RS256 set-up configured as HS256) as the HS256 secret', ed.privatePem]
]
for (const [name, secret] of keyMaterialSecrets) {
  t.test(`${name} refuses to start`, async (t) => {
    await t.rejects(boot({ secret }), /jwt\.secret is a key of a key pair \(PEM, DER or JWK\)/)
  })
}

t.test('a public key PEM as the refresh-token secret refuses to start', async (t) => {
  await t.rejects(boot({ algorithm: 'ES256', privateKey: ec.privatePem, publicKey: ec.publicPem }, (app) => {
    app.register(refreshRotation, { secret: ec.publicPem, loadClaims: async () => ({}) })
  }), /refresh-rotation: secret is a key of a key pair/)
})

t.test('random secrets in every usual encoding still start (no false alarm)', async (t) => {
  const bytes = randomBytes(48)
  const hex = bytes.toString('hex')
  const secrets = [
    bytes, hex, bytes.toString('base64'), bytes.toString('base64url'), TEST_SECRET, `correct horse battery staple! ${hex}`,
    // JSON-looking secrets that hold no key.
    `{${hex}`, JSON.stringify({ a: hex }), JSON.stringify({ keys: [hex] }), JSON.stringify([null, 1, hex])
  ]
  for (const secret of secrets) await t.resolves(boot({ secret }))
})

t.test('GHSA-g3jj-5cmm-3hxx: an RS256 server given a JWK as JSON for its public key refuses to start', async (t) => {
  await t.rejects(boot({ algorithm: 'RS256', privateKey: rsa.privatePem, publicKey: JSON.stringify(rsaJwk) }))
})

t.test('GHSA-g3jj-5cmm-3hxx: HS256 signed with the JWK JSON of the public key an RS256 server verifies with', async (t) => {
  assertRefused(t, await bearerGet(rsaApp, '/p', rawToken(HS, rsaClaims, hmacSigner(JSON.stringify(rsaJwk)))), 401, 'AUTH_TOKEN_INVALID')
})

const notObjects: Array<[string, string]> = [
  ['a JSON array of genuine claims', JSON.stringify([genuine])],
  ['a JSON string', '"alice"'],
  ['a JSON number', '42'],
  ['JSON null', 'null'],
  ['JSON true', 'true']
]
for (const [what, payload] of notObjects) {
  t.test(`a server-signed token whose payload is ${what} (fast-jwt #639)`, async (t) => {
    assertRefused(t, await bearerGet(app, '/api/me', rawToken(HS, payload, serverSigned)), 401, 'AUTH_TOKEN_INVALID')
  })
}

const { iat: _iat, ...withoutIat } = genuine
t.test('a server-signed token without iat (the contract: every access token carries iat)', async (t) => {
  const token = rawToken(HS, withoutIat, serverSigned)
  assertRefused(t, await bearerGet(app, '/api/me', token), 401, 'AUTH_TOKEN_INVALID')
  assertRefused(t, await bearerGet(app, '/api/me', token), 401, 'AUTH_TOKEN_INVALID')
})

t.test('a token without iat presented after its genuine twin was cached is not served the twin\'s entry', async (t) => {
  const twin = rawToken(HS, genuine, serverSigned)
  t.equal((await bearerGet(app, '/api/me', twin)).statusCode, 200, 'the twin verified and is cached')
  assertRefused(t, await bearerGet(app, '/api/me', rawToken(HS, withoutIat, serverSigned)), 401, 'AUTH_TOKEN_INVALID')
})

t.test('a token without iat refused first does not make its genuine twin fail', async (t) => {
  const own: Record<string, unknown> = { ...genuine, jti: 'twin-after-refusal' }
  const { iat: _, ...ownWithoutIat } = own
  assertRefused(t, await bearerGet(app, '/api/me', rawToken(HS, ownWithoutIat, serverSigned)), 401, 'AUTH_TOKEN_INVALID')
  const res = await bearerGet(app, '/api/me', rawToken(HS, own, serverSigned))
  t.equal(res.statusCode, 200)
  t.equal(res.json().user_id, 'alice')
})

t.test('GHSA-gmvf-9v4p-v8jc: a token MACed with an empty key', async (t) => {
  assertRefused(t, await bearerGet(app, '/api/me', rawToken(HS, genuine, hmacSigner(''))), 401, 'AUTH_TOKEN_INVALID')
})

t.test('GHSA-8wpc-h4q6-8fxv: an HS256 token with an empty signature segment', async (t) => {
  assertRefused(t, await bearerGet(app, '/api/me', rawToken(HS, genuine, '')), 401, 'AUTH_TOKEN_INVALID')
})

t.test('an empty HS256 secret (string) refuses to start', async (t) => {
  await t.rejects(boot({ secret: '' }), /jwt\.secret must be at least 32 bytes/)
})

t.test('an empty HS256 secret (Buffer) refuses to start', async (t) => {
  await t.rejects(boot({ secret: Buffer.alloc(0) }), /jwt\.secret must be at least 32 bytes/)
})

t.test('an empty refresh-token secret refuses to start', async (t) => {
  await t.rejects(boot({ secret: TEST_SECRET }, (app) => {
    app.register(refreshRotation, { secret: '', loadClaims: async () => ({}) })
  }), /refresh-rotation: secret must be at least 32 bytes/)
})

t.test('an empty private key refuses to start (instead of starting as an instance that cannot sign)', async (t) => {
  await t.rejects(boot({ algorithm: 'EdDSA', privateKey: '', publicKey: ed.publicPem }), /jwt\.privateKey is empty/)
  await t.rejects(boot({ algorithm: 'EdDSA', privateKey: Buffer.alloc(0), publicKey: ed.publicPem }), /jwt\.privateKey is empty/)
  await t.resolves(boot({ algorithm: 'EdDSA', publicKey: ed.publicPem }), 'left out: a verify-only instance')
})

t.test('an empty public key refuses to start', async (t) => {
  await t.rejects(boot({ algorithm: 'ES256', privateKey: ec.privatePem, publicKey: '' }), /jwt\.publicKey is required for ES256/)
})

t.test('fast-jwt #606: a server-signed token whose payload segment is standard base64 with padding', async (t) => {
  // '>>>' and '???' put '+' and '/' into standard base64; the length forces padding.
  const payload = JSON.stringify({ ...genuine, x: '>>>???' })
  const std = Buffer.from(payload).toString('base64')
  t.match(std, /[+/=]/, 'the segment really is not base64url')
  const input = `${b64url(JSON.stringify(HS))}.${std}`
  assertRefused(t, await bearerGet(app, '/api/me', `${input}.${b64url(serverSigned(input))}`), 401, 'AUTH_TOKEN_INVALID')
})

t.test('fast-jwt #606: a server-signed token with a line break inside its header segment', async (t) => {
  const header = b64url(JSON.stringify(HS))
  const input = `${header.slice(0, 10)}\n${header.slice(10)}.${b64url(JSON.stringify(genuine))}`
  assertRefused(t, await bearerGet(app, '/api/me', `${input}.${b64url(serverSigned(input))}`), 401, 'AUTH_TOKEN_INVALID')
})

t.test('GHSA-rp9m-7r4c-75qg: two users\' genuine tokens never share a verify cache entry', async (t) => {
  const bob = await login(app, 'bob')
  for (const [token, user] of [[alice.access_token, 'alice'], [bob.access_token, 'bob'], [alice.access_token, 'alice'], [bob.access_token, 'bob']]) {
    t.equal((await bearerGet(app, '/api/me', token)).json().user_id, user)
  }
})

t.test('the spare bits of the signature respelled: the same token to the replay guard, which already spent it', async (t) => {
  const { access_token: token } = await login(app, 'alice')
  const transfer = (bearerToken: string) => app.inject({ method: 'POST', url: '/api/transfer', headers: { authorization: `Bearer ${bearerToken}` }, payload: { amount: 1 } })
  t.equal((await transfer(token)).statusCode, 200)
  // HS256 signatures are 32 bytes: 43 characters, whose last one carries 2 spare bits.
  const last = token.at(-1)!
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const respelled = token.slice(0, -1) + alphabet[alphabet.indexOf(last) ^ 1]
  t.not(respelled, token)
  assertRefused(t, await transfer(respelled), 401, 'AUTH_TOKEN_REPLAYED')
})
