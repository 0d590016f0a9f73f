// The app's claims, declared as the README's "Typing your claims" says.
import type { TokenPair } from 'fastify-jwt-sessions/types'

declare module 'fastify-jwt-sessions/types' {
  interface SessionClaims {
    roles: string[]
    tenant?: string
  }
}

export type { TokenPair }
