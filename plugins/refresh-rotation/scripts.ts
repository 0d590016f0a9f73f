import { INVALIDATE, WALK } from '../../lib/lua/preludes.js'
import { defineIssueScript } from '../../lib/lua/script.js'
import { Status } from '../../lib/lua/status.js'

/*
 * Refresh state is one field of the session in the user's sessions hash (see
 * lib/session-record.ts), so a refresh touches no key of its own:
 *   <sid>:r  "<generation>|<digest>|<history>": generation of the current
 *            refresh token (1 at login), digest of it (base64url of a
 *            truncated SHA-256), and the rotation history for the grace window,
 *            "<generation>:<rotated at, base 36 ms>;..." holding only
 *            rotations younger than the grace window
 * Other fields of the session that bind it (IssueContext.bindings, stored at
 * login as <sid>:<field>) are compared by ROTATE, whatever they are.
 */

/** The field refresh-rotation adds to a session at login (stored as `<sid>:r`). */
export function firstRefreshState (digest: string): string {
  return `1|${digest}|`
}

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
 * sessions         the user's sessions hash
 * (one-time keys to spend first (proof ids), whatever the answer, unless the call is late)
 * sid              session id
 * now              now (ms)
 * generation       generation of the presented token
 * presentedDigest  digest of the presented token
 * successorDigest  digest of its successor
 * grace            grace window (ms)
 * idle             idle timeout (ms)
 * retention        retention after the absolute deadline (ms)
 * writeBy          the store guard's `writeBy` (defineIssueScript): past it nothing
 *                  is done, and the answer is an error (503). A rotation that ran
 *                  after its 503 would record its old `now`, and the client's retry
 *                  with the token it still holds could land past the grace window:
 *                  reuse, the session ended.
 * bindings         field, value pairs (IssueContext.bindings): a session holding
 *                  one of these fields with another value refuses the refresh
 * Answers { Status.ok | Status.grace, claims version, absolute deadline }, or
 * { Status.bindingMismatch, i } for the i-th binding (0-based), or
 * { Status.invalid | replaced | expired | reused }, or
 * { Status.onceSpentBase + i } when the i-th one-time key was already spent.
 * On reuse, PUBLISHes the invalidation of the user's cached sessions (INVALIDATE).
 */
export const ROTATE = defineIssueScript({
  name: 'refresh_rotate',
  argv: {
    sid: 'string', now: 'number', generation: 'number', presentedDigest: 'string', successorDigest: 'string',
    grace: 'number', idle: 'number', retention: 'number'
  },
  rest: 'bindings',
  preludes: [WALK, INVALIDATE],
  body: `
-- One HMGET: the core record, the refresh state, then each binding's field.
local names = { sid, sid .. ':r' }
for i = 1, #bindings, 2 do names[#names + 1] = sid .. ':' .. bindings[i] end
local f = redis.call('HMGET', sessions, unpack(names))
local s, a, l, v = parse(f[1])
if not s then return { ${Status.invalid} } end
local state = liveness(s, a, l, now, idle, retention)
if state == DEAD then return { ${Status.invalid} } end
if state ~= LIVE then return { state } end
for i = 1, #bindings, 2 do
  local bound = f[2 + (i + 1) / 2]
  if bound and bound ~= bindings[i + 1] then return { ${Status.bindingMismatch}, (i - 1) / 2 } end
end
local current, stored, past = string.match(f[2] or '', '^(%d+)|([^|]*)|(.*)$')
if not current then return { ${Status.invalid} } end
current = tonumber(current)
if generation == current then
  if stored ~= presentedDigest then return { ${Status.invalid} } end
  local history = ''
  for gen, at in string.gmatch(past, '(%d+):(%w+);') do
    if now - tonumber(at, 36) < grace then history = history .. gen .. ':' .. at .. ';' end
  end
  history = history .. current .. ':' .. b36(now) .. ';'
  redis.call('HSET', sessions, sid, record(s, a, now, v), sid .. ':r', (current + 1) .. '|' .. successorDigest .. '|' .. history)
  keep(sessions, math.min(now + idle, a + retention) - now)
  return { ${Status.ok}, tonumber(v), a }
end
if generation > current then return { ${Status.invalid} } end
for gen, at in string.gmatch(past, '(%d+):(%w+);') do
  if tonumber(gen) == generation and now - tonumber(at, 36) < grace then
    return { ${Status.grace}, tonumber(v), a }
  end
end
for _, w in ipairs(walk(sessions, now, idle, retention)) do
  if w.sid == sid then drop(sessions, w) end
end
invalidate(sessions)
return { ${Status.reused} }
`
})
