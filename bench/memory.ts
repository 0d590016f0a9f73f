/**
 * Redis bytes per session and per one-time jti key, on the real paths:
 * sessions opened through `tokens.openSession` (the SSO script, the real
 * fields), one-time keys spent by the per-request VERIFY script. Run by
 * `bench/run.ts` against its own Redis; answers over IPC.
 */
import { Redis } from 'ioredis'
import { randomBytes } from 'node:crypto'
import { buildApp } from '../example-server/app.js'
import { configFromEnv } from '../example-server/config.js'
import { BENCH_SECRET, inBatches, REDIS_URL } from './servers/common.js'

const count = Number(process.argv[2] ?? 100_000)
const admin = new Redis(REDIS_URL)
const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1])

const app = await buildApp({ ...configFromEnv({ REDIS_URL, AUTH_JWT_SECRET: BENCH_SECRET, AUTH_KEY_PREFIX: 'auth' }) }, { logger: false })
await app.ready()
const tokens = app.tokens

const before = await usedMemory()
const sessions = await inBatches(count, 200, async (i) => {
  const { sessionId } = await tokens.openSession({
    userId: `user-${100000 + i}`,
    claims: { roles: ['user'] },
    device: { id: randomBytes(8).toString('hex'), type: 'phone', name: 'Pixel 8' }
  })
  return sessionId
})
const afterSessions = await usedMemory()

const { options, keys } = tokens
const now = options.clock()
await inBatches(count, 200, async (i) => {
  const userId = `user-${100000 + i}`
  const status = await tokens.verifyScript(2, keys.sessions(userId), keys.once(userId, 'transfer', randomBytes(12).toString('base64url')),
    // A deadline (`writeBy`) far off: this measures memory, not stalls.
    sessions[i], now, 1, options.touchMs, options.idleMs, options.retentionMs, Date.now() + 60_000, options.accessTtlMs)
  if ((status as number) > 0) throw new Error(`memory: verify answered ${String(status)}`)
})
const afterJti = await usedMemory()

await app.close()
await admin.quit()
process.send!({ perSession: (afterSessions - before) / count, perJti: (afterJti - afterSessions) / count })
process.disconnect()
