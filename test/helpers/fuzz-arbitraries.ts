import fc from 'fast-check'
import { createHmac } from 'node:crypto'

/*
 * Inputs for the fuzz files. Arbitraries describe what to send (a mutation, a
 * header and payload, a signing mode) rather than carry the token itself: a
 * counterexample then says what was done to a token without printing one.
 */

// --- text -----------------------------------------------------------------

/** Characters an HTTP header value may hold (RFC 9110 field-value, as Node's parser accepts them). */
const HEADER_CHAR = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 1, arbitrary: fc.constant(0x09) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) }
).map((code) => String.fromCharCode(code))

/** Any text a client could put in a header value. */
export const headerText = (maxLength = 200) => fc.string({ unit: HEADER_CHAR, maxLength })

/** Replaces what no HTTP parser would let through, so that a mutated value still reaches the app as a client could send it. */
export function headerSafe (value: string): string {
  return value.replace(/[^\t\x20-\x7e\x80-\xff]/g, '~')
}

/** UTF-16 code units that are half of a surrogate pair: valid in a JS string and in JSON, not in UTF-8. */
const LONE_SURROGATE = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code))

/** Strings of every kind a JSON body may carry: ASCII, any code point, graphemes, lone surrogates, separators this package uses. */
export const anyText = (maxLength = 64) => fc.oneof(
  fc.string({ maxLength }),
  fc.string({ unit: 'binary', maxLength }),
  fc.string({ unit: 'grapheme', maxLength }),
  fc.string({ unit: fc.oneof(LONE_SURROGATE, fc.constantFrom('a', '|', '%', ':', '{', '}', '.', '\u0000', '%7C', '%25')), maxLength }),
  fc.constantFrom('', ' ', '__proto__', 'constructor', 'toString', '%', '|', '%7C', '%25', '{x}', ':', '\u0000')
)

/**
 * Text without lone surrogates (what survives UTF-8 unchanged), at most
 * `maxLength` UTF-16 units long, as schemas count.
 */
export const wellFormedText = (maxLength = 64) => fc.oneof(
  fc.string({ maxLength }),
  fc.string({ unit: 'binary', maxLength: Math.floor(maxLength / 2) }),
  fc.string({ unit: 'grapheme', maxLength: Math.floor(maxLength / 4) }),
  fc.string({ unit: fc.constantFrom('a', '|', '%', ':', '{', '}', '.', '\u0000', '%7C', '%25', ' ', 'é', '😀'), maxLength: Math.floor(maxLength / 2) })
).filter((text) => text.length <= maxLength)

/** A string of up to `max` characters built by repetition: huge bodies without generating each character. */
export const hugeText = (max: number) => fc.record({
  unit: fc.constantFrom('a', 'é', '😀', '|', '"', '\\', '\u0000', ' '),
  count: fc.integer({ min: 0, max })
}).map(({ unit, count }) => unit.repeat(Math.floor(count / unit.length)))

/** Every kind of JSON value, deep and unicode-rich. */
export const anyJson = fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' })

// --- mutations of a genuine token -------------------------------------------

export type Mutation =
  | { op: 'flip', at: number, bit: number }
  | { op: 'set', at: number, char: string }
  | { op: 'delete', at: number, length: number }
  | { op: 'insert', at: number, text: string }
  | { op: 'truncate', at: number }
  | { op: 'swap', a: number, b: number }
  | { op: 'drop', which: number }
  | { op: 'repeat', which: number }
  | { op: 'graft', which: number }

/** Edits of a dot-separated token: bit flips, characters, truncation, segment swaps, segments of another genuine token. */
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), char: fc.oneof(fc.constantFrom('A', '_', '-', '.', '=', '+', '/', ' ', '%'), fc.string({ minLength: 1, maxLength: 1 })) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom('.', '..', '=', 'A', 'AA', ' ', '\t'), fc.string({ minLength: 1, maxLength: 8 })) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ op: fc.constant('drop' as const), which: fc.nat() }),
  fc.record({ op: fc.constant('repeat' as const), which: fc.nat() }),
  fc.record({ op: fc.constant('graft' as const), which: fc.nat() })
)

export const mutations = fc.array(mutation, { minLength: 1, maxLength: 4 })

function applyOne (value: string, m: Mutation, donor: string): string {
  const at = (n: number, length = value.length) => length === 0 ? 0 : n % length
  const parts = value.split('.')
  const donorParts = donor.split('.')
  switch (m.op) {
    case 'flip': {
      if (value === '') return value
      const i = at(m.at)
      return value.slice(0, i) + String.fromCharCode(value.charCodeAt(i) ^ (1 << m.bit)) + value.slice(i + 1)
    }
    case 'set': {
      const i = at(m.at)
      return value.slice(0, i) + m.char + value.slice(i + 1)
    }
    case 'delete': {
      const i = at(m.at)
      return value.slice(0, i) + value.slice(i + m.length)
    }
    case 'insert': {
      const i = at(m.at, value.length + 1)
      return value.slice(0, i) + m.text + value.slice(i)
    }
    case 'truncate':
      return value.slice(0, at(m.at))
    case 'swap': {
      const a = at(m.a, parts.length)
      const b = at(m.b, parts.length);
      [parts[a], parts[b]] = [parts[b], parts[a]]
      return parts.join('.')
    }
    case 'drop':
      parts.splice(at(m.which, parts.length), 1)
      return parts.join('.')
    case 'repeat': {
      const i = at(m.which, parts.length)
      parts.splice(i, 0, parts[i])
      return parts.join('.')
    }
    case 'graft': {
      const i = at(m.which, Math.min(parts.length, donorParts.length))
      parts[i] = donorParts[i]
      return parts.join('.')
    }
  }
}

/** Applies mutations in order; `donor` is another genuine token of the same kind, for grafts. */
export function mutate (value: string, edits: readonly Mutation[], donor: string): string {
  return edits.reduce((current, m) => applyOne(current, m, donor), value)
}

/**
 * Whether a presented JWT is the genuine one in another spelling: the same
 * header and payload text and the same signature bytes. base64url leaves the
 * low bits of a segment's last character unused (an HS256 signature has 2 of
 * them), and verifiers decode before comparing: such a variant carries the
 * genuine token's signature, not a forged one. `whitespace`: the verifier's
 * decoder also skips blanks in the signature (jose's does, for DPoP proofs).
 */
export function sameJwt (presented: string, genuine: string, whitespace = false): boolean {
  if (presented === genuine) return true
  const a = presented.split('.')
  const b = genuine.split('.')
  if (a.length !== 3 || b.length !== 3 || a[0] !== b[0] || a[1] !== b[1]) return false
  const signature = whitespace ? a[2].replace(/[\t\n\f\r ]/g, '') : a[2]
  return /^[A-Za-z0-9_-]*$/.test(signature) && Buffer.from(signature, 'base64url').equals(Buffer.from(b[2], 'base64url'))
}

/**
 * Whether Fastify's JSON parser refuses a body for prototype poisoning
 * (secure-json-parse): an own `__proto__` key, or a `constructor` key whose
 * value has a `prototype` key, at any depth.
 */
export function poisonsPrototype (value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false
  if (Array.isArray(value)) return value.some(poisonsPrototype)
  if (Object.hasOwn(value, '__proto__')) return true
  const record = value as Record<string, unknown>
  const ctor = record.constructor
  if (Object.hasOwn(value, 'constructor') && typeof ctor === 'object' && ctor !== null && Object.hasOwn(ctor, 'prototype')) return true
  return Object.values(record).some(poisonsPrototype)
}

// --- JWTs built from scratch ------------------------------------------------

export type SegmentText =
  | { as: 'json', value: unknown }
  | { as: 'raw', text: string }

export type Signing = 'secret' | 'other-secret' | 'none' | 'genuine' | 'random'

export interface ForgedJwt {
  header: SegmentText
  payload: SegmentText
  signing: Signing
  /** Bytes of a random signature. */
  random: string
}

const b64 = (text: string) => Buffer.from(text).toString('base64url')

const ALGS = ['HS256', 'HS384', 'HS512', 'none', 'None', 'NONE', 'RS256', 'ES256', 'EdDSA', 'PS256', 'hs256', '', 'HS256 ']

/** A JWT header: the server's own, plausible objects, any JSON value, or no JSON at all. */
export const jwtHeader: fc.Arbitrary<SegmentText> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ as: 'json' as const, value: { alg: 'HS256', typ: 'JWT' } }) },
  { weight: 4, arbitrary: fc.record({
    alg: fc.oneof(fc.constantFrom(...ALGS), anyJson),
    typ: fc.oneof(fc.constantFrom('JWT', 'jwt', 'dpop+jwt', 'at+jwt'), anyJson),
    kid: anyJson,
    crit: fc.oneof(fc.constant(['exp']), anyJson),
    jwk: anyJson
  }, { requiredKeys: [] }).map((value) => ({ as: 'json' as const, value })) },
  { weight: 1, arbitrary: anyJson.map((value) => ({ as: 'json' as const, value })) },
  { weight: 1, arbitrary: headerText(40).map((text) => ({ as: 'raw' as const, text })) }
)

/**
 * Time claims: integers and fractions (valid NumericDates, RFC 7519), near now
 * and far from it, and any JSON number at all, huge and non-finite ones
 * included: all of them must answer a 2xx or a clean 4xx (issue #13 defects
 * 5 and 8 were a 503 for a fractional or huge one on a guarded route).
 */
const time = fc.oneof(
  fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
  fc.integer({ min: -600, max: 600 }).map((s) => Math.floor(Date.now() / 1000) + s),
  fc.double({ min: -600, max: 600, noNaN: true }).map((s) => Date.now() / 1000 + s),
  fc.constantFrom(1e20, -1e20, 253402300799, 253402300800, Number.MAX_VALUE)
)

/** For each claim, values of the right type and shape (and of none), beside any JSON value. */
const CLAIM_VALUES: Record<string, fc.Arbitrary<unknown>> = {
  sub: fc.oneof(fc.constantFrom('alice', 'bob', 'root', '', 'alice ', 'ALICE', 'alice\u0000'), anyText(20)),
  sid: anyText(20),
  jti: anyText(20),
  cv: fc.oneof(fc.integer(), fc.constantFrom(0, 1, 2, -1, 2 ** 53, 1.5, '1')),
  iat: time,
  exp: time,
  nbf: time,
  roles: fc.oneof(fc.constantFrom(['admin'], 'admin', [], null, [['admin']]), fc.array(anyText(10), { maxLength: 3 })),
  cnf: fc.oneof(fc.record({ jkt: anyText(50) }), fc.constant({})),
  iss: anyText(20),
  aud: fc.oneof(anyText(20), fc.array(anyText(10), { maxLength: 3 }))
}

/** One claim set to a value, or (undefined) removed. */
const claimEdit = fc.constantFrom(...Object.keys(CLAIM_VALUES)).chain((name) => fc.tuple(
  fc.constant(name),
  fc.oneof(
    { weight: 3, arbitrary: CLAIM_VALUES[name] },
    { weight: 1, arbitrary: anyJson },
    { weight: 1, arbitrary: fc.constant(undefined) }
  )
))

/**
 * Claims: the genuine token's with a few of them edited (such a token gets
 * past the earlier checks and reaches the session check), or any JSON value,
 * or no JSON at all.
 */
export function jwtPayload (genuine: Record<string, unknown>): fc.Arbitrary<SegmentText> {
  const edited = fc.array(claimEdit, { minLength: 0, maxLength: 3 }).map((edits) => {
    const claims: Record<string, unknown> = { ...genuine }
    for (const [name, value] of edits) {
      if (value === undefined) delete claims[name]
      else claims[name] = value
    }
    return { as: 'json' as const, value: claims }
  })
  return fc.oneof(
    { weight: 6, arbitrary: edited },
    { weight: 1, arbitrary: anyJson.map((value) => ({ as: 'json' as const, value })) },
    { weight: 1, arbitrary: headerText(60).map((text) => ({ as: 'raw' as const, text })) }
  )
}

/** A JWT any which way: header, claims and signing all drawn. */
export function forgedJwt (genuine: Record<string, unknown>): fc.Arbitrary<ForgedJwt> {
  return fc.record({
    header: jwtHeader,
    payload: jwtPayload(genuine),
    signing: fc.constantFrom<Signing>('secret', 'other-secret', 'none', 'genuine', 'random'),
    random: fc.string({ maxLength: 64 })
  })
}

/** A JWT the server could have signed (its header, its secret) with edited claims: what reaches the session check. */
export function serverSignedJwt (genuine: Record<string, unknown>): fc.Arbitrary<ForgedJwt> {
  return jwtPayload(genuine).map((payload) => ({
    header: { as: 'json' as const, value: { alg: 'HS256', typ: 'JWT' } },
    payload,
    signing: 'secret' as const,
    random: ''
  }))
}

function segment (s: SegmentText): string {
  // JSON.stringify(undefined) is undefined: such a segment is simply empty.
  return s.as === 'json' ? b64(JSON.stringify(s.value) ?? '') : s.text
}

/** The token a forged description stands for: HMAC-SHA-256 with the server's secret, another secret, none, the genuine token's signature or random bytes. */
export function buildJwt (forged: ForgedJwt, secret: string, genuineToken: string): string {
  const input = `${segment(forged.header)}.${segment(forged.payload)}`
  const sign = (key: string) => createHmac('sha256', key).update(input).digest('base64url')
  switch (forged.signing) {
    case 'secret': return `${input}.${sign(secret)}`
    case 'other-secret': return `${input}.${sign(secret + '!')}`
    case 'none': return `${input}.`
    case 'genuine': return `${input}.${genuineToken.split('.')[2]}`
    case 'random': return `${input}.${b64(forged.random)}`
  }
}

/** Whether a forged token is one the server itself could have issued: its secret, HS256, a JSON object payload. */
export function signedLikeTheServer (forged: ForgedJwt): boolean {
  const header = forged.header.as === 'json' ? forged.header.value as { alg?: unknown } | null : null
  return forged.signing === 'secret' && typeof header === 'object' && header !== null && !Array.isArray(header) && header.alg === 'HS256'
}

export const payloadOf = (token: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
