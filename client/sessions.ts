/**
 * The user's sessions as the server lists them (`GET <authPrefix>/sessions`
 * of the ready-made routes): this is the one shape, wire and client alike,
 * snake_case with ISO 8601 times, handed to the app exactly as sent.
 */
import { AuthClientError, refusal } from './errors.js'

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

/** The list from the server's answer; throws an AuthClientError when the server refused or sent no list. */
export async function readSessionList (response: Response): Promise<ListedSession[]> {
  if (!response.ok) throw await refusal('Listing sessions', response)
  let body: { sessions?: unknown } | null = null
  try {
    body = await response.json() as { sessions?: unknown } | null
  } catch {}
  if (!Array.isArray(body?.sessions)) throw new AuthClientError('The server answered without a session list', response.status, null)
  return body.sessions as ListedSession[]
}
