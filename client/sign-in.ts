/** Signing in and out: the login, logout and logout-all routes, and what each does to the local session. */
import { refusal } from './errors.js'
import type { AuthPaths } from './options.js'
import type { LocalSession } from './session.js'
import type { TokenStorage, StoredTokens } from './storage.js'
import { readTokenPair } from './token-pair.js'
import type { Transport } from './transport.js'

export interface LoginInput {
  username: string
  password: string
  device_id?: string
  device_type?: string
  device_name?: string
}

export interface SignInParts {
  transport: Transport
  paths: Readonly<AuthPaths>
  storage: TokenStorage
  session: LocalSession
  /** The app's fetch (token, refresh, retry) for routes that need the session. */
  authFetch: (path: string, init?: RequestInit) => Promise<Response>
  now: () => number
}

export interface SignIn {
  login: (input: LoginInput) => Promise<StoredTokens>
  logout: () => Promise<void>
  logoutAll: () => Promise<void>
}

export function createSignIn ({ transport, paths, storage, session, authFetch, now }: SignInParts): SignIn {
  return {
    async login (input) {
      const response = await transport.postJson(paths.login, input)
      if (!response.ok) throw await refusal('Login', response)
      const tokens = await readTokenPair(response, now())
      await session.adopt(tokens, 'login')
      return tokens
    },
    async logout () {
      const tokens = await storage.get()
      if (!tokens) return
      try {
        await authFetch(paths.logout, { method: 'POST' })
      } catch {
        // Offline: the tokens are forgotten anyway; the session times out on the server.
      }
      await session.loggedOut(tokens.session_id)
    },
    /**
     * Unlike `logout`, the pair is kept when the server did not confirm: the
     * other sessions may still be live, and the app can try again.
     */
    async logoutAll () {
      const tokens = await storage.get()
      const response = await authFetch(paths.logoutAll, { method: 'POST' })
      if (!response.ok) throw await refusal('Logout of every session', response)
      if (tokens) await session.loggedOut(tokens.session_id)
    }
  }
}
