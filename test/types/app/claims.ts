// The app's claims, declared as README "Typing your claims" shows (test/types.test.ts checks the README's block is this one).
import type { TokenPair } from 'fastify-jwt-sessions/types'

declare module 'fastify-jwt-sessions/types' {
  interface SessionClaims {
    roles: string[]
    tenant?: string // optional: tokens issued before it existed lack it
  }
}

export type { TokenPair }
