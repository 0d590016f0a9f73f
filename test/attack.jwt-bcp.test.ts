import type { LightMyRequestResponse } from 'fastify'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { TEST_SECRET, exampleApp, login } from './helpers/app.js'
import type { AsymmetricAlg } from './helpers/attack.js'
import { assertRefused, bearerGet, keyPairApp, publicKeyEncodings } from './helpers/attack.js'
import { ath, dpopKey, proof } from './helpers/dpop.js'
import { refresh } from './helpers/refresh.js'
import { b64url, claimsOf, ecSigner, edSigner, hmacSigner, keyPair, rawToken, rsaSigner } from './helpers/raw-token.js'

/*
 * RFC 8725 (JSON Web Token Best Current Practices), as an attacker reads it:
 * every token below is refused with the contract's code, or, where it is the
 * server's own signature, read the one way every component reads it.
 */

const app = await exampleApp(t, { sso: 'off', loginRateMax: 1000, refreshRateMax: 1000 })
const alice = await login(app, 'alice')
const genuine = claimsOf(alice.access_token)
const serverSigned = hmacSigner(TEST_SECRET)
const attackerSecret = 'attacker-secret-attacker-secret-0123456789'
const attackerKeys = keyPair('RS256')
const me = (token: string) => bearerGet(app, '/api/me', token)
const HS = { alg: 'HS256', typ: 'JWT' }

// Every server is built before the first test: tap's root test ends once its queue runs dry.
const keyPairServers: Array<[AsymmetricAlg, Awaited<ReturnType<typeof keyPairApp>>]> = []
for (const alg of ['RS256', 'ES256', 'EdDSA'] as AsymmetricAlg[]) keyPairServers.push([alg, await keyPairApp(t, alg)])
const esServer = keyPairServers[1][1]

const attackerHost = createServer((_request, response) => {
  fetched++
  response.end(JSON.stringify({ keys: [attackerKeys.publicKey.export({ format: 'jwk' })] }))
})
let fetched = 0
await new Promise<void>((resolve) => attackerHost.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise((resolve) => attackerHost.close(resolve)))
const attackerUrl = `http://127.0.0.1:${(attackerHost.address() as AddressInfo).port}`
const rsServer = keyPairServers[0][1]
const rsClaims = claimsOf(rsServer.token)
const attackerRs = rsaSigner(attackerKeys.privateKey)
const attackerJwk = attackerKeys.publicKey.export({ format: 'jwk' })

t.test('control: the genuine token is accepted', async (t) => {
  t.equal((await me(alice.access_token)).statusCode, 200)
})

// RFC 8725 section 3.1: the server uses only the algorithm it is configured with.
const wrongAlgorithms: Array<[string, string]> = [
  ['HS384 with the server secret', rawToken({ alg: 'HS384', typ: 'JWT' }, genuine, hmacSigner(TEST_SECRET, 'sha384'))],
  ['HS512 with the server secret', rawToken({ alg: 'HS512', typ: 'JWT' }, genuine, hmacSigner(TEST_SECRET, 'sha512'))],
  ['an RS256 header over an HMAC made with the server secret', rawToken({ alg: 'RS256', typ: 'JWT' }, genuine, serverSigned)],
  ['an ES256 header over an HMAC made with the server secret', rawToken({ alg: 'ES256', typ: 'JWT' }, genuine, serverSigned)],
  ['RS256 signed with the attacker\'s own key pair', rawToken({ alg: 'RS256', typ: 'JWT' }, genuine, rsaSigner(attackerKeys.privateKey))],
  ['alg "hs256" (lower case) with the server secret', rawToken({ alg: 'hs256', typ: 'JWT' }, genuine, serverSigned)],
  ['alg "HS256 " (a trailing space) with the server secret', rawToken({ alg: 'HS256 ', typ: 'JWT' }, genuine, serverSigned)],
  ['alg as an array ["HS256"] with the server secret', rawToken({ alg: ['HS256'], typ: 'JWT' }, genuine, serverSigned)],
  ['no alg at all, signed with the server secret', rawToken({ typ: 'JWT' }, genuine, serverSigned)],
  ['alg null, signed with the server secret', rawToken({ alg: null, typ: 'JWT' }, genuine, serverSigned)],
  ['HS256 with another secret', rawToken(HS, genuine, hmacSigner(attackerSecret))]
]
for (const [what, token] of wrongAlgorithms) {
  t.test(`algorithm allow-list: ${what}`, async (t) => {
    assertRefused(t, await me(token), 401, 'AUTH_TOKEN_INVALID')
  })
}

// RFC 8725 section 2.1: "none" in any spelling, with or without a signature segment.
for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
  t.test(`alg "${alg}" with an empty signature`, async (t) => {
    assertRefused(t, await me(rawToken({ alg, typ: 'JWT' }, genuine, '')), 401, 'AUTH_TOKEN_INVALID')
  })
  t.test(`alg "${alg}" carrying the signature the server would have made`, async (t) => {
    assertRefused(t, await me(rawToken({ alg, typ: 'JWT' }, genuine, serverSigned)), 401, 'AUTH_TOKEN_INVALID')
  })
}
t.test('alg "none" without any signature segment (two parts)', async (t) => {
  assertRefused(t, await me(rawToken({ alg: 'none', typ: 'JWT' }, genuine)), 401, 'AUTH_TOKEN_INVALID')
})

// RFC 8725 section 2.1 / 3.1: key confusion, on servers that verify with a public key.
for (const [alg, server] of keyPairServers) {
  const claims = claimsOf(server.token)
  t.test(`${alg} server: control, its own token is accepted`, async (t) => {
    t.equal((await bearerGet(server.app, '/p', server.token)).statusCode, 200)
  })
  for (const [encoding, key] of Object.entries(publicKeyEncodings(server.keys))) {
    t.test(`${alg} server: HS256 keyed with ${encoding}`, async (t) => {
      assertRefused(t, await bearerGet(server.app, '/p', rawToken(HS, claims, hmacSigner(key))), 401, 'AUTH_TOKEN_INVALID')
    })
  }
  t.test(`${alg} server: HS512 keyed with its PEM`, async (t) => {
    const token = rawToken({ alg: 'HS512', typ: 'JWT' }, claims, hmacSigner(server.keys.publicPem, 'sha512'))
    assertRefused(t, await bearerGet(server.app, '/p', token), 401, 'AUTH_TOKEN_INVALID')
  })
  t.test(`${alg} server: alg none`, async (t) => {
    assertRefused(t, await bearerGet(server.app, '/p', rawToken({ alg: 'none', typ: 'JWT' }, claims, '')), 401, 'AUTH_TOKEN_INVALID')
  })
}

t.test('ES256 server: an EdDSA token signed with the attacker\'s key', async (t) => {
  const attacker = keyPair('EdDSA')
  assertRefused(t, await bearerGet(esServer.app, '/p', rawToken({ alg: 'EdDSA' }, claimsOf(esServer.token), edSigner(attacker.privateKey))), 401, 'AUTH_TOKEN_INVALID')
})

t.test('ES256 server: ES256 signed with the attacker\'s P-256 key', async (t) => {
  const attacker = keyPair('ES256')
  assertRefused(t, await bearerGet(esServer.app, '/p', rawToken({ alg: 'ES256' }, claimsOf(esServer.token), ecSigner(attacker.privateKey))), 401, 'AUTH_TOKEN_INVALID')
})

// RFC 8725 section 3.10: header members naming keys or key locations are attacker-controlled.
const keyHeaders: Array<[string, () => Promise<LightMyRequestResponse>]> = [
  ['kid "../../../../dev/null" with a MAC keyed by nothing', () => me(rawToken({ ...HS, kid: '../../../../dev/null' }, genuine, hmacSigner('')))],
  ['kid naming the attacker\'s secret, MACed with it', () => me(rawToken({ ...HS, kid: attackerSecret }, genuine, hmacSigner(attackerSecret)))],
  ['kid carrying SQL injection, MACed with its injected key', () => me(rawToken({ ...HS, kid: "x' UNION SELECT 'k' --" }, genuine, hmacSigner('k')))],
  ['an embedded oct jwk with the attacker\'s secret (HS256 server)', () => me(rawToken({ ...HS, jwk: { kty: 'oct', k: b64url(attackerSecret) } }, genuine, hmacSigner(attackerSecret)))],
  ['jku pointing to the attacker\'s JWK Set', () => bearerGet(rsServer.app, '/p', rawToken({ alg: 'RS256', jku: `${attackerUrl}/jwks.json`, kid: 'a' }, rsClaims, attackerRs))],
  ['x5u pointing to the attacker\'s certificate', () => bearerGet(rsServer.app, '/p', rawToken({ alg: 'RS256', x5u: `${attackerUrl}/cert.pem` }, rsClaims, attackerRs))],
  ['an embedded jwk of the attacker\'s public key (RS256 server)', () => bearerGet(rsServer.app, '/p', rawToken({ alg: 'RS256', jwk: attackerJwk }, rsClaims, attackerRs))],
  ['x5c carrying the attacker\'s key material', () => bearerGet(rsServer.app, '/p', rawToken({ alg: 'RS256', x5c: [attackerKeys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')] }, rsClaims, attackerRs))],
  ['kid naming the server\'s own key over the attacker\'s signature', () => bearerGet(rsServer.app, '/p', rawToken({ alg: 'RS256', kid: 'server' }, rsClaims, attackerRs))]
]
for (const [what, send] of keyHeaders) {
  t.test(`header key lookup: ${what}`, async (t) => {
    assertRefused(t, await send(), 401, 'AUTH_TOKEN_INVALID')
    t.equal(fetched, 0, 'nothing was fetched from the attacker\'s host')
  })
}

// RFC 7515 section 4.1.11: a crit extension the server does not understand makes the token invalid.
const critHeaders: Array<[string, Record<string, unknown>]> = [
  ['an unknown extension', { ...HS, crit: ['x-audit'], 'x-audit': true }],
  ['b64 false (RFC 7797 unencoded payload)', { ...HS, crit: ['b64'], b64: false }],
  ['an empty list', { ...HS, crit: [] }],
  ['a registered name ("alg")', { ...HS, crit: ['alg'] }],
  ['a string instead of a list', { ...HS, crit: 'x-audit', 'x-audit': 1 }],
  ['an extension that is not in the header', { ...HS, crit: ['x-missing'] }]
]
for (const [what, header] of critHeaders) {
  t.test(`crit naming ${what}, signed with the server secret`, async (t) => {
    assertRefused(t, await me(rawToken(header, genuine, serverSigned)), 401, 'AUTH_TOKEN_INVALID')
  })
}

// RFC 7515 section 4 / RFC 7519 section 4: duplicate member names are either refused
// or read as the lexically last. Either way every component must read the same one.
const payloadText = JSON.stringify(genuine)
t.test('duplicate alg, "none" last, over the server\'s own MAC', async (t) => {
  assertRefused(t, await me(rawToken('{"alg":"HS256","alg":"none","typ":"JWT"}', genuine, serverSigned)), 401, 'AUTH_TOKEN_INVALID')
})
t.test('duplicate alg, "HS256" last, MACed with another secret', async (t) => {
  assertRefused(t, await me(rawToken('{"alg":"none","alg":"HS256"}', genuine, hmacSigner(attackerSecret))), 401, 'AUTH_TOKEN_INVALID')
})
t.test('duplicate alg, unsigned, "HS256" first', async (t) => {
  assertRefused(t, await me(rawToken('{"alg":"HS256","alg":"none"}', genuine, '')), 401, 'AUTH_TOKEN_INVALID')
})
t.test('duplicate sub, "root" first and the session\'s user last: the route sees the last one', async (t) => {
  const res = await me(rawToken(HS, payloadText.replace('"sub":"alice"', '"sub":"root","sub":"alice"'), serverSigned))
  t.equal(res.statusCode, 200)
  t.equal(res.json().user_id, 'alice')
})
t.test('duplicate sub, another user last: the session check reads that one too', async (t) => {
  assertRefused(t, await me(rawToken(HS, payloadText.replace('"sub":"alice"', '"sub":"alice","sub":"bob"'), serverSigned)), 401, 'AUTH_SESSION_REVOKED')
})
t.test('duplicate roles, "admin" first: an admin route reads the last one', async (t) => {
  const token = rawToken(HS, payloadText.replace('"roles":["user"]', '"roles":["admin"],"roles":["user"]'), serverSigned)
  assertRefused(t, await app.inject({ method: 'POST', url: '/admin/users/bob/revoke', headers: { authorization: `Bearer ${token}` } }), 403, 'AUTH_FORBIDDEN')
})
t.test('a second sub appended to a genuine token\'s payload (its signature no longer matches)', async (t) => {
  const [h, , s] = alice.access_token.split('.')
  assertRefused(t, await me(`${h}.${b64url(payloadText.replace(/}$/, ',"sub":"root"}'))}.${s}`), 401, 'AUTH_TOKEN_INVALID')
})

// RFC 8725 section 3.11 (explicit typing): each kind of token works only where it belongs.
t.test('typ confusion: a refresh token presented as a Bearer token', async (t) => {
  assertRefused(t, await me(alice.refresh_token), 401, 'AUTH_TOKEN_INVALID')
})
t.test('typ confusion: a refresh token under the DPoP scheme', async (t) => {
  assertRefused(t, await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `DPoP ${alice.refresh_token}` } }), 401, 'AUTH_TOKEN_INVALID')
})
t.test('typ confusion: an access token presented as a refresh token', async (t) => {
  assertRefused(t, await refresh(app, alice.access_token), 401, 'AUTH_REFRESH_INVALID')
})
t.test('typ confusion: a DPoP proof presented as a Bearer token', async (t) => {
  const key = await dpopKey()
  assertRefused(t, await me(await proof(key, { htm: 'GET', htu: '/api/me' })), 401, 'AUTH_TOKEN_INVALID')
})
t.test('typ confusion: an access token presented as its own DPoP proof', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `DPoP ${alice.access_token}`, dpop: alice.access_token } })
  assertRefused(t, res, 401, 'AUTH_DPOP_INVALID')
})
t.test('typ confusion: a server-signed token typed as a DPoP proof, with the proof claims, as its own proof', async (t) => {
  const key = await dpopKey()
  const forged = rawToken({ alg: 'HS256', typ: 'dpop+jwt', jwk: key.publicJwk }, {
    ...genuine, htm: 'GET', htu: 'http://localhost:80/api/me', ath: ath(alice.access_token)
  }, serverSigned)
  const res = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `DPoP ${alice.access_token}`, dpop: forged } })
  assertRefused(t, res, 401, 'AUTH_DPOP_INVALID')
})
t.test('typ confusion: a refresh token presented as a DPoP proof', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `DPoP ${alice.access_token}`, dpop: alice.refresh_token } })
  assertRefused(t, res, 401, 'AUTH_DPOP_INVALID')
})
