/**
 * The Redis key schema. Every key of one user carries the same hash tag,
 * `{<user>}`, so that every script touching a user's keys runs on one Redis
 * Cluster slot (no CROSSSLOT), whatever the plugin.
 *
 *   <prefix>:{<user>}:s                 hash: all of the user's sessions (see session-record.ts)
 *   <prefix>:{<user>}:o:<scope>:<jti>   string: a one-time token or proof already spent (replay guard)
 *
 * One hash per user, not one key per session plus an index: Redis spends
 * about 100 bytes on every key before its data, and a user with one session
 * would pay that twice. Each session is a few fields of the user's hash,
 * small enough for Redis's compact listpack encoding; every script declares
 * the one key it touches.
 */
export interface Keyspace {
  readonly prefix: string
  userTag (userId: string): string
  sessions (userId: string): string
  once (userId: string, scope: string, jti: string): string
}

/**
 * Percent-escapes the characters `special` matches (it must match '%' too, so
 * that escaping stays reversible), e.g. braces and colons in key parts.
 */
export function percentEscape (value: string, special: RegExp): string {
  special.lastIndex = 0
  return special.test(value)
    ? value.replace(special, (ch) => '%' + ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'))
    : value
}

const KEY_SPECIAL = /[%{}:]/g

/**
 * Braces would move the hash tag and colons would blur the key's fields:
 * escape both (and the escape character itself) so any user id is safe.
 */
export function escapeKeyPart (value: string): string {
  return percentEscape(value, KEY_SPECIAL)
}

export function createKeyspace (prefix: string): Keyspace {
  const userTag = (userId: string) => `${prefix}:{${escapeKeyPart(userId)}}:`
  return Object.freeze({
    prefix,
    userTag,
    sessions: (userId: string) => userTag(userId) + 's',
    once: (userId: string, scope: string, jti: string) =>
      userTag(userId) + 'o:' + escapeKeyPart(scope) + ':' + escapeKeyPart(jti)
  })
}
