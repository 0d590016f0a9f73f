import type { ScriptDefinition } from '../../lib/redis.js'

/*
 * Session hash fields (one-letter names: this hash exists once per session,
 * and every byte of it is multiplied by the number of sessions):
 *   d device id, t device type, n device name, c created (ms), l last seen (ms),
 *   a absolute deadline (ms), v claims version, s status of a dead session kept
 *   as a tombstone ('r' = replaced by a newer login), plus the fields other
 *   plugins add (refresh-rotation: g generation, r digest, h rotation history).
 *
 * Key TTL of a live session: min(idle timeout, absolute deadline + retention - now),
 * where the retention keeps a session past its absolute deadline just long
 * enough to answer AUTH_SESSION_EXPIRED instead of "unknown".
 */

/**
 * Lua prelude of every script that ends a session or changes its claims
 * version: PUBLISHes the user's tag (`<prefix>:{<user>}:`) on `<prefix>:inv`,
 * inside the same script, so that every instance's local cache (see
 * local-cache.ts) drops that user's entries. Both are derived from a key of
 * the user (the prefix holds no brace, the tag is everything up to '}:').
 * PUBLISH takes no key: allowed in scripts, broadcast cluster-wide.
 */
export const INVALIDATE_LUA = `
local function invalidate (userKey)
  local tag, prefix = string.match(userKey, '^(([^{]*){[^}]*}:)')
  redis.call('PUBLISH', prefix .. 'inv', tag)
end
`

/** Status codes shared by the scripts and the code that reads their answers. */
export const VerifyStatus = {
  /** Success is any answer <= 0 (see VERIFY). */
  ok: 0,
  revoked: 1,
  replaced: 2,
  expired: 3,
  stale: 4,
  /** 10 + i: the i-th one-time key (0-based) was already spent. */
  onceSpentBase: 10
} as const

/**
 * The per-request check: the only Redis call an authenticated request makes,
 * whatever plugins are registered. Plugins extend it with one-time keys
 * (replay guard, DPoP proof ids) instead of adding round trips.
 *
 * KEYS[1]      session hash
 * KEYS[2..n]   one-time keys to spend (SET NX semantics, all or none)
 * ARGV[1]      now (ms)
 * ARGV[2]      claims version carried by the token
 * ARGV[3]      touch interval (ms): last_seen_at is written at most this often
 * ARGV[4]      idle timeout (ms)
 * ARGV[5]      retention after the absolute deadline (ms)
 * ARGV[6..]    TTL (ms) of each one-time key, in KEYS order
 * Returns a positive VerifyStatus code on refusal; on success, minus the time
 * (ms) up to which the session is known live: min(absolute deadline, last seen
 * + idle timeout). The local cache (if on) never keeps an answer past it.
 */
export const VERIFY: ScriptDefinition = {
  name: 'verify',
  lua: `
local f = redis.call('HMGET', KEYS[1], 's', 'v', 'a', 'l')
if f[1] then
  if f[1] == 'r' then return 2 end
  return 1
end
if not f[3] then return 1 end
local now = tonumber(ARGV[1])
local deadline = tonumber(f[3])
if now >= deadline then return 3 end
if f[2] ~= ARGV[2] then return 4 end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 8 + i end
end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], '1', 'PX', ARGV[4 + i])
end
local seen = tonumber(f[4])
if now - seen >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'l', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], math.min(tonumber(ARGV[4]), deadline + tonumber(ARGV[5]) - now))
  seen = now
end
return -math.min(deadline, seen + tonumber(ARGV[4]))
`
}

/**
 * Opens a session and applies the SSO policy in the same atomic step, so
 * concurrent logins can never leave more sessions than the policy allows.
 * Replaced sessions become tombstones ({s='r'}) that keep their TTL (their
 * tokens can be presented until then) and answer AUTH_SESSION_REPLACED.
 *
 * KEYS[1]      the user's session index (sorted set, score = login time)
 * KEYS[2]      the new session hash
 * ARGV[1]      now (ms)
 * ARGV[2]      new session id
 * ARGV[3]      idle timeout (ms)
 * ARGV[4]      absolute deadline (ms, epoch)
 * ARGV[5]      retention after the absolute deadline (ms)
 * ARGV[6]      policy: 'off' | 'single' | 'device-type' | 'max'
 * ARGV[7]      N for 'max'
 * ARGV[8]      the new session's device type
 * ARGV[9]      session key base (the user's hash tag + 's:')
 * ARGV[10..]   field, value pairs of the new session hash
 * Returns a flat list of the replaced sessions: sid, device id, device type, device name, ...
 */
export const OPEN: ScriptDefinition = {
  name: 'open',
  lua: INVALIDATE_LUA + `
local now = tonumber(ARGV[1])
local base = ARGV[9]
local policy = ARGV[6]
local live = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = base .. sid
  local f = redis.call('HMGET', key, 's', 'a', 'd', 't', 'n')
  if f[1] or not f[2] or tonumber(f[2]) <= now then
    redis.call('ZREM', KEYS[1], sid)
  else
    live[#live + 1] = { sid, key, f[3], f[4], f[5] }
  end
end
local replaced = {}
local function replace (s)
  redis.call('HDEL', s[2], 'd', 't', 'n', 'c', 'l', 'v')
  redis.call('HSET', s[2], 's', 'r')
  redis.call('ZREM', KEYS[1], s[1])
  replaced[#replaced + 1] = s[1]
  replaced[#replaced + 1] = s[3]
  replaced[#replaced + 1] = s[4]
  replaced[#replaced + 1] = s[5]
end
if policy == 'single' then
  for _, s in ipairs(live) do replace(s) end
elseif policy == 'device-type' then
  for _, s in ipairs(live) do
    if s[4] == ARGV[8] then replace(s) end
  end
elseif policy == 'max' then
  local excess = #live - tonumber(ARGV[7]) + 1
  for i = 1, excess do replace(live[i]) end
end
local fields = {}
for i = 10, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
local lifetime = tonumber(ARGV[4]) + tonumber(ARGV[5]) - now
redis.call('PEXPIRE', KEYS[2], math.min(tonumber(ARGV[3]), lifetime))
if #replaced > 0 then invalidate(KEYS[1]) end
redis.call('ZADD', KEYS[1], now, ARGV[2])
if redis.call('PTTL', KEYS[1]) < lifetime then
  redis.call('PEXPIRE', KEYS[1], lifetime)
end
return replaced
`
}

/**
 * Ends one live session of the user (logout, "delete this session").
 * KEYS[1] index, KEYS[2] session hash; ARGV[1] session id.
 * Returns 1 when a live session was ended, 0 when it was not the user's or not live.
 */
export const END_SESSION: ScriptDefinition = {
  name: 'end_session',
  lua: INVALIDATE_LUA + `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
invalidate(KEYS[1])
return 1
`
}

/**
 * Ends every live session of the user, or only those of one device.
 * KEYS[1] index; ARGV[1] session key base; ARGV[2] device id, or '' for all.
 * Returns the number of sessions ended.
 */
export const END_USER_SESSIONS: ScriptDefinition = {
  name: 'end_user_sessions',
  lua: INVALIDATE_LUA + `
local ended = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. sid
  if ARGV[2] == '' or redis.call('HGET', key, 'd') == ARGV[2] then
    ended = ended + redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], sid)
  end
end
if ended > 0 then invalidate(KEYS[1]) end
return ended
`
}

/**
 * Makes every live access token of the user stale (a role change): each live
 * session's claims version goes up by one. No session ends.
 * KEYS[1] index; ARGV[1] session key base. Returns the number of sessions touched.
 */
export const BUMP_CLAIMS: ScriptDefinition = {
  name: 'bump_claims',
  lua: INVALIDATE_LUA + `
local touched = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. sid
  if redis.call('HEXISTS', key, 'v') == 1 then
    redis.call('HINCRBY', key, 'v', 1)
    touched = touched + 1
  end
end
if touched > 0 then invalidate(KEYS[1]) end
return touched
`
}

/**
 * Lists the user's live sessions, oldest login first.
 * KEYS[1] index; ARGV[1] session key base; ARGV[2] now (ms).
 * Returns a flat list: sid, device id, device type, device name, created, last seen, ...
 */
export const LIST_SESSIONS: ScriptDefinition = {
  name: 'list_sessions',
  lua: `
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local f = redis.call('HMGET', ARGV[1] .. sid, 's', 'a', 'd', 't', 'n', 'c', 'l')
  if not f[1] and f[2] and tonumber(f[2]) > tonumber(ARGV[2]) then
    out[#out + 1] = sid
    for i = 3, 7 do out[#out + 1] = f[i] end
  end
end
return out
`
}
