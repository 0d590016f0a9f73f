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
 *   <sid>:<name>   fields other plugins add at login (IssueContext.fields and
 *                  .bindings: refresh-rotation's 'r', replay-guard's 'k');
 *                  they go with the session
 *   !c             not a session: when the user's claims last changed (ms), so
 *                  that a login that read the claims before a role change
 *                  issues a stale first token (see OPEN and BUMP_CLAIMS)
 *
 * A record is dead once now >= min(last seen + idle timeout, absolute deadline
 * + retention): the scripts check it (lib/lua/preludes.ts `liveness`, the
 * one home of that rule, with the Lua side of this layout), since one key
 * holds sessions that expire at different times. The key's own TTL is the latest expiry of its records,
 * so the hash never outlives them. Session ids are base64url: no ':' or '|'.
 */

/** A session id as this package issues them (base64url), or accepts them in a refresh token or URL. */
export const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/

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
