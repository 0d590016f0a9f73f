import { randomBytes } from 'node:crypto'
import { digest, hmac, safeEqual } from '../../lib/crypto.js'
import { SESSION_ID } from '../../lib/session-record.js'

/**
 * Refresh tokens: opaque to clients, self-authenticating for the server.
 *
 *   <b64url(userId)>.<sessionId>.<generation>.<absoluteDeadline>.<nonce>.<mac>
 *
 * - userId and sessionId name the session (its user's sessions hash, and so the hash tag)
 *   before any lookup; the absolute deadline (ms) never changes for a session.
 * - nonce: 256 bits. Generation 1's is random; each successor's is derived from
 *   its predecessor with the server key, nonce(n+1) = HMAC(key, 'next', sid, n, nonce(n)),
 *   so concurrent refreshes of one token all compute the same successor and
 *   Redis never has to hold it. Redis keeps only digest(token) of the current one.
 * - mac = HMAC(key, 'frt1', every preceding part): only tokens this server
 *   issued get past parsing, so a session's state (replaced, expired, reused)
 *   is never disclosed to a forged token that merely names a live session id.
 */
export interface RefreshToken {
  userId: string
  sessionId: string
  generation: number
  absoluteDeadline: number
  /** The whole token as the client holds it. Never log it. */
  value: string
  /** digest(value), base64url: what Redis stores and compares. */
  digest: string
}

const NONCE_BYTES = 32
const B64URL = /^[A-Za-z0-9_-]+$/
const GENERATION = /^[1-9][0-9]{0,14}$/
const DEADLINE = /^[0-9]{1,16}$/
/** base64url of 32 bytes, unpadded. */
const B64_32 = 43
/** Longest token accepted at all: user ids are bounded by this too. */
export const MAX_TOKEN_LENGTH = 2048

export class RefreshTokenCodec {
  private readonly key: Buffer

  constructor (key: Buffer) {
    this.key = key
  }

  private seal (userId: string, sessionId: string, generation: number, absoluteDeadline: number, nonce: Buffer): RefreshToken {
    const body = `${Buffer.from(userId).toString('base64url')}.${sessionId}.${generation}.${absoluteDeadline}.${nonce.toString('base64url')}`
    const value = `${body}.${hmac(this.key, 'frt1.', body).toString('base64url')}`
    return { userId, sessionId, generation, absoluteDeadline, value, digest: digest(value).toString('base64url') }
  }

  /** Generation 1 of a new session: fresh randomness. */
  first (userId: string, sessionId: string, absoluteDeadline: number): RefreshToken {
    return this.seal(userId, sessionId, 1, absoluteDeadline, randomBytes(NONCE_BYTES))
  }

  /** The one successor of a token, the same whoever computes it. */
  successor (token: RefreshToken): RefreshToken {
    const nonce = Buffer.from(token.value.split('.')[4], 'base64url')
    const next = hmac(this.key, 'next.', token.sessionId, '.', String(token.generation), '.', nonce)
    return this.seal(token.userId, token.sessionId, token.generation + 1, token.absoluteDeadline, next)
  }

  /** The token if this server issued it, else null (malformed, forged, not a refresh token). */
  parse (value: string): RefreshToken | null {
    if (value.length > MAX_TOKEN_LENGTH) return null
    const parts = value.split('.')
    if (parts.length !== 6) return null
    const [user, sessionId, generation, deadline, nonce, mac] = parts
    if (!B64URL.test(user) || !SESSION_ID.test(sessionId) || !GENERATION.test(generation) ||
      !DEADLINE.test(deadline) || nonce.length !== B64_32 || !B64URL.test(nonce) ||
      mac.length !== B64_32 || !B64URL.test(mac)) return null
    const body = value.slice(0, value.length - mac.length - 1)
    // Constant-time, and on the canonical text: base64url's spare bits must not
    // let several spellings of one MAC pass.
    if (!safeEqual(Buffer.from(mac), Buffer.from(hmac(this.key, 'frt1.', body).toString('base64url')))) return null
    const userId = Buffer.from(user, 'base64url').toString()
    return {
      userId,
      sessionId,
      generation: Number(generation),
      absoluteDeadline: Number(deadline),
      value,
      digest: digest(value).toString('base64url')
    }
  }
}
