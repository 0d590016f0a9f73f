import { randomBytes } from 'node:crypto'

/** The shared test Redis; tests isolate themselves by key prefix and never flush it. */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A key prefix no other test (nor a concurrent run) uses: tests never flush Redis. */
export function uniquePrefix (name: string): string {
  return `t:${name}:${randomBytes(4).toString('hex')}`
}
