/**
 * The user's sessions as the server lists them (`GET <authPrefix>/sessions`
 * of the ready-made routes): this is the one shape, wire and client alike,
 * snake_case with ISO 8601 times, handed to the app exactly as sent.
 */
import type { ListedSession } from '../lib/session-list.js'
import { AuthClientError, refusal } from './errors.js'

export type { ListedSession }

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
