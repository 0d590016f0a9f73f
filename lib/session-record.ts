import { percentEscape } from './keys.js'

/*
 * How one session is laid out in its user's hash (`<prefix>:{<user>}:s`).
 * Each field stays well under Redis's `hash-max-listpack-value` (64 bytes by
 * default), so a user's hash keeps the compact listpack encoding; times are
 * milliseconds in base 36 (8 characters instead of 13).
 *
 *   <sid>          the core record, read by every request:
 *                  "<status>|<absolute deadline>|<last seen>|<claims version>"
 *                  status '' = live, 'r' = replaced by a newer login (a tombstone)
 *   <sid>:d        the device: "<created>|<type>|<id>|<name>" (type and id
 *                  escape '|' and '%'; the name comes last and needs no escaping)
 *   <sid>:<name>   fields other plugins add at login (refresh-rotation's 'r',
 *                  replay-guard's 'k'); they go with the session
 *   !c             not a session: when the user's claims last changed (ms), so
 *                  that a login that read the claims before a role change
 *                  issues a stale first token (see OPEN and BUMP_CLAIMS)
 *
 * A record is dead once now >= min(last seen + idle timeout, absolute deadline
 * + retention): the scripts check it, since one key holds sessions that expire
 * at different times. The key's own TTL is the latest expiry of its records,
 * so the hash never outlives them. Session ids are base64url: no ':' or '|'.
 */

export const SESSION_ID = /^[A-Za-z0-9_-]+$/

const RECORD_SPECIAL = /[%|]/g

export function escapeRecordPart (value: string): string {
  return percentEscape(value, RECORD_SPECIAL)
}

export function unescapeRecordPart (value: string): string {
  return value.includes('%') ? value.replace(/%(25|7C)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))) : value
}

export function coreRecord (deadline: number, lastSeen: number, claimsVersion: number): string {
  return `|${deadline.toString(36)}|${lastSeen.toString(36)}|${claimsVersion}`
}

export function deviceRecord (created: number, type: string, id: string, name: string): string {
  return `${created.toString(36)}|${escapeRecordPart(type)}|${escapeRecordPart(id)}|${name}`
}

export interface CoreRecord {
  status: '' | 'r'
  deadline: number
  lastSeen: number
  claimsVersion: number
}

/** Reads a core record (tests and tools; the scripts parse it in Lua). */
export function parseCoreRecord (value: string): CoreRecord {
  const [status, deadline, lastSeen, claimsVersion] = value.split('|')
  return {
    status: status as CoreRecord['status'],
    deadline: parseInt(deadline, 36),
    lastSeen: parseInt(lastSeen, 36),
    claimsVersion: Number(claimsVersion)
  }
}

/**
 * The Lua side of the layout, prepended to the scripts that need it. All
 * numbers stay below 2^53, where Lua's doubles are exact.
 */
export const RECORD_LUA = `
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
`

/**
 * For the scripts that walk all of a user's sessions: groups the hash's
 * fields by session, with each session's liveness decided once.
 *   state 'live' | 'expired' (past its absolute deadline, kept to answer so) |
 *         'replaced' (tombstone) | 'dead' (to delete: idle, past retention, malformed)
 * Sessions come oldest login first (ties by id), as the 'max' policy and the
 * session list want them.
 */
export const WALK_LUA = RECORD_LUA + `
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
    if not st or now >= math.min(l + idle, a + retention) then s.state = 'dead'
    elseif st == 'r' then s.state = 'replaced'
    elseif now >= a then s.state = 'expired'
    else s.state = 'live' end
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
