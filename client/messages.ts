/**
 * What one tab tells the others over the BroadcastChannel. Only scripts of
 * the same origin can post on it, but a message from another version of the
 * client, another library on the same channel name, or a bug must not break
 * a tab: anything not exactly one of these shapes is ignored.
 */
import type { SessionEndReason } from './session-end.js'
import { END_REASONS } from './session-end.js'
import type { StoredTokens } from './storage.js'
import { isTokens } from './storage.js'

export type Message =
  | { type: 'tokens', kind: 'login' | 'refresh', tokens: StoredTokens }
  | { type: 'ended', sessionId: string, reason: SessionEndReason, code: string }
  | { type: 'logout', sessionId: string }
  /** The server refused a refresh of this session until `until` (epoch ms, device clock). */
  | { type: 'backoff', sessionId: string, until: number }

const KINDS: ReadonlySet<unknown> = new Set(['login', 'refresh'])

/** The message a channel delivered, checked field by field, or null for anything else. */
export function parseMessage (data: unknown): Message | null {
  if (typeof data !== 'object' || data === null) return null
  const m = data as Record<string, unknown>
  switch (m.type) {
    case 'tokens':
      return KINDS.has(m.kind) && isTokens(m.tokens) ? { type: 'tokens', kind: m.kind as 'login' | 'refresh', tokens: m.tokens } : null
    case 'ended':
      return typeof m.sessionId === 'string' && END_REASONS.has(m.reason) && typeof m.code === 'string'
        ? { type: 'ended', sessionId: m.sessionId, reason: m.reason as SessionEndReason, code: m.code }
        : null
    case 'logout':
      return typeof m.sessionId === 'string' ? { type: 'logout', sessionId: m.sessionId } : null
    case 'backoff':
      return typeof m.sessionId === 'string' && Number.isFinite(m.until) ? { type: 'backoff', sessionId: m.sessionId, until: m.until as number } : null
    default:
      return null
  }
}
