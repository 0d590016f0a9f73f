/**
 * One refresh with the server, and what its answer means for the session:
 * a new pair, the session's end, a wait (`Retry-After`), or nothing to do
 * but keep the pair.
 */
import { errorCode } from './errors.js'
import { refreshWaitMs } from './retry-after.js'
import type { LocalSession } from './session.js'
import { refreshEndReason } from './session-end.js'
import type { StoredTokens } from './storage.js'
import { readTokenPair } from './token-pair.js'
import type { Transport } from './transport.js'

export interface ExchangeParts {
  transport: Transport
  refreshPath: string
  session: LocalSession
  now: () => number
}

export function createRefreshExchange ({ transport, refreshPath, session, now }: ExchangeParts) {
  return async function exchange (stored: StoredTokens): Promise<StoredTokens | null> {
    let response: Response
    try {
      response = await transport.postJson(refreshPath, { refresh_token: stored.refresh_token })
    } catch {
      // Offline: keep the pair; the request itself will fail or succeed on its own.
      return stored
    }
    if (response.ok) {
      const next = await readTokenPair(response, now())
      await session.adopt(next, 'refresh')
      return next
    }
    const code = await errorCode(response)
    const reason = code === null ? undefined : refreshEndReason(code, stored, now())
    if (response.status === 401 && reason) {
      await session.end(reason, code!, stored)
      return null
    }
    const wait = refreshWaitMs(response, now())
    // Rate limited, store unavailable, a proxy's error page: keep the pair and let the request decide.
    return wait === null ? stored : await session.holdOff(stored, now() + wait)
  }
}
