import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'

/** A random identifier, URL-safe, with `bytes` bytes of entropy. */
export function randomId (bytes = 12): string {
  return randomBytes(bytes).toString('base64url')
}

/** SHA-256 truncated to 16 bytes: a lookup digest for secrets we must not keep. */
export function digest (value: string | Buffer): Buffer {
  return createHash('sha256').update(value).digest().subarray(0, 16)
}

export function hmac (key: Buffer, ...parts: Array<string | Buffer>): Buffer {
  const mac = createHmac('sha256', key)
  for (const part of parts) mac.update(part)
  return mac.digest()
}

/** Derives an independent key for one purpose from a shared secret (RFC 5869). */
export function deriveKey (secret: string | Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), `fastify-jwt-sessions/${purpose}`, 32))
}

export function safeEqual (a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}
