/**
 * The example server's keys in Redis, found by its key prefix with SCAN
 * (never KEYS, never a flush: the Redis may be shared).
 */
import type { Redis } from 'ioredis'

export interface KeyStats {
  keys: number
  /** Keys without a TTL: every key the plugins write must expire. */
  immortal: number
  /** A few of them, by name (key names hold user and session ids, never a token). */
  immortalSample: string[]
  /** MEMORY USAGE summed over the keys. */
  bytes: number
}

async function * batchesUnder (redis: Redis, prefix: string): AsyncGenerator<string[]> {
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
    cursor = next
    if (batch.length) yield batch
  } while (cursor !== '0')
}

export async function keyStats (redis: Redis, prefix: string): Promise<KeyStats> {
  const stats: KeyStats = { keys: 0, immortal: 0, immortalSample: [], bytes: 0 }
  for await (const batch of batchesUnder(redis, prefix)) {
    const pipeline = redis.pipeline()
    for (const key of batch) pipeline.pttl(key).call('MEMORY', 'USAGE', key)
    const replies = (await pipeline.exec())!
    batch.forEach((key, i) => {
      const ttl = replies[2 * i][1] as number
      // -2: the key expired between SCAN and PTTL.
      if (ttl === -2) return
      stats.keys++
      stats.bytes += Number(replies[2 * i + 1][1] ?? 0)
      if (ttl === -1) {
        stats.immortal++
        if (stats.immortalSample.length < 3) stats.immortalSample.push(key)
      }
    })
  }
  return stats
}

/** Deletes every key under the prefix; answers how many. */
export async function deleteKeysUnder (redis: Redis, prefix: string): Promise<number> {
  let deleted = 0
  for await (const batch of batchesUnder(redis, prefix)) deleted += await redis.unlink(...batch)
  return deleted
}
