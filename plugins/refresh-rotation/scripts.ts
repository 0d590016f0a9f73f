import type { ScriptDefinition } from '../../lib/redis.js'
import { INVALIDATE_LUA } from '../token-lifecycle/scripts.js'

/*
 * Refresh state lives in the session hash itself (see token-lifecycle/scripts.ts
 * for the core fields), so a refresh touches no key of its own:
 *   g  generation of the current refresh token (1 at login)
 *   r  digest of the current refresh token (base64url of a truncated SHA-256)
 *   h  rotation history for the grace window: "<generation>:<rotated at ms>;..."
 *      holding only rotations younger than the grace window
 *   k  (replay-guard) thumbprint of the DPoP key the session is bound to
 */

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
 * KEYS[1]  session hash
 * KEYS[2]  the user's session index (sorted set): the session leaves it on reuse
 * ARGV[1]  now (ms)
 * ARGV[2]  generation of the presented token
 * ARGV[3]  digest of the presented token
 * ARGV[4]  digest of its successor
 * ARGV[5]  grace window (ms)
 * ARGV[6]  idle timeout (ms)
 * ARGV[7]  retention after the absolute deadline (ms)
 * ARGV[8]  thumbprint of the DPoP key the request proved, or ''
 * ARGV[9]  session id (member of KEYS[2])
 * Returns { RotateStatus, claims version, absolute deadline } (the last two when 0 or 1).
 * On reuse, PUBLISHes the invalidation of the user's cached sessions (INVALIDATE_LUA).
 */
export const ROTATE: ScriptDefinition = {
  name: 'refresh_rotate',
  lua: INVALIDATE_LUA + `
local f = redis.call('HMGET', KEYS[1], 's', 'a', 'v', 'g', 'r', 'h', 'k')
if f[1] == 'r' then return { 3 } end
if f[1] or not f[2] or not f[3] or not f[4] then return { 2 } end
local now = tonumber(ARGV[1])
if now >= tonumber(f[2]) then return { 4 } end
if f[7] and f[7] ~= ARGV[8] then return { 6 } end
local current = tonumber(f[4])
local presented = tonumber(ARGV[2])
local grace = tonumber(ARGV[5])
if presented == current then
  if f[5] ~= ARGV[3] then return { 2 } end
  local history = ''
  for gen, at in string.gmatch(f[6] or '', '(%d+):(%d+)') do
    if now - tonumber(at) < grace then history = history .. gen .. ':' .. at .. ';' end
  end
  history = history .. current .. ':' .. now .. ';'
  redis.call('HSET', KEYS[1], 'g', current + 1, 'r', ARGV[4], 'h', history, 'l', now)
  redis.call('PEXPIRE', KEYS[1], math.min(tonumber(ARGV[6]), tonumber(f[2]) + tonumber(ARGV[7]) - now))
  return { 0, tonumber(f[3]), tonumber(f[2]) }
end
if presented > current then return { 2 } end
for gen, at in string.gmatch(f[6] or '', '(%d+):(%d+)') do
  if tonumber(gen) == presented and now - tonumber(at) < grace then
    return { 1, tonumber(f[3]), tonumber(f[2]) }
  end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[9])
invalidate(KEYS[1])
return { 5 }
`
}

/**
 * A fixed-window counter for @fastify/rate-limit's store interface (the same
 * semantics as its RedisStore), run through the store guard.
 * KEYS[1] counter; ARGV[1] window (ms). Returns { count, ms left in the window }.
 */
export const RATE_INCR: ScriptDefinition = {
  name: 'rate_incr',
  lua: `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { count, ttl }
`
}
