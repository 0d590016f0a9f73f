import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import { hmac } from '../lib/crypto.js'
import { TEST_SECRET, exampleApp, login } from './helpers/app.js'
import type { LoginAnswer } from './helpers/app.js'
import { assertRefused } from './helpers/attack.js'
import { exampleCodec, refresh } from './helpers/refresh.js'

/*
 * Refresh tokens, `<user>.<session>.<generation>.<deadline>.<nonce>.<mac>`
 * (plugins/refresh-rotation/token.ts): forged, spliced, respelled, cut short
 * or padded out. Every one is AUTH_REFRESH_INVALID, and none of them touches
 * the session it names: its genuine token still refreshes afterwards.
 */

const app = await exampleApp(t, { sso: 'off', loginRateMax: 1000, refreshRateMax: 1000 })
const limited = await exampleApp(t, { sso: 'off', loginRateMax: 1000, refreshRateMax: 3 })
const codec = exampleCodec()
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

const partsOf = (token: string) => token.split('.')
const withPart = (token: string, index: number, value: string) => partsOf(token).map((part, i) => (i === index ? value : part)).join('.')
/** The same bytes in another base64url spelling: the last character's spare low bits flipped. */
const respellLast = (segment: string) => segment.slice(0, -1) + B64URL[B64URL.indexOf(segment.at(-1)!) ^ 1]

/** Refreshes with the forged token, expects AUTH_REFRESH_INVALID, then shows the genuine token still works. */
async function refusedAndHarmless (t: Test, pair: LoginAnswer, forged: unknown): Promise<void> {
  assertRefused(t, await refresh(app, forged), 401, 'AUTH_REFRESH_INVALID')
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 200, 'the session it named is untouched')
}

t.test('forgery: a random opaque string', async (t) => {
  await refusedAndHarmless(t, await login(app, 'alice'), randomBytes(48).toString('base64url'))
})

t.test('forgery: random parts in the token\'s exact shape, naming the victim\'s session', async (t) => {
  const pair = await login(app, 'alice')
  const [user, sid, generation, deadline] = partsOf(pair.refresh_token)
  await refusedAndHarmless(t, pair, [user, sid, generation, deadline, randomBytes(32).toString('base64url'), randomBytes(32).toString('base64url')].join('.'))
})

t.test('forgery: the victim\'s token with a random MAC', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, withPart(pair.refresh_token, 5, randomBytes(32).toString('base64url')))
})

t.test('forgery: a MAC keyed with the JWT secret itself instead of the derived refresh key', async (t) => {
  const pair = await login(app, 'alice')
  const body = partsOf(pair.refresh_token).slice(0, 5).join('.')
  await refusedAndHarmless(t, pair, `${body}.${hmac(Buffer.from(TEST_SECRET), 'frt1.', body).toString('base64url')}`)
})

t.test('forgery: a token naming a session replaced by a newer login is not told it was replaced', async (t) => {
  const pair = await login(app, 'bob')
  await app.tokens.openSession({ userId: 'bob', claims: { roles: ['user'] }, policy: { mode: 'single' } })
  assertRefused(t, await refresh(app, withPart(pair.refresh_token, 5, randomBytes(32).toString('base64url'))), 401, 'AUTH_REFRESH_INVALID')
  assertRefused(t, await refresh(app, pair.refresh_token), 401, 'AUTH_SESSION_REPLACED')
})

t.test('forgery: tokens naming a session do not spend that session\'s refresh quota', async (t) => {
  const pair = await login(limited, 'alice')
  for (let i = 0; i < 5; i++) {
    assertRefused(t, await refresh(limited, withPart(pair.refresh_token, 5, randomBytes(32).toString('base64url'))), 401, 'AUTH_REFRESH_INVALID')
  }
  t.equal((await refresh(limited, pair.refresh_token)).statusCode, 200)
})

t.test('splicing: another session\'s id with the victim\'s nonce and MAC', async (t) => {
  const victim = await login(app, 'alice')
  const other = await login(app, 'bob')
  await refusedAndHarmless(t, victim, withPart(victim.refresh_token, 1, partsOf(other.refresh_token)[1]))
  t.equal((await refresh(app, other.refresh_token)).statusCode, 200, 'nor the session whose id was borrowed')
})

t.test('splicing: another user with the rest of the victim\'s token', async (t) => {
  const victim = await login(app, 'alice')
  await refusedAndHarmless(t, victim, withPart(victim.refresh_token, 0, Buffer.from('bob').toString('base64url')))
})

t.test('splicing: one session\'s nonce with another session\'s MAC, same user', async (t) => {
  const first = await login(app, 'alice')
  const second = await login(app, 'alice')
  await refusedAndHarmless(t, first, withPart(first.refresh_token, 4, partsOf(second.refresh_token)[4]))
})

t.test('splicing: the victim\'s generation and deadline over its successor\'s nonce and MAC', async (t) => {
  const pair = await login(app, 'alice')
  const next = codec.successor(codec.parse(pair.refresh_token)!).value
  const [, , , , nonce, mac] = partsOf(next)
  await refusedAndHarmless(t, pair, [...partsOf(pair.refresh_token).slice(0, 4), nonce, mac].join('.'))
})

t.test('splicing: a genuine token of another session of the same user under the victim\'s id', async (t) => {
  const victim = await login(app, 'alice')
  const own = await login(app, 'alice')
  await refusedAndHarmless(t, victim, withPart(own.refresh_token, 1, victim.session_id))
  t.equal((await refresh(app, own.refresh_token)).statusCode, 200)
})

t.test('MAC respelling: standard base64 (+ and /) for the same bytes', async (t) => {
  // About one MAC in four has neither '-' nor '_': log in until one has (bounded).
  let pair = await login(app, 'alice')
  for (let i = 0; i < 30 && !/[-_]/.test(partsOf(pair.refresh_token)[5]); i++) pair = await login(app, 'alice')
  const mac = partsOf(pair.refresh_token)[5]
  t.match(mac, /[-_]/, 'a MAC with a character the alphabets spell differently')
  await refusedAndHarmless(t, pair, withPart(pair.refresh_token, 5, mac.replace(/-/g, '+').replace(/_/g, '/')))
})

t.test('MAC respelling: the MAC with base64 padding', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, withPart(pair.refresh_token, 5, `${partsOf(pair.refresh_token)[5]}=`))
})

t.test('MAC respelling: the spare bits of the MAC\'s last character', async (t) => {
  const pair = await login(app, 'alice')
  const mac = partsOf(pair.refresh_token)[5]
  t.same(Buffer.from(respellLast(mac), 'base64url'), Buffer.from(mac, 'base64url'), 'the same bytes')
  await refusedAndHarmless(t, pair, withPart(pair.refresh_token, 5, respellLast(mac)))
})

t.test('MAC respelling: the MAC\'s bytes as hex', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, withPart(pair.refresh_token, 5, Buffer.from(partsOf(pair.refresh_token)[5], 'base64url').toString('hex')))
})

t.test('respelling: the spare bits of the nonce\'s last character', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, withPart(pair.refresh_token, 4, respellLast(partsOf(pair.refresh_token)[4])))
})

t.test('respelling: the user id with the spare bits of its last character', async (t) => {
  const pair = await login(app, 'alice')
  const user = partsOf(pair.refresh_token)[0]
  t.equal(Buffer.from(respellLast(user), 'base64url').toString(), 'alice', 'the same user id')
  await refusedAndHarmless(t, pair, withPart(pair.refresh_token, 0, respellLast(user)))
})

t.test('respelling: the generation with a leading zero', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, withPart(pair.refresh_token, 2, `0${partsOf(pair.refresh_token)[2]}`))
})

t.test('truncated: the last character dropped', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, pair.refresh_token.slice(0, -1))
})

t.test('truncated: the MAC dropped (five parts)', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, partsOf(pair.refresh_token).slice(0, 5).join('.'))
})

t.test('truncated: an empty MAC', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, withPart(pair.refresh_token, 5, ''))
})

t.test('truncated: the session id alone', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, pair.session_id)
})

t.test('truncated: an empty string', async (t) => {
  await refusedAndHarmless(t, await login(app, 'alice'), '')
})

t.test('overlong: one character more', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, `${pair.refresh_token}A`)
})

t.test('overlong: a seventh part', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, `${pair.refresh_token}.${partsOf(pair.refresh_token)[5]}`)
})

t.test('overlong: a trailing newline', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, `${pair.refresh_token}\n`)
})

t.test('overlong: a leading space', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, ` ${pair.refresh_token}`)
})

t.test('overlong: a trailing NUL', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, `${pair.refresh_token}\u0000`)
})

t.test('overlong: padded out to just past the longest token accepted (2048)', async (t) => {
  const pair = await login(app, 'alice')
  const user = Buffer.from('alice' + 'x'.repeat(1600)).toString('base64url')
  const long = withPart(pair.refresh_token, 0, user)
  t.ok(long.length > 2048)
  await refusedAndHarmless(t, pair, long)
})

t.test('overlong: 900 KB, under the body limit', async (t) => {
  const pair = await login(app, 'alice')
  await refusedAndHarmless(t, pair, pair.refresh_token + 'A'.repeat(900_000))
})

t.test('overlong: past the 1 MiB body limit', async (t) => {
  const pair = await login(app, 'alice')
  assertRefused(t, await refresh(app, pair.refresh_token + 'A'.repeat(1_100_000)), 413, 'FST_ERR_CTP_BODY_TOO_LARGE')
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 200)
})
