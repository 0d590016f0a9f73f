/**
 * The Redis key schema. Every key of one user carries the same hash tag,
 * `{<user>}`, so that every script touching a user's keys runs on one Redis
 * Cluster slot (no CROSSSLOT), whatever the plugin.
 *
 *   <prefix>:{<user>}:i                 sorted set: the user's session ids, scored by login time (ms)
 *   <prefix>:{<user>}:s:<sid>           hash: one session (device, times, claims version, refresh state)
 *   <prefix>:{<user>}:o:<scope>:<jti>   string: a one-time token or proof already spent (replay guard)
 *
 * Scripts that walk the index build session keys as `<base><sid>`, where the
 * base is `sessionKeyBase(user)`: always inside the same hash tag.
 */
export interface Keyspace {
  readonly prefix: string
  userTag (userId: string): string
  index (userId: string): string
  sessionKeyBase (userId: string): string
  session (userId: string, sessionId: string): string
  once (userId: string, scope: string, jti: string): string
}

/**
 * Braces would move the hash tag and colons would blur the key's fields:
 * escape both (and the escape character itself) so any user id is safe.
 */
export function escapeKeyPart (value: string): string {
  return /[%{}:]/.test(value)
    ? value.replace(/[%{}:]/g, (ch) => '%' + ch.charCodeAt(0).toString(16).toUpperCase())
    : value
}

export function createKeyspace (prefix: string): Keyspace {
  const userTag = (userId: string) => `${prefix}:{${escapeKeyPart(userId)}}:`
  return Object.freeze({
    prefix,
    userTag,
    index: (userId: string) => userTag(userId) + 'i',
    sessionKeyBase: (userId: string) => userTag(userId) + 's:',
    session: (userId: string, sessionId: string) => userTag(userId) + 's:' + sessionId,
    once: (userId: string, scope: string, jti: string) =>
      userTag(userId) + 'o:' + escapeKeyPart(scope) + ':' + escapeKeyPart(jti)
  })
}
