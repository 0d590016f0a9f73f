import { createSigner, createVerifier } from 'fast-jwt'
import t from 'tap'
import { cachedVerifier } from '../plugins/token-lifecycle/verify-cache.js'
import type { Verifier } from '../plugins/token-lifecycle/verify-cache.js'

/** A verifier that counts its calls; tokens are 'ok:<exp seconds>' or anything else (invalid). */
function countingVerifier () {
  const calls: string[] = []
  const verify: Verifier = (token) => {
    calls.push(token)
    const [kind, exp] = token.split(':')
    if (kind === 'noexp') return { sub: 'u' }
    if (kind !== 'ok') throw new Error('invalid token')
    return { sub: 'u', exp: Number(exp) }
  }
  return { verify, calls }
}

t.test('a token presented again is answered from the cache, with the same payload', async (t) => {
  const { verify, calls } = countingVerifier()
  const cached = cachedVerifier(verify, 10, 0, () => 1_000)
  const first = cached('ok:100')
  t.equal(cached('ok:100'), first)
  t.equal(cached('ok:100'), first)
  t.same(calls, ['ok:100'], 'verified once')
})

t.test('an entry is served until exp plus the clock tolerance, then verified again', async (t) => {
  const { verify, calls } = countingVerifier()
  let now = 99_000
  const cached = cachedVerifier(verify, 10, 2_000, () => now)
  cached('ok:100')
  now = 102_000
  cached('ok:100')
  t.equal(calls.length, 1, 'served at exp + tolerance')
  now = 102_001
  cached('ok:100')
  t.equal(calls.length, 2, 'verified again past it')
})

t.test('failures are never cached', async (t) => {
  const { verify, calls } = countingVerifier()
  const cached = cachedVerifier(verify, 10, 0)
  t.throws(() => cached('forged'), /invalid token/)
  t.throws(() => cached('forged'), /invalid token/)
  t.equal(calls.length, 2)
})

t.test('tokens without exp are not kept', async (t) => {
  const { verify, calls } = countingVerifier()
  const cached = cachedVerifier(verify, 10, 0)
  cached('noexp')
  cached('noexp')
  t.equal(calls.length, 2)
})

t.test('at most size entries: the oldest goes first', async (t) => {
  const { verify, calls } = countingVerifier()
  const cached = cachedVerifier(verify, 2, 0, () => 0)
  cached('ok:1')
  cached('ok:2')
  cached('ok:3')
  t.same(calls, ['ok:1', 'ok:2', 'ok:3'])
  cached('ok:2')
  cached('ok:3')
  t.equal(calls.length, 3, 'the two newest are kept')
  cached('ok:1')
  t.equal(calls.length, 4, 'the oldest was dropped')
})

t.test('keyed by the whole token: a token that differs only in its signature is verified, and refused', async (t) => {
  const key = 'verify-cache-secret-verify-cache-secret-0123'
  const token = createSigner({ key, expiresIn: 60_000 })({ sub: 'alice' })
  const cached = cachedVerifier(createVerifier({ key, cache: false }), 10, 0)
  t.equal((cached(token) as { sub: string }).sub, 'alice')
  // The signature's first character (its last may hold only padding bits).
  const at = token.lastIndexOf('.') + 1
  const forged = token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1)
  t.throws(() => cached(forged), { code: 'FAST_JWT_INVALID_SIGNATURE' })
  t.equal((cached(token) as { sub: string }).sub, 'alice', 'the genuine token is still served')
})

t.test('tokens whose exp is not a finite number are not kept', async (t) => {
  const { verify, calls } = countingVerifier()
  const cached = cachedVerifier(verify, 10, 0, () => 0)
  for (const token of ['ok:Infinity', 'ok:NaN']) {
    cached(token)
    cached(token)
  }
  t.equal(calls.length, 4, 'verified each time')
})
