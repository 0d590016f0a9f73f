/*
 * The shape of the user's session list on the wire, typed once: the
 * ready-made `GET <prefix>/sessions` route answers it (token-lifecycle's
 * routes.ts) and the client hands it to the app as sent (client/sessions.ts).
 * No imports: the client, which runs in browsers without Fastify, shares it.
 */

/** One of the user's sessions, as `GET /auth/sessions` answers it. */
export interface ListedSession {
  session_id: string
  /** The `device_id` given at login, or null. */
  device_id: string | null
  /** The `device_type` given at login; `'unknown'` when none was. */
  device_type: string
  /** The `device_name` given at login, or null. */
  device_name: string | null
  /** ISO 8601. */
  created_at: string
  /** ISO 8601; written at most once a minute (token-lifecycle's `touchInterval`). */
  last_seen_at: string
  /** The session of the token that asked. */
  current: boolean
}
