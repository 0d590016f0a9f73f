/**
 * Cross-tab coordination: the BroadcastChannel that tells the other tabs of
 * this one's logins, refreshes, waits, ends and logouts, and what this tab
 * does with theirs. Tabs sharing a storage read the new pair there already;
 * a message brings it to tabs with storage of their own, and fires each
 * tab's events. (The refresh lock is refresh.ts's.)
 */
import type { EndNotices, Emitter } from './events.js'
import type { Message } from './messages.js'
import { parseMessage } from './messages.js'
import type { StoredTokens, TokenStorage } from './storage.js'

interface ChannelLike {
  postMessage: (message: Message) => void
  close: () => void
  onmessage: ((event: { data: unknown }) => void) | null
  unref?: () => void
}

export interface Tabs {
  post: (message: Message) => void
  close: () => void
}

/** This tab's side of the session, as other tabs' news changes it. */
export interface TabState {
  storage: TokenStorage
  /** Re-arms (or stops) timer mode for the session now stored. */
  arm: (tokens: StoredTokens | null) => void
  emitter: Emitter
  ends: EndNotices
  /** Forgets the pair when it is this session's. */
  forget: (sessionId: string) => Promise<void>
}

/** A channel when `broadcast` is on and the runtime has BroadcastChannel; otherwise posting does nothing. */
export function createTabs (name: string, broadcast: boolean, state: TabState): Tabs {
  const ChannelCtor = (globalThis as { BroadcastChannel?: new (name: string) => ChannelLike }).BroadcastChannel
  const channel: ChannelLike | null = broadcast && ChannelCtor ? new ChannelCtor(name) : null
  // A Node script must be able to exit with a client still open.
  channel?.unref?.()
  if (channel) {
    channel.onmessage = (event) => {
      const message = parseMessage(event.data)
      if (message) void fromOtherTab(state, message).catch(() => {})
    }
  }
  return {
    post (message) { channel?.postMessage(message) },
    close () { channel?.close() }
  }
}

async function fromOtherTab (state: TabState, message: Message): Promise<void> {
  const { storage, emitter, ends } = state
  if (message.type === 'backoff') {
    const stored = await storage.get()
    // Shared storage holds it already; a tab's own memory storage learns it here.
    if (stored && stored.session_id === message.sessionId && (stored.refresh_retry_at ?? 0) < message.until) {
      await storage.set({ ...stored, refresh_retry_at: message.until })
    }
  } else if (message.type === 'tokens') {
    const stored = await storage.get()
    // A message overtaken by a newer pair is old news.
    if (stored && message.tokens.obtained_at < stored.obtained_at) return
    // Shared storage already holds it; a tab's own memory storage learns it here.
    if (!stored || message.tokens.obtained_at > stored.obtained_at) await storage.set(message.tokens)
    state.arm(message.tokens)
    if (message.kind === 'login') {
      ends.reset()
      emitter.emit('login', { sessionId: message.tokens.session_id, source: 'other-tab' })
    } else {
      emitter.emit('refresh', { sessionId: message.tokens.session_id, expiresAt: message.tokens.expires_at, source: 'other-tab' })
    }
  } else if (message.type === 'ended') {
    await state.forget(message.sessionId)
    if (!ends.first(message.sessionId)) return
    emitter.emit('session-ended', { reason: message.reason, code: message.code })
  } else {
    ends.settle(message.sessionId)
    await state.forget(message.sessionId)
    emitter.emit('logout', { source: 'other-tab' })
  }
}
