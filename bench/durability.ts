/**
 * `npm run bench:durability [-- --rounds N --requests N --concurrency N]`
 *
 * What token-lifecycle's `durability` option costs: logins and refreshes with
 * it off and on (one replica, 200 ms), on a primary with one replica that this
 * script starts (never the shared Redis) and stops. In process, through
 * `app.inject`, so the figures are the app's and Redis's work without HTTP:
 * the difference between the two is what WAIT adds. Rounds alternate off and
 * on; the table gives medians over rounds. Then, durability on, the replica
 * stalled (SIGSTOP): what a login and a check answer, and how fast.
 */
import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { redisClientOptions } from '../example-server/app.js'
import refreshRotation from '../plugins/refresh-rotation/index.js'
import tokenLifecycle, { authRoutes } from '../plugins/token-lifecycle/index.js'
import type { DurabilityOptions } from '../plugins/token-lifecycle/index.js'

const args = process.argv.slice(2)
const value = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : fallback
}
const ROUNDS = value('rounds', 5)
/** Requests per measurement: sent one at a time (latency), then `CONCURRENCY` at a time (throughput). */
const REQUESTS = value('requests', 400)
const CONCURRENCY = value('concurrency', 32)
const SECRET = 'bench-secret-bench-secret-bench-secret-0123'
const DURABILITY: DurabilityOptions = { replicas: 1, timeout: '200ms' }

const children: ChildProcess[] = []
const dirs: string[] = []
function cleanup (): void {
  for (const c of children) { c.kill('SIGCONT'); c.kill('SIGKILL') }
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
}
process.on('exit', cleanup)
process.on('SIGINT', () => { cleanup(); process.exit(130) })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function freePort (): Promise<number> {
  return await new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

async function startRedis (extra: string[]): Promise<{ port: number, child: ChildProcess }> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'fjs-bench-'))
  dirs.push(dir)
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra], { stdio: 'ignore' })
  children.push(child)
  return { port, child }
}

async function untilTrue (what: string, condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    try { if (await condition()) return } catch { /* not up yet */ }
    await sleep(20)
  }
  throw new Error(`bench: timed out waiting for ${what}`)
}

async function buildApp (url: string, prefix: string, durability: DurabilityOptions | false): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(fastifyRedis, { client: new Redis(url, redisClientOptions), closeClient: true })
  await app.register(tokenLifecycle, { keyPrefix: prefix, jwt: { secret: SECRET }, durability })
  await app.register(refreshRotation, { route: '/auth/refresh', refreshRateLimit: false, async loadClaims () { return { roles: ['user'] } } })
  await app.register(authRoutes, { prefix: '/auth', loginRateLimit: false, async verifyCredentials (username) { return { userId: username, claims: { roles: ['user'] } } } })
  app.get('/api/me', { onRequest: app.authenticate }, async (request) => ({ user_id: request.auth!.userId }))
  await app.ready()
  return app
}

type Kind = 'login' | 'refresh'
let users = 0

/** One request of a kind; a refresh spends one of `refreshTokens` (never used before). */
async function once (app: FastifyInstance, kind: Kind, refreshTokens: string[]): Promise<number> {
  const res = kind === 'login'
    ? await app.inject({ method: 'POST', url: '/auth/login', payload: { username: `bench-${users++}`, password: 'x' } })
    : await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshTokens.pop() } })
  return res.statusCode
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
const median = (values: number[]) => percentile([...values].sort((a, b) => a - b), 0.5)

interface Measured { p50: number, p99: number, perSecond: number, non2xx: number }

async function measure (app: FastifyInstance, kind: Kind): Promise<Measured> {
  const refreshTokens: string[] = []
  if (kind === 'refresh') {
    for (let i = 0; i < 2 * REQUESTS; i++) {
      const opened = await app.tokens.openSession({ userId: `bench-r-${users++}` })
      refreshTokens.push(String(opened.tokens.refresh_token))
    }
  }
  let non2xx = 0
  const latencies: number[] = []
  for (let i = 0; i < REQUESTS; i++) {
    const start = performance.now()
    if (await once(app, kind, refreshTokens) !== 200) non2xx++
    latencies.push(performance.now() - start)
  }
  latencies.sort((a, b) => a - b)
  let sent = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (sent < REQUESTS) {
      sent++
      if (await once(app, kind, refreshTokens) !== 200) non2xx++
    }
  }))
  const perSecond = REQUESTS / ((performance.now() - start) / 1000)
  return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), perSecond, non2xx }
}

const primary = await startRedis(['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'])
const replica = await startRedis(['--replicaof', '127.0.0.1', String(primary.port)])
const replicaAdmin = new Redis({ port: replica.port, lazyConnect: true })
replicaAdmin.on('error', () => {})
await untilTrue('the replica to sync', async () => {
  if (replicaAdmin.status === 'wait') await replicaAdmin.connect()
  return /master_link_status:up/.test(await replicaAdmin.info('replication'))
})
replicaAdmin.disconnect()

const url = `redis://127.0.0.1:${primary.port}`
const off = await buildApp(url, 'bdur-off', false)
const on = await buildApp(url, 'bdur-on', DURABILITY)
// Warm-up: scripts loaded, connections and JIT warm.
for (const app of [off, on]) for (const kind of ['login', 'refresh'] as const) await measure(app, kind)

const results: Record<string, Measured[]> = {}
for (let round = 0; round < ROUNDS; round++) {
  for (const kind of ['login', 'refresh'] as const) {
    // Alternate which goes first, so neither always meets the warmer machine.
    const order = round % 2 === 0 ? [['off', off], ['on', on]] as const : [['on', on], ['off', off]] as const
    for (const [name, app] of order) (results[`${kind} ${name}`] ??= []).push(await measure(app, kind))
  }
}

const row = (label: string, runs: Measured[]) =>
  `| ${label} | ${median(runs.map((r) => r.p50)).toFixed(2)} | ${median(runs.map((r) => r.p99)).toFixed(2)} | ${Math.round(median(runs.map((r) => r.perSecond)))} | ${runs.reduce((n, r) => n + r.non2xx, 0)} |`
console.log(`\nDurability cost: ${ROUNDS} rounds, ${REQUESTS} requests one at a time (latency) then ${REQUESTS} at ${CONCURRENCY} in flight (throughput), in process (app.inject), primary + 1 replica on this machine.\n`)
console.log('| request | p50 ms | p99 ms | req/s at ' + CONCURRENCY + ' in flight | non-2xx |')
console.log('|---|---:|---:|---:|---:|')
for (const kind of ['login', 'refresh'] as const) {
  console.log(row(`${kind}, durability off`, results[`${kind} off`]!))
  console.log(row(`${kind}, durability on (1 replica, 200 ms)`, results[`${kind} on`]!))
}

// The replica stalled: logins wait for the timeout and answer 503; checks do not wait.
const pair = await on.tokens.openSession({ userId: 'bench-stalled' })
replica.child.kill('SIGSTOP')
const stalled = { login: [] as number[], loginStatus: new Set<number>(), me: [] as number[], meStatus: new Set<number>() }
for (let i = 0; i < 10; i++) {
  let start = performance.now()
  stalled.loginStatus.add(await once(on, 'login', []))
  stalled.login.push(performance.now() - start)
  start = performance.now()
  stalled.meStatus.add((await on.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${pair.tokens.access_token}` } })).statusCode)
  stalled.me.push(performance.now() - start)
}
replica.child.kill('SIGCONT')
console.log(`\nReplica stalled (SIGSTOP), durability on: login answered ${[...stalled.loginStatus].join('/')} in ${median(stalled.login).toFixed(0)} ms (median of 10); ` +
  `GET /api/me answered ${[...stalled.meStatus].join('/')} in ${median(stalled.me).toFixed(2)} ms.`)

await off.close()
await on.close()
process.exit(0)
