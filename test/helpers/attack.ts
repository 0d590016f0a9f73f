import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { pluginApp } from './app.js'
import type { KeyPairPem } from './raw-token.js'
import { keyPair } from './raw-token.js'

/** The contract's error answer: exactly this status and this `code`. */
export function assertRefused (t: Test, res: LightMyRequestResponse, status: number, code: string): void {
  t.equal(res.statusCode, status, 'status')
  t.equal(res.json().code, code, 'code')
}

export const bearerGet = (app: FastifyInstance, url: string, token: string) =>
  app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })

export type AsymmetricAlg = 'RS256' | 'ES256' | 'EdDSA'

/**
 * token-lifecycle alone, signing with a fresh key pair of `alg`: `GET /p` is
 * protected, `token` is a genuine access token of user 'kc'.
 */
export async function keyPairApp (t: Test, alg: AsymmetricAlg): Promise<{ app: FastifyInstance, keys: KeyPairPem, token: string }> {
  const keys = keyPair(alg)
  const app = await pluginApp(t, { jwt: { algorithm: alg, privateKey: keys.privatePem, publicKey: keys.publicPem } }, (app) => {
    app.get('/p', { onRequest: app.authenticate }, async (request) => ({ sub: request.auth!.userId }))
  })
  const { tokens } = await app.tokens.openSession({ userId: 'kc' })
  return { app, keys, token: tokens.access_token }
}

/** The encodings of a public key an attacker tries as an HMAC secret (RFC 8725 section 2.1, key confusion). */
export function publicKeyEncodings (keys: KeyPairPem): Record<string, string | Buffer> {
  const pem = keys.publicPem
  const body = pem.split('\n').filter((line) => line !== '' && !line.startsWith('-----')).join('\n')
  return {
    'its PEM as configured': pem,
    'its PEM trimmed': pem.trim(),
    'its PEM without the header lines': body,
    'its PEM body on one line': body.replace(/\n/g, ''),
    'its DER bytes': keys.publicKey.export({ type: 'spki', format: 'der' }),
    'its JWK as JSON': JSON.stringify(keys.publicKey.export({ format: 'jwk' }))
  }
}
