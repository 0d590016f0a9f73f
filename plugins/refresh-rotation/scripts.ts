import type { ScriptDefinition } from '../../lib/redis.js'
import { LATE_LUA } from '../../lib/redis.js'
import { WALK_LUA } from '../../lib/session-record.js'
import { INVALIDATE_LUA, SPEND_LUA } from '../token-lifecycle/scripts.js'

/*
 * Refresh state is one field of the session in the user's sessions hash (see
 * lib/session-record.ts), so a refresh touches no key of its own:
 *   <sid>:r  "<generation>|<digest>|<history>": generation of the current
 *            refresh token (1 at login), digest of it (base64url of a
 *            truncated SHA-256), and the rotation history for the grace window,
 *            "<generation>:<rotated at, base 36 ms>;..." holding only
 *            rotations younger than the grace window
 *   <sid>:k  (replay-guard) thumbprint of the DPoP key the session is bound to
 */

/** The field refresh-rotation adds to a session at login (stored as `<sid>:r`). */
export function firstRefreshState (digest: string): string {
  return `1|${digest}|`
}

/** What ROTATE answers, first element of its reply. */
export const RotateStatus = {
  /** The current token rotated: its successor is now current. */
  rotated: 0,
  /** An older token within its grace window: answer with its (already stored) successor. */
  grace: 1,
  /** No such session (ended, idle-expired, never had refresh state), or not its current token. */
  invalid: 2,
  replaced: 3,
  expired: 4,
  /** A rotated token past its grace window: the session was ended. */
  reused: 5,
  /** The session is bound to a DPoP key the request did not prove. Nothing changed. */
  dpop: 6
} as const

/**
 * One refresh, atomically: check the session, then rotate, answer from the
 * grace window, or end the session on reuse.
 *
 * Comparing digests with `~=` here is timing-safe in effect: the caller
 * chooses the preimage (the token), not the compared bytes; learning how many
 * leading bytes of a SHA-256 output match tells nothing about the secret
 * token. The token's MAC, the secret-dependent check, is compared in constant
 * time in JS before this script runs. An older generation is not compared
 * with any digest: only this server can mint a token that passes the MAC, and
 * a session has exactly one token per generation (one chain, grown by
 * derivation from one random nonce), so the MAC already identifies it.
 *
 * KEYS[1]  the user's sessions hash
 * KEYS[2..n] one-time keys to spend first (DPoP proof ids), whatever the answer
 *            (unless the call is late: ARGV[10])
 * ARGV[1]  session id
 * ARGV[2]  now (ms)
 * ARGV[3]  generation of the presented token
 * ARGV[4]  digest of the presented token
 * ARGV[5]  digest of its successor
 * ARGV[6]  grace window (ms)
 * ARGV[7]  idle timeout (ms)
 * ARGV[8]  retention after the absolute deadline (ms)
 * ARGV[9]  thumbprint of the DPoP key the request proved, or ''
 * ARGV[10] the store guard's `writeBy` (epoch ms, LATE_LUA): past it nothing
 *          is done, and the answer is an error (503). A rotation that ran
 *          after its 503 would record its old `now`, and the client's retry
 *          with the token it still holds could land past the grace window:
 *          reuse, the session ended.
 * ARGV[11..] the one-time keys' TTLs (ms), in KEYS order
 * Returns { RotateStatus, claims version, absolute deadline } (the last two when 0 or 1),
 * or { VerifyStatus.onceSpentBase + i } when the i-th one-time key was already spent.
 * On reuse, PUBLISHes the invalidation of the user's cached sessions (INVALIDATE_LUA).
 */
export const ROTATE: ScriptDefinition = {
  name: 'refresh_rotate',
  lua: WALK_LUA + INVALIDATE_LUA + SPEND_LUA + LATE_LUA + `
local refused = late(ARGV[10])
if refused then return refused end
local spent = spend(9)
if spent then return { spent } end
local sid = ARGV[1]
local f = redis.call('HMGET', KEYS[1], sid, sid .. ':r', sid .. ':k')
local s, a, l, v = parse(f[1])
if not s then return { 2 } end
local now = tonumber(ARGV[2])
local idle = tonumber(ARGV[7])
local ends = a + tonumber(ARGV[8])
if now >= math.min(l + idle, ends) then return { 2 } end
if s == 'r' then return { 3 } end
if now >= a then return { 4 } end
if f[3] and f[3] ~= ARGV[9] then return { 6 } end
local current, digest, past = string.match(f[2] or '', '^(%d+)|([^|]*)|(.*)$')
if not current then return { 2 } end
current = tonumber(current)
local presented = tonumber(ARGV[3])
local grace = tonumber(ARGV[6])
if presented == current then
  if digest ~= ARGV[4] then return { 2 } end
  local history = ''
  for gen, at in string.gmatch(past, '(%d+):(%w+);') do
    if now - tonumber(at, 36) < grace then history = history .. gen .. ':' .. at .. ';' end
  end
  history = history .. current .. ':' .. b36(now) .. ';'
  redis.call('HSET', KEYS[1], sid, record(s, a, now, v), sid .. ':r', (current + 1) .. '|' .. ARGV[5] .. '|' .. history)
  keep(KEYS[1], math.min(now + idle, ends) - now)
  return { 0, tonumber(v), a }
end
if presented > current then return { 2 } end
for gen, at in string.gmatch(past, '(%d+):(%w+);') do
  if tonumber(gen) == presented and now - tonumber(at, 36) < grace then
    return { 1, tonumber(v), a }
  end
end
for _, w in ipairs(walk(KEYS[1], now, idle, tonumber(ARGV[8]))) do
  if w.sid == sid then drop(KEYS[1], w) end
end
invalidate(KEYS[1])
return { 5 }
`
}
