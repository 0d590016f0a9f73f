import type { CryptoKey, JWK, JWTPayload } from 'jose'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import { createHash, randomUUID } from 'node:crypto'

/** A DPoP client key (RFC 9449), as a browser or mobile app would hold it. */
export interface DpopKey {
  alg: string
  privateKey: CryptoKey
  publicJwk: JWK
}

export async function dpopKey (alg = 'ES256'): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { alg, privateKey, publicJwk: await exportJWK(publicKey) }
}

export const ath = (token: string) => createHash('sha256').update(token).digest('base64url')

export interface ProofInput {
  htm: string
  /** Path on the injected app (http://localhost:80), or an absolute URL. */
  htu: string
  token?: string
  /** Claims to add or override (undefined removes one). */
  claims?: Record<string, unknown>
  /** Header members to add or override (undefined removes one). */
  header?: Record<string, unknown>
}

export async function proof (key: DpopKey, input: ProofInput): Promise<string> {
  const payload: JWTPayload = {
    htm: input.htm,
    htu: input.htu.startsWith('http') ? input.htu : `http://localhost:80${input.htu}`,
    iat: Math.floor(Date.now() / 1000),
    jti: randomUUID(),
    ...(input.token === undefined ? {} : { ath: ath(input.token) }),
    ...input.claims
  }
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name]
  const header: Record<string, unknown> = { alg: key.alg, typ: 'dpop+jwt', jwk: key.publicJwk, ...input.header }
  for (const [name, value] of Object.entries(header)) if (value === undefined) delete header[name]
  return await new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(key.privateKey)
}

/**
 * A proof whose payload is the given JSON text, signed as is: the text may
 * hold what JSON.stringify never writes (1e309, which JSON.parse reads as
 * Infinity). ES256 keys only: WebCrypto's ECDSA signature (r || s) is the JWS one.
 */
export async function rawProof (key: DpopKey, payloadJson: string): Promise<string> {
  if (key.alg !== 'ES256') throw new Error('rawProof signs with ES256 keys only')
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })).toString('base64url')
  const input = `${header}.${Buffer.from(payloadJson).toString('base64url')}`
  const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key.privateKey, Buffer.from(input))
  return `${input}.${Buffer.from(signature).toString('base64url')}`
}
