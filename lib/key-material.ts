import { createPublicKey } from 'node:crypto'
import type { PublicKeyInput, JsonWebKeyInput } from 'node:crypto'

/*
 * HMAC secrets that are really keys of a key pair. A public key is public:
 * anyone who has it could compute an HMAC keyed with it and sign any token
 * (CVE-2023-48223, GHSA-ww5h-9m49-7xx4 for PEM text, GHSA-g3jj-5cmm-3hxx for
 * JWK JSON). fast-jwt looks for such keys only when it must guess the
 * algorithm; pinned to HS*, as this package pins it, it takes any bytes. A
 * private key given as an HS secret is the same mistake (an RS/ES/EdDSA
 * set-up configured as HS): refused too.
 */

const DER_TYPES = ['spki', 'pkcs1', 'pkcs8', 'sec1'] as const
/** Standard or URL-safe base64, line breaks allowed: the body of a PEM block without its header lines. */
const BASE64_TEXT = /^[A-Za-z0-9+/_\-=\s]+$/

function parses (input: PublicKeyInput | JsonWebKeyInput): boolean {
  try {
    createPublicKey(input)
    return true
  } catch {
    return false
  }
}

const isDerKey = (der: Buffer): boolean => DER_TYPES.some((type) => parses({ key: der, format: 'der', type } as PublicKeyInput))

/** A JWK, a JWK Set, or an array of JWKs, of an asymmetric key. */
function isJwkJson (text: string): boolean {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return false
  }
  // Only '{' or '[' texts get here: parsed is an object or an array.
  const keys = (parsed as { keys?: unknown }).keys
  const candidates = Array.isArray(parsed) ? parsed : Array.isArray(keys) ? keys : [parsed]
  return candidates.some((jwk) => typeof jwk === 'object' && jwk !== null && parses({ key: jwk, format: 'jwk' }))
}

/** Whether a would-be HMAC secret is an asymmetric key in one of its usual encodings: PEM, its bare base64 body, DER or JWK. */
export function isAsymmetricKeyMaterial (secret: string | Buffer): boolean {
  const text = (typeof secret === 'string' ? secret : secret.toString('latin1')).trim()
  if (text.includes('-----BEGIN')) return true
  if (text.startsWith('{') || text.startsWith('[')) return isJwkJson(text)
  if (typeof secret !== 'string' && isDerKey(secret)) return true
  return BASE64_TEXT.test(text) && isDerKey(Buffer.from(text.replace(/\s/g, ''), 'base64'))
}
