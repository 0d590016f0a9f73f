/**
 * `npm run soak`: a long mixed load (login, verify, refresh, logout) against
 * the example server, to show what no short test does: memory or Redis keys
 * that keep growing, keys that never expire, answers outside the contract
 * that only come up after thousands of sessions.
 *
 * Settings (environment): SOAK_MINUTES (30), SOAK_CONCURRENCY (virtual
 * users, 8), SOAK_REDIS_URL (redis://127.0.0.1:6379), SOAK_WINDOW_SECONDS
 * (length of a "minute", 60: shorter only for a quick try). The server's
 * other AUTH_* settings come from the environment (AUTH_LOCAL_CACHE=on
 * soaks the local cache).
 *
 * The server runs on a free port and a key prefix of its own, whose keys
 * are deleted at the end (also after Ctrl-C); nothing else in the Redis is
 * touched. Exits 1 when any answer broke the contract, a key had no TTL or
 * memory grew (see report.ts `failures`).
 */
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { Redis } from 'ioredis'
import { demoUsers } from '../example-server/users.js'
import { deleteKeysUnder, keyStats } from './soak/keys.js'
import { startLoad } from './soak/load.js'
import { Recorder } from './soak/metrics.js'
import { answerMix, failures, markdownTable, minuteLine, rowOf } from './soak/report.js'
import type { Row } from './soak/report.js'
import { startExampleServer } from './soak/server.js'

function positiveInt (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer (got ${JSON.stringify(raw)})`)
  return value
}

const MINUTES = positiveInt('SOAK_MINUTES', 30)
const CONCURRENCY = positiveInt('SOAK_CONCURRENCY', 8)
const WINDOW_MS = positiveInt('SOAK_WINDOW_SECONDS', 60) * 1000
const REDIS_URL = process.env.SOAK_REDIS_URL || 'redis://127.0.0.1:6379'
const prefix = `soak:${randomBytes(4).toString('hex')}`
const users = [...demoUsers()].map(([name, user]) => [name, user.password] as const)

// Fail fast on a wrong URL rather than retry forever.
const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?'
const server = await startExampleServer({
  REDIS_URL,
  AUTH_KEY_PREFIX: prefix,
  AUTH_JWT_SECRET: randomBytes(32).toString('base64url'),
  // Room for every virtual user of a user to hold a session: a replacement
  // then means a session outlived its logout (it is allowed, and counted).
  AUTH_SSO: `max:${Math.ceil(CONCURRENCY / users.length)}`,
  // Every request comes from one address, for three users: the default
  // limits would answer most of the load with 429.
  AUTH_LOGIN_RATE_MAX: '1000000',
  AUTH_REFRESH_RATE_MAX: '100000'
})
console.log(`soak: ${MINUTES} x ${WINDOW_MS / 1000} s, ${CONCURRENCY} virtual users, example server at ${server.baseUrl}, key prefix ${prefix}`)

const recorder = new Recorder()
const load = startLoad({ baseUrl: server.baseUrl, users, concurrency: CONCURRENCY, recorder })
const started = Date.now()
let interrupted = false
let stopping = false
let serverDied = false
const interrupt = new Promise<void>((resolve) => process.once('SIGINT', () => { interrupted = true; resolve() }))
const died = server.exited.then(() => { if (!stopping) serverDied = true })

const rows: Row[] = []
try {
  for (let minute = 1; minute <= MINUTES; minute++) {
    const wait = started + minute * WINDOW_MS - Date.now()
    await Promise.race([new Promise((resolve) => setTimeout(resolve, Math.max(0, wait))), interrupt, died])
    if (interrupted || serverDied) break
    const window = recorder.take()
    const row = rowOf(minute, window, await server.memory(), await keyStats(redis, prefix))
    rows.push(row)
    console.log(minuteLine(row, window))
  }
} finally {
  stopping = true
  await load.stop()
  // The requests in flight when the last minute ended.
  const tail = recorder.take()
  for (const [name, { count }] of tail.samples) console.log(`after the last minute, non-contract: ${name} x${count}`)
  await server.stop()
  // After the server: it writes no more keys.
  const deleted = await deleteKeysUnder(redis, prefix)
  await redis.quit()
  console.log(`soak: ${interrupted ? 'interrupted; ' : ''}server stopped, ${deleted} keys under ${prefix} deleted`)
}

console.log(`\nLast run: ${new Date().toISOString().slice(0, 10)}, SOAK_MINUTES=${MINUTES}, SOAK_CONCURRENCY=${CONCURRENCY}` +
  `${WINDOW_MS !== 60_000 ? `, SOAK_WINDOW_SECONDS=${WINDOW_MS / 1000}` : ''}; ` +
  `${availableParallelism()} cores, Node ${process.version}, Redis ${redisVersion}.\n`)
console.log(markdownTable(rows))
console.log(`\nAnswers over the run:\n${answerMix(recorder.answers)}\n`)
const failed = failures(rows, { serverDied, nonContract: recorder.nonContractTotal })
console.log(failed.length ? `FAIL: ${failed.join('; ')}` : 'PASS: no non-contract answer, no key without TTL, no memory growth')
process.exitCode = interrupted ? 130 : failed.length ? 1 : 0
