import type { FastifyRequest } from 'fastify'
import type { JWK } from 'jose'
import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, jwtVerify } from 'jose'
import { createHash } from 'node:crypto'
import type { ResolvedDpopOptions } from './options.js'

/*
 * DPoP proof verification (RFC 9449 section 4.3). The JOSE work (JWS parsing,
 * signature, embedded key import, thumbprint) is panva/jose's; this file only
 * checks what RFC 9449 adds on top of a signed JWT.
 */

/** Members only a private or symmetric JWK has (RFC 7518 section 6): never allowed in a proof. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']
/** A proof is a few hundred bytes (an RSA-4096 key makes it ~1.3 KB): refuse anything far larger unparsed. */
const MAX_PROOF_LENGTH = 8192
/** The proof's `jti` becomes part of a Redis key. */
const MAX_JTI_LENGTH = 256

export interface VerifiedProof {
  /** RFC 7638 SHA-256 thumbprint of the proof's key (the `cnf.jkt` it binds to). */
  jkt: string
  jti: string
  /** Seconds since epoch. */
  iat: number
}

/** Why a proof was refused: for the log only (clients get a generic AUTH_DPOP_INVALID). */
export class ProofError extends Error {}

/** RFC 9449 section 4.2 `ath`: base64url(SHA-256(ASCII access token)). */
export function accessTokenHash (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/** Scheme, host, port and path of a URL, normalised as the WHATWG URL parser does; null when not a URL. */
export function normalizeHtu (value: string): string | null {
  if (!URL.canParse(value)) return null
  const url = new URL(value)
  return url.origin + url.pathname
}

/**
 * The `htu` a proof for this request must carry: the request URL without query
 * or fragment. The origin is the configured public one, else `request.protocol`
 * + `request.host` (Fastify reads X-Forwarded-Proto/-Host only with `trustProxy`).
 */
export function requestHtu (request: FastifyRequest, origin: string | null): string | null {
  const url = request.url
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  return normalizeHtu((origin ?? `${request.protocol}://${request.host}`) + path)
}

export interface ProofExpectation {
  htm: string
  htu: string | null
  /** The access token the proof must be bound to (`ath`); undefined at login/refresh. */
  accessToken?: string
}

export async function verifyProof (
  proof: unknown, expect: ProofExpectation, opts: Readonly<ResolvedDpopOptions>, now: number
): Promise<VerifiedProof> {
  // Node joins repeated unknown headers with ', ': two DPoP headers never parse as one proof.
  if (typeof proof !== 'string' || proof.length > MAX_PROOF_LENGTH) throw new ProofError('not a single proof of a sane size')
  let header: ReturnType<typeof decodeProtectedHeader>
  try {
    header = decodeProtectedHeader(proof)
  } catch {
    throw new ProofError('malformed')
  }
  if (header.typ !== 'dpop+jwt') throw new ProofError('typ is not dpop+jwt')
  if (typeof header.alg !== 'string' || !opts.algorithms.includes(header.alg)) throw new ProofError('algorithm not allowed')
  const jwk = header.jwk
  if (typeof jwk !== 'object' || jwk === null) throw new ProofError('no jwk')
  if (PRIVATE_MEMBERS.some((member) => member in jwk)) throw new ProofError('jwk is not a public key')
  let payload: Awaited<ReturnType<typeof jwtVerify>>['payload']
  try {
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, {
      algorithms: [...opts.algorithms],
      typ: 'dpop+jwt',
      requiredClaims: ['iat', 'jti', 'htm', 'htu'],
      currentDate: new Date(now)
    }))
  } catch (err) {
    throw new ProofError(`jose: ${(err as { code?: string }).code}`)
  }
  if (payload.htm !== expect.htm) throw new ProofError('htm does not match')
  if (typeof payload.htu !== 'string' || expect.htu === null || normalizeHtu(payload.htu) !== expect.htu) throw new ProofError('htu does not match')
  // jose checked that iat is a number, but JSON's 1e309 is one too (Infinity).
  // A fractional iat is a valid NumericDate (RFC 7519 section 2): accepted.
  const iat = payload.iat as number
  if (!Number.isFinite(iat)) throw new ProofError('iat is not a finite NumericDate')
  // The window applies both ways.
  if (Math.abs(now - iat * 1000) > opts.iatWindowMs) throw new ProofError('iat outside the window')
  const jti = payload.jti
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) throw new ProofError('bad jti')
  if (expect.accessToken !== undefined && payload.ath !== accessTokenHash(expect.accessToken)) throw new ProofError('ath does not match')
  const jkt = await calculateJwkThumbprint(jwk as JWK, 'sha256')
  return { jkt, jti, iat }
}
