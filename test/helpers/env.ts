import type { Redis } from 'ioredis'
import { randomBytes } from 'node:crypto'

/** The shared test Redis; tests isolate themselves by key prefix and never flush it. */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A key prefix no other test (nor a concurrent run) uses: tests never flush Redis. */
export function uniquePrefix (name: string): string {
  return `t:${name}:${randomBytes(4).toString('hex')}`
}

/** Every key under a prefix, found with SCAN (never KEYS: the shared server stays responsive). */
export async function keysUnder (redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}
