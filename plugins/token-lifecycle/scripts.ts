import { LATE, RECORD, INVALIDATE, WALK } from '../../lib/lua/preludes.js'
import { defineIssueScript, defineLuaScript } from '../../lib/lua/script.js'
import { Status } from '../../lib/lua/status.js'

/*
 * Every script here touches one declared key of the user, their sessions hash
 * (layout in lib/session-record.ts), plus the one-time keys VERIFY and OPEN
 * spend. The Lua protocol (statuses, preludes, the liveness rule, named
 * KEYS/ARGV) is lib/lua's.
 *
 * A session's expiry: min(last seen + idle timeout, absolute deadline +
 * retention), where the retention keeps a session past its absolute deadline
 * just long enough to answer AUTH_SESSION_EXPIRED instead of "unknown".
 *
 * VERIFY with one-time keys, and OPEN, take the store guard's `writeBy`
 * (LATE): a call answered 503 must not spend a key or open a session when
 * a stalled Redis runs it later. The scripts that end sessions or stale
 * claims take none: run late, they still do what was asked, the safe side of
 * a revocation, and a retry of them changes nothing more.
 */

/** What the walking scripts take to tell live records from dead ones. */
const LIFETIME = { now: 'number', idle: 'number', retention: 'number' } as const

/**
 * The per-request check: the only Redis call an authenticated request makes,
 * whatever plugins are registered. Plugins extend it with one-time keys
 * (replay guard, proof ids) instead of adding round trips.
 *
 * sessions       the user's sessions hash
 * (one-time keys to spend, SET NX semantics, all or none)
 * sid            session id
 * now            now (ms)
 * claimsVersion  claims version carried by the token
 * touch          touch interval (ms): last seen is written at most this often
 * idle           idle timeout (ms)
 * retention      retention after the absolute deadline (ms)
 * writeBy        with one-time keys only: the store guard's `writeBy` (epoch
 *                ms, LATE): past it nothing is spent, and the answer is an
 *                error (503)
 * Without one-time keys a late call is let through: all it can write is a
 * last-seen time, true of a token that was presented, and the hot path is
 * spared a TIME call. That call has a fixed arity (authenticate.ts fills a
 * list built once, by `VERIFY.at`).
 * Answers a positive Status on refusal (revoked, replaced, expired, stale,
 * onceSpentBase + i); on success, minus the time (ms) up to which the session
 * is known live: min(absolute deadline, last seen + idle timeout). The local
 * cache (if on) never keeps an answer past it.
 */
export const VERIFY = defineLuaScript({
  name: 'verify',
  keys: ['sessions'],
  argv: { sid: 'string', now: 'number', claimsVersion: 'string', touch: 'number', idle: 'number', retention: 'number', writeBy: 'string' },
  once: true,
  preludes: [RECORD, LATE],
  body: `
if #KEYS >= ONCE_KEY then
  local refused = late(writeBy)
  if refused then return refused end
end
local s, a, l, v = parse(redis.call('HGET', sessions, sid))
if not s then return ${Status.revoked} end
local state = liveness(s, a, l, now, idle, retention)
if state ~= LIVE then return state end
if v ~= claimsVersion then return ${Status.stale} end
local spent = spend()
if spent then return spent end
if now - l >= touch then
  redis.call('HSET', sessions, sid, record(s, a, now, v))
  keep(sessions, math.min(now + idle, a + retention) - now)
  l = now
end
return -math.min(a, l + idle)
`
})

/**
 * Opens a session and applies the SSO policy in the same atomic step, so
 * concurrent logins can never leave more sessions than the policy allows.
 * Replaced sessions become tombstones (status 'r', the rest of their fields
 * gone) that keep their expiry (their tokens can be presented until then) and
 * answer AUTH_SESSION_REPLACED, up to MAX_TOMBSTONES of them per user (service.ts). Dead
 * records are pruned on the way.
 *
 * sessions        the user's sessions hash
 * (one-time keys to spend first (proof ids), whatever the answer, unless the call is late)
 * now             now (ms)
 * sid             new session id
 * idle            idle timeout (ms)
 * deadline        absolute deadline (ms, epoch)
 * retention       retention after the absolute deadline (ms)
 * policy          'off' | 'single' | 'device-type' | 'max'
 * max             N for 'max'
 * deviceType      the new session's device type (escaped as in the device record)
 * coreRecord      the new session's core record
 * deviceRecord    the new session's device record
 * maxTombstones   how many tombstones the user keeps at most (the least recently used go first)
 * claimsLoadedAt  when (ms) the login read the claims: a change of the user's
 *                 claims after it makes them suspect
 * writeBy         the store guard's `writeBy` (defineIssueScript: past it
 *                 nothing is done, and the answer is an error, 503)
 * fields          name, value pairs of the fields other plugins add (stored as <sid>:<name>)
 * Answers { Status.onceSpentBase + i } when the i-th one-time key was
 * already spent (nothing else done); else a flat list: 1 when the user's claims changed after
 * claimsLoadedAt (the first access token must be stale), else 0; then the replaced sessions: sid,
 * device id, device type, device name, ...
 */
export const OPEN = defineIssueScript({
  name: 'open',
  argv: {
    now: 'number', sid: 'string', idle: 'number', deadline: 'number', retention: 'number', policy: 'string', max: 'number',
    deviceType: 'string', coreRecord: 'string', deviceRecord: 'string', maxTombstones: 'number', claimsLoadedAt: 'number'
  },
  rest: 'fields',
  preludes: [WALK, INVALIDATE],
  body: `
local live, tombstones = {}, {}
for _, s in ipairs(walk(sessions, now, idle, retention)) do
  if s.state == DEAD then drop(sessions, s)
  elseif s.state == LIVE then live[#live + 1] = s
  elseif s.state == REPLACED then tombstones[#tombstones + 1] = s end
end
local replaced = {}
local function replace (s)
  -- Rewrite the core record before dropping the rest: the hash never empties
  -- (which would delete the key and its TTL) in between.
  redis.call('HSET', sessions, s.sid, record('r', s.a, s.l, s.v))
  local rest = {}
  for _, name in ipairs(s.names) do
    if name ~= s.sid then rest[#rest + 1] = name end
  end
  if #rest > 0 then redis.call('HDEL', sessions, unpack(rest)) end
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
    if s.type == deviceType then replace(s) end
  end
elseif policy == 'max' then
  local excess = #live - max + 1
  for i = 1, excess do replace(live[i]) end
end
-- Tombstones only tell a kicked device why: keep the most recently used ones,
-- so that a user who logs in again and again does not grow a hash every
-- login has to walk.
local excess = #tombstones - maxTombstones
if excess > 0 then
  table.sort(tombstones, function (x, y) return x.l < y.l end)
  for i = 1, excess do drop(sessions, tombstones[i]) end
end
local set = { sid, coreRecord, sid .. ':d', deviceRecord }
for i = 1, #fields, 2 do
  set[#set + 1] = sid .. ':' .. fields[i]
  set[#set + 1] = fields[i + 1]
end
redis.call('HSET', sessions, unpack(set))
keep(sessions, math.min(idle, deadline + retention - now))
if #replaced > 0 then invalidate(sessions) end
local changed = tonumber(redis.call('HGET', sessions, '!c') or '-1')
table.insert(replaced, 1, changed > claimsLoadedAt and 1 or 0)
return replaced
`
})

/**
 * Ends one live session of the user (logout, "delete this session").
 * sessions hash; sid, now, idle timeout, retention.
 * Answers 1 when a live session was ended, 0 when it was not the user's or not live.
 */
export const END_SESSION = defineLuaScript({
  name: 'end_session',
  keys: ['sessions'],
  argv: { sid: 'string', ...LIFETIME },
  preludes: [WALK, INVALIDATE],
  body: `
for _, s in ipairs(walk(sessions, now, idle, retention)) do
  if s.sid == sid then
    if s.state ~= LIVE then return 0 end
    drop(sessions, s)
    invalidate(sessions)
    return 1
  end
end
return 0
`
})

/**
 * Ends every session of the user that is not a tombstone, or only those of
 * one device; prunes dead records on the way.
 * sessions hash; device id (escaped), or '' for all; now, idle timeout, retention.
 * Answers the number of live sessions ended.
 */
export const END_USER_SESSIONS = defineLuaScript({
  name: 'end_user_sessions',
  keys: ['sessions'],
  argv: { deviceId: 'string', ...LIFETIME },
  preludes: [WALK, INVALIDATE],
  body: `
local ended = 0
for _, s in ipairs(walk(sessions, now, idle, retention)) do
  if s.state == DEAD then drop(sessions, s)
  elseif s.state ~= REPLACED and (deviceId == '' or s.device == deviceId) then
    drop(sessions, s)
    if s.state == LIVE then ended = ended + 1 end
  end
end
if ended > 0 then invalidate(sessions) end
return ended
`
})

/**
 * Makes every live access token of the user stale (a role change): each live
 * session's claims version goes up by one. No session ends. The time of the
 * change is kept in the user's '!c' field, so that a login that read the
 * claims before it, and opens its session after it, issues a stale token.
 * sessions hash; now, idle timeout, retention; keptFor: how long (ms) at least
 * the '!c' field is kept.
 * Answers the number of sessions touched.
 */
export const BUMP_CLAIMS = defineLuaScript({
  name: 'bump_claims',
  keys: ['sessions'],
  argv: { ...LIFETIME, keptFor: 'number' },
  preludes: [WALK, INVALIDATE],
  body: `
local touched = 0
for _, s in ipairs(walk(sessions, now, idle, retention)) do
  if s.state == LIVE then
    redis.call('HSET', sessions, s.sid, record('', s.a, s.l, tonumber(s.v) + 1))
    touched = touched + 1
  end
end
redis.call('HSET', sessions, '!c', string.format('%d', now))
keep(sessions, keptFor)
if touched > 0 then invalidate(sessions) end
return touched
`
})

/**
 * Lists the user's live sessions, oldest login first.
 * sessions hash; now, idle timeout, retention.
 * Answers a flat list: sid, device id, device type, device name, created, last seen, ...
 * (device fields escaped as in the device record; times in ms).
 */
export const LIST_SESSIONS = defineLuaScript({
  name: 'list_sessions',
  keys: ['sessions'],
  argv: LIFETIME,
  preludes: [WALK],
  body: `
local out = {}
for _, s in ipairs(walk(sessions, now, idle, retention)) do
  if s.state == LIVE then
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
})
