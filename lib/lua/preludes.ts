import { Status } from './status.js'

/*
 * The Lua preludes the scripts share: each defines local functions a script
 * body calls. A script lists the ones it needs (lib/lua/script.ts puts them
 * after its named KEYS and ARGV); SPEND comes with `once: true` on its own.
 * The session layout they read and write is lib/session-record.ts's.
 */

/**
 * The session record: base 36 times, parse and write the core record
 * "<status>|<absolute deadline>|<last seen>|<claims version>", `keep` a key's
 * TTL, and the liveness rule, written once: every script that decides
 * whether a session is live (VERIFY, ROTATE, walk()) asks `liveness`.
 * All numbers stay below 2^53, where Lua's doubles are exact.
 *
 * liveness(status, deadline, last seen, now, idle, retention):
 *   DEAD      now >= min(last seen + idle timeout, deadline + retention)
 *   REPLACED  status 'r' (a tombstone)
 *   EXPIRED   now >= deadline (kept until the retention ends, to answer so)
 *   LIVE      otherwise
 * LIVE, DEAD, REPLACED and EXPIRED are Status.ok, revoked, replaced and
 * expired: what VERIFY answers for each.
 */
export const RECORD = `
local B36 = '0123456789abcdefghijklmnopqrstuvwxyz'
local function b36 (n)
  local s = ''
  repeat
    local d = n % 36
    s = string.sub(B36, d + 1, d + 1) .. s
    n = (n - d) / 36
  until n == 0
  return s
end
-- status, deadline, last seen, claims version (a string); nil when malformed
local function parse (rec)
  local s, a, l, v = string.match(rec or '', '^(%l?)|(%w+)|(%w+)|(%d+)$')
  if not s then return nil end
  return s, tonumber(a, 36), tonumber(l, 36), v
end
local function record (s, a, l, v)
  return s .. '|' .. b36(a) .. '|' .. b36(l) .. '|' .. v
end
-- The key lives as long as its longest-lived record: extended, never shortened.
local function keep (key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
local LIVE, DEAD, REPLACED, EXPIRED = ${Status.ok}, ${Status.revoked}, ${Status.replaced}, ${Status.expired}
local function liveness (s, a, l, now, idle, retention)
  if now >= math.min(l + idle, a + retention) then return DEAD end
  if s == 'r' then return REPLACED end
  if now >= a then return EXPIRED end
  return LIVE
end
`

/**
 * For the scripts that walk all of a user's sessions (includes RECORD):
 * groups the hash's fields by session, each session's `state` decided once by
 * `liveness` (DEAD as well when its record is malformed). Sessions come
 * oldest login first (ties by id), as the 'max' policy and the session list
 * want them. `drop` deletes every field of a session.
 */
export const WALK = RECORD + `
local function walk (key, now, idle, retention)
  local all = redis.call('HGETALL', key)
  local by, list = {}, {}
  for i = 1, #all, 2 do
    local name = all[i]
    -- Fields named '!...' belong to the user, not to a session.
    if string.sub(name, 1, 1) ~= '!' then
      local sid, sub = string.match(name, '^([^:]*):?(.*)$')
      local s = by[sid]
      if not s then
        s = { sid = sid, names = {}, created = 0 }
        by[sid] = s
        list[#list + 1] = s
      end
      s.names[#s.names + 1] = name
      if sub == '' then s.rec = all[i + 1] elseif sub == 'd' then s.dev = all[i + 1] end
    end
  end
  for _, s in ipairs(list) do
    local st, a, l, v = parse(s.rec)
    s.a, s.l, s.v = a, l, v
    s.state = st and liveness(st, a, l, now, idle, retention) or DEAD
    local c, t, d, n = string.match(s.dev or '', '^(%w+)|([^|]*)|([^|]*)|(.*)$')
    if c then s.created, s.type, s.device, s.name = tonumber(c, 36), t, d, n end
  end
  table.sort(list, function (x, y)
    if x.created ~= y.created then return x.created < y.created end
    return x.sid < y.sid
  end)
  return list
end
local function drop (key, s)
  redis.call('HDEL', key, unpack(s.names))
end
`

/**
 * For every script that ends a session or changes its claims version:
 * PUBLISHes the user's tag (`<prefix>:{<user>}:`) on `<prefix>:inv`, inside
 * the same script, so that every instance's local cache
 * (plugins/token-lifecycle/local-cache.ts) drops that user's entries. Both
 * are derived from a key of the user (the prefix holds no brace, the tag is
 * everything up to '}:'). PUBLISH takes no key: allowed in scripts,
 * broadcast cluster-wide.
 */
export const INVALIDATE = `
local function invalidate (userKey)
  local tag, prefix = string.match(userKey, '^(([^{]*){[^}]*}:)')
  redis.call('PUBLISH', prefix .. 'inv', tag)
end
`

/**
 * For the scripts that spend one-time keys (declared `once: true`; script.ts
 * adds it): the keys are KEYS[ONCE_KEY..], the TTL (ms) of KEYS[ONCE_KEY + j]
 * is ARGV[ONCE_TTL + j], both set by the script's header. All or none:
 * returns nothing when every key was spent now, else Status.onceSpentBase + j
 * for the first key j (0-based) already spent. SET NX checks and spends in
 * one command (one key, the usual case, costs one call, not an EXISTS and a
 * SET); when a later key was spent already, the keys this call just set are
 * deleted again.
 */
export const SPEND = `
local function spend ()
  for j = 0, #KEYS - ONCE_KEY do
    if not redis.call('SET', KEYS[ONCE_KEY + j], '1', 'PX', ARGV[ONCE_TTL + j], 'NX') then
      for d = 0, j - 1 do redis.call('DEL', KEYS[ONCE_KEY + d]) end
      return ${Status.onceSpentBase} + j
    end
  end
end
`

/**
 * For the scripts that must not take effect once the store guard has given
 * up on them (lib/redis.ts createStoreGuard): `late(writeBy)` answers an
 * error reply when Redis's clock is past `writeBy` (epoch ms), else nothing.
 * Called before any write, it makes a call that reached Redis too late change
 * nothing; the guard, or the lane, turns the error into 503 like any other.
 * TIME in a script is allowed on Redis 7, which replicates a script's
 * effects, not the script.
 */
export const LATE = `
local function late (writeBy)
  local t = redis.call('TIME')
  local by = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(writeBy)
  if by > 0 then return redis.error_reply('FJS_LATE reached Redis ' .. by .. ' ms after its deadline') end
end
`
