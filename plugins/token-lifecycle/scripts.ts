import type { ScriptDefinition } from '../../lib/redis.js'
import { LATE_LUA } from '../../lib/redis.js'
import { RECORD_LUA, WALK_LUA } from '../../lib/session-record.js'

/*
 * Every script here touches one declared key of the user, their sessions hash
 * (layout in lib/session-record.ts), plus the one-time keys VERIFY spends.
 *
 * A session's expiry: min(last seen + idle timeout, absolute deadline +
 * retention), where the retention keeps a session past its absolute deadline
 * just long enough to answer AUTH_SESSION_EXPIRED instead of "unknown".
 *
 * VERIFY with one-time keys, and OPEN, take the store guard's `writeBy`
 * (LATE_LUA): a call answered 503 must not spend a key or open a session when
 * a stalled Redis runs it later. The scripts that end sessions or stale
 * claims take none: run late, they still do what was asked, the safe side of
 * a revocation, and a retry of them changes nothing more.
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

/**
 * Lua prelude of the scripts that spend one-time keys (KEYS[2..]), whose TTLs
 * are at ARGV[ttlBase + i] for KEYS[i]: all or none. Returns nothing when
 * spent, else VerifyStatus.onceSpentBase + the index (0-based) of the first
 * key already spent. SET NX checks and spends in one command (one key, the
 * usual case, costs one call, not an EXISTS and a SET); when a later key was
 * spent already, the keys this call just set are deleted again.
 */
export const SPEND_LUA = `
local function spend (ttlBase)
  for i = 2, #KEYS do
    if not redis.call('SET', KEYS[i], '1', 'PX', ARGV[ttlBase + i], 'NX') then
      for j = 2, i - 1 do redis.call('DEL', KEYS[j]) end
      return 8 + i
    end
  end
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
 * KEYS[1]      the user's sessions hash
 * KEYS[2..n]   one-time keys to spend (SET NX semantics, all or none)
 * ARGV[1]      session id
 * ARGV[2]      now (ms)
 * ARGV[3]      claims version carried by the token
 * ARGV[4]      touch interval (ms): last seen is written at most this often
 * ARGV[5]      idle timeout (ms)
 * ARGV[6]      retention after the absolute deadline (ms)
 * ARGV[7]      with one-time keys only: the store guard's `writeBy` (epoch
 *              ms, LATE_LUA): past it nothing is spent, and the answer is an
 *              error (503)
 * ARGV[8..]    TTL (ms) of each one-time key, in KEYS order
 * Without one-time keys a late call is let through: all it can write is a
 * last-seen time, true of a token that was presented, and the hot path is
 * spared a TIME call.
 * Returns a positive VerifyStatus code on refusal; on success, minus the time
 * (ms) up to which the session is known live: min(absolute deadline, last seen
 * + idle timeout). The local cache (if on) never keeps an answer past it.
 */
export const VERIFY: ScriptDefinition = {
  name: 'verify',
  lua: RECORD_LUA + SPEND_LUA + LATE_LUA + `
if #KEYS > 1 then
  local refused = late(ARGV[7])
  if refused then return refused end
end
local s, a, l, v = parse(redis.call('HGET', KEYS[1], ARGV[1]))
if not s then return 1 end
local now = tonumber(ARGV[2])
local idle = tonumber(ARGV[5])
local ends = a + tonumber(ARGV[6])
if now >= math.min(l + idle, ends) then return 1 end
if s == 'r' then return 2 end
if now >= a then return 3 end
if v ~= ARGV[3] then return 4 end
local spent = spend(6)
if spent then return spent end
if now - l >= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], ARGV[1], record(s, a, now, v))
  keep(KEYS[1], math.min(now + idle, ends) - now)
  l = now
end
return -math.min(a, l + idle)
`
}

/**
 * Opens a session and applies the SSO policy in the same atomic step, so
 * concurrent logins can never leave more sessions than the policy allows.
 * Replaced sessions become tombstones (status 'r', the rest of their fields
 * gone) that keep their expiry (their tokens can be presented until then) and
 * answer AUTH_SESSION_REPLACED, up to MAX_TOMBSTONES of them per user (service.ts). Dead
 * records are pruned on the way.
 *
 * KEYS[1]      the user's sessions hash
 * KEYS[2..n]   one-time keys to spend first (DPoP proof ids), whatever the answer
 *              (unless the call is late: ARGV[13])
 * ARGV[1]      now (ms)
 * ARGV[2]      new session id
 * ARGV[3]      idle timeout (ms)
 * ARGV[4]      absolute deadline (ms, epoch)
 * ARGV[5]      retention after the absolute deadline (ms)
 * ARGV[6]      policy: 'off' | 'single' | 'device-type' | 'max'
 * ARGV[7]      N for 'max'
 * ARGV[8]      the new session's device type (escaped as in the device record)
 * ARGV[9]      the new session's core record
 * ARGV[10]     the new session's device record
 * ARGV[11]     how many tombstones the user keeps at most (the least recently used go first)
 * ARGV[12]     when (ms) the login read the claims: a change of the user's
 *              claims after it makes them suspect
 * ARGV[13]     the store guard's `writeBy` (epoch ms, LATE_LUA): past it
 *              nothing is done, and the answer is an error (503)
 * ARGV[14..]   the one-time keys' TTLs (ms), in KEYS order; then name, value
 *              pairs of the fields other plugins add (stored as <sid>:<name>)
 * Returns { VerifyStatus.onceSpentBase + i } when the i-th one-time key was
 * already spent (nothing else done); else a flat list: 1 when the user's claims changed after ARGV[12] (the
 * first access token must be stale), else 0; then the replaced sessions: sid,
 * device id, device type, device name, ...
 */
export const OPEN: ScriptDefinition = {
  name: 'open',
  lua: WALK_LUA + INVALIDATE_LUA + SPEND_LUA + LATE_LUA + `
local refused = late(ARGV[13])
if refused then return refused end
local spent = spend(12)
if spent then return { spent } end
local now = tonumber(ARGV[1])
local idle = tonumber(ARGV[3])
local policy = ARGV[6]
local live, tombstones = {}, {}
for _, s in ipairs(walk(KEYS[1], now, idle, tonumber(ARGV[5]))) do
  if s.state == 'dead' then drop(KEYS[1], s)
  elseif s.state == 'live' then live[#live + 1] = s
  elseif s.state == 'replaced' then tombstones[#tombstones + 1] = s end
end
local replaced = {}
local function replace (s)
  -- Rewrite the core record before dropping the rest: the hash never empties
  -- (which would delete the key and its TTL) in between.
  redis.call('HSET', KEYS[1], s.sid, record('r', s.a, s.l, s.v))
  local rest = {}
  for _, name in ipairs(s.names) do
    if name ~= s.sid then rest[#rest + 1] = name end
  end
  if #rest > 0 then redis.call('HDEL', KEYS[1], unpack(rest)) end
  tombstones[#tombstones + 1] = s
  replaced[#replaced + 1] = s.sid
  replaced[#replaced + 1] = s.device or ''
  replaced[#replaced + 1] = s.type or ''
  replaced[#replaced + 1] = s.name or ''
end
if policy == 'single' then
  for _, s in ipairs(live) do replace(s) end
elseif policy == 'device-type' then
  for _, s in ipairs(live) do
    if s.type == ARGV[8] then replace(s) end
  end
elseif policy == 'max' then
  local excess = #live - tonumber(ARGV[7]) + 1
  for i = 1, excess do replace(live[i]) end
end
-- Tombstones only tell a kicked device why: keep the most recently used ones,
-- so that a user who logs in again and again does not grow a hash every
-- login has to walk.
local excess = #tombstones - tonumber(ARGV[11])
if excess > 0 then
  table.sort(tombstones, function (x, y) return x.l < y.l end)
  for i = 1, excess do drop(KEYS[1], tombstones[i]) end
end
local sid = ARGV[2]
local fields = { sid, ARGV[9], sid .. ':d', ARGV[10] }
for i = 13 + #KEYS, #ARGV, 2 do
  fields[#fields + 1] = sid .. ':' .. ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
redis.call('HSET', KEYS[1], unpack(fields))
keep(KEYS[1], math.min(idle, tonumber(ARGV[4]) + tonumber(ARGV[5]) - now))
if #replaced > 0 then invalidate(KEYS[1]) end
local changed = tonumber(redis.call('HGET', KEYS[1], '!c') or '-1')
table.insert(replaced, 1, changed > tonumber(ARGV[12]) and 1 or 0)
return replaced
`
}

/**
 * Ends one live session of the user (logout, "delete this session").
 * KEYS[1] sessions hash; ARGV[1] session id, ARGV[2] now, ARGV[3] idle
 * timeout, ARGV[4] retention.
 * Returns 1 when a live session was ended, 0 when it was not the user's or not live.
 */
export const END_SESSION: ScriptDefinition = {
  name: 'end_session',
  lua: WALK_LUA + INVALIDATE_LUA + `
local now = tonumber(ARGV[2])
for _, s in ipairs(walk(KEYS[1], now, tonumber(ARGV[3]), tonumber(ARGV[4]))) do
  if s.sid == ARGV[1] then
    if s.state ~= 'live' then return 0 end
    drop(KEYS[1], s)
    invalidate(KEYS[1])
    return 1
  end
end
return 0
`
}

/**
 * Ends every session of the user that is not a tombstone, or only those of
 * one device; prunes dead records on the way.
 * KEYS[1] sessions hash; ARGV[1] device id (escaped), or '' for all;
 * ARGV[2] now, ARGV[3] idle timeout, ARGV[4] retention.
 * Returns the number of live sessions ended.
 */
export const END_USER_SESSIONS: ScriptDefinition = {
  name: 'end_user_sessions',
  lua: WALK_LUA + INVALIDATE_LUA + `
local ended = 0
for _, s in ipairs(walk(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))) do
  if s.state == 'dead' then drop(KEYS[1], s)
  elseif s.state ~= 'replaced' and (ARGV[1] == '' or s.device == ARGV[1]) then
    drop(KEYS[1], s)
    if s.state == 'live' then ended = ended + 1 end
  end
end
if ended > 0 then invalidate(KEYS[1]) end
return ended
`
}

/**
 * Makes every live access token of the user stale (a role change): each live
 * session's claims version goes up by one. No session ends. The time of the
 * change is kept in the user's '!c' field, so that a login that read the
 * claims before it, and opens its session after it, issues a stale token.
 * KEYS[1] sessions hash; ARGV[1] now, ARGV[2] idle timeout, ARGV[3] retention,
 * ARGV[4] how long (ms) at least the '!c' field is kept.
 * Returns the number of sessions touched.
 */
export const BUMP_CLAIMS: ScriptDefinition = {
  name: 'bump_claims',
  lua: WALK_LUA + INVALIDATE_LUA + `
local touched = 0
for _, s in ipairs(walk(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))) do
  if s.state == 'live' then
    redis.call('HSET', KEYS[1], s.sid, record('', s.a, s.l, tonumber(s.v) + 1))
    touched = touched + 1
  end
end
redis.call('HSET', KEYS[1], '!c', ARGV[1])
keep(KEYS[1], tonumber(ARGV[4]))
if touched > 0 then invalidate(KEYS[1]) end
return touched
`
}

/**
 * Lists the user's live sessions, oldest login first.
 * KEYS[1] sessions hash; ARGV[1] now, ARGV[2] idle timeout, ARGV[3] retention.
 * Returns a flat list: sid, device id, device type, device name, created, last seen, ...
 * (device fields escaped as in the device record; times in ms).
 */
export const LIST_SESSIONS: ScriptDefinition = {
  name: 'list_sessions',
  lua: WALK_LUA + `
local out = {}
for _, s in ipairs(walk(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))) do
  if s.state == 'live' then
    out[#out + 1] = s.sid
    out[#out + 1] = s.device or ''
    out[#out + 1] = s.type or ''
    out[#out + 1] = s.name or ''
    out[#out + 1] = s.created
    out[#out + 1] = s.l
  end
end
return out
`
}
