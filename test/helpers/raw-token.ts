import type { KeyObject } from 'node:crypto'
import { createHmac, generateKeyPairSync, sign } from 'node:crypto'

/*
 * Raw JWS crafting for attack tests: the header and payload go in as the
 * exact JSON text to encode (so duplicate members, odd spacing or non-object
 * payloads can be expressed), and the signature is made with node:crypto
 * alone, never with the JWT library under test.
 */

export const b64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url')

/** JSON text as given, or an object serialised. */
export type JsonText = string | Record<string, unknown> | unknown[]

const text = (value: JsonText): string => typeof value === 'string' ? value : JSON.stringify(value)

/** Signs a JWS signing input (`<header>.<payload>`), returning the raw signature bytes. */
export type RawSigner = (input: string) => Buffer

export const hmacSigner = (key: string | Buffer, hash = 'sha256'): RawSigner =>
  (input) => createHmac(hash, key).update(input).digest()

/** RS256 (RSASSA-PKCS1-v1_5 with SHA-256). */
export const rsaSigner = (privateKey: KeyObject): RawSigner =>
  (input) => sign('sha256', Buffer.from(input), privateKey)

/** ES256: the JWS form of an ECDSA signature is r || s (IEEE P1363), not DER. */
export const ecSigner = (privateKey: KeyObject): RawSigner =>
  (input) => sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' })

/** EdDSA (Ed25519): no separate hash. */
export const edSigner = (privateKey: KeyObject): RawSigner =>
  (input) => sign(null, Buffer.from(input), privateKey)

/**
 * A compact JWS: `signature` is a signer, the literal base64url text of the
 * third segment (say '' for an unsigned token), or left out for no third segment
 * at all (`<header>.<payload>`).
 */
export function rawToken (header: JsonText, payload: JsonText, signature?: RawSigner | string): string {
  const input = `${b64url(text(header))}.${b64url(text(payload))}`
  if (signature === undefined) return input
  return `${input}.${typeof signature === 'string' ? signature : b64url(signature(input))}`
}

/** The claims of a compact JWS, decoded without any check. */
export const claimsOf = (token: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())

export interface KeyPairPem {
  privateKey: KeyObject
  publicKey: KeyObject
  privatePem: string
  publicPem: string
}

/** A key pair for `RS256`, `ES256` or `EdDSA`, with its SPKI/PKCS#8 PEM forms. */
export function keyPair (alg: 'RS256' | 'ES256' | 'EdDSA'): KeyPairPem {
  const pair = alg === 'RS256'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('ed25519')
  return {
    ...pair,
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }) as string
  }
}
