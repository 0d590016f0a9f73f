import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { Cluster, Redis } from 'ioredis'
import { once } from 'node:events'
import { createServer } from 'node:net'
import type { Socket } from 'node:net'
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { MAX_HELD_CALLS, ReplyReader, ScriptLane, laneSettingsOf } from '../lib/script-lane.js'
import type { LaneSettings } from '../lib/script-lane.js'
import tokenLifecycle from '../plugins/token-lifecycle/index.js'
import type { TokenLifecycleOptions } from '../plugins/token-lifecycle/index.js'
import { REDIS_URL, TEST_SECRET, bearer, pluginApp, recordCommands, recordLaneCalls, uniquePrefix } from './helpers/app.js'
import { freePort, startRedisServer } from './helpers/redis-server.js'
import { sleep } from './helpers/client.js'
import { countCollected } from './helpers/gc.js'

type Test = { teardown: (fn: () => unknown) => void }

interface LogLine { level: string, msg: string, reason?: string }

/** A logger that keeps what it is given (the lane logs through Fastify's). */
function keptLog () {
  const lines: LogLine[] = []
  const at = (level: string) => (obj: { reason?: string }, msg: string) => { lines.push({ level, msg, reason: obj.reason }) }
  const log = { debug: at('debug'), warn: at('warn'), info: at('info'), error: at('error') }
  return { lines, log: log as never }
}

function settings (overrides: Partial<LaneSettings> = {}): LaneSettings {
  return { host: '127.0.0.1', port: 6379, db: 0, keyPrefix: '', connectTimeoutMs: 2000, ...overrides }
}

async function laneFor (t: Test, overrides: Partial<LaneSettings> = {}) {
  const kept = keptLog()
  const lane = new ScriptLane(settings(overrides), kept.log)
  t.teardown(() => lane.close())
  await lane.firstAttempt
  return { lane, lines: kept.lines }
}

async function until (check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}


/** A private server that asks for a password (set once it is up: the helper's start check does not log in). */
async function requirePassword (t: Test, password: string) {
  const server = await startRedisServer(t)
  const admin = new Redis(server.url)
  await admin.config('SET', 'requirepass', password)
  admin.disconnect()
  return server
}

/** An app with token-lifecycle on a given client and one protected route. */
async function appOn (t: Test, client: Redis, options: Partial<TokenLifecycleOptions> = {}, fastifyOptions: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(fastifyOptions)
  const keyPrefix = uniquePrefix('lane')
  await app.register(tokenLifecycle, { jwt: { secret: TEST_SECRET }, keyPrefix, redis: client, ...options })
  app.get('/p', { onRequest: app.authenticate }, async (request) => ({ user: request.auth!.userId }))
  t.teardown(() => app.close())
  await app.ready()
  return app
}

t.test('the reader returns integers, simple strings and errors, however the replies are split into chunks', async (t) => {
  const wire = Buffer.from(':-1700000000000\r\n+OK\r\n-NOSCRIPT No matching script\r\n:4\r\n')
  const expected = [['ok', -1700000000000], ['ok', 'OK'], ['err', 'NOSCRIPT No matching script'], ['ok', 4]]
  for (let cut = 0; cut <= wire.length; cut++) {
    for (const second of [cut, Math.min(wire.length, cut + 3)]) {
      const got: Array<[string, unknown]> = []
      const reader = new ReplyReader((v) => got.push(['ok', v]), (m) => got.push(['err', m]), () => got.push(['protocol', null]))
      reader.feed(wire.subarray(0, cut))
      reader.feed(wire.subarray(cut, second))
      reader.feed(wire.subarray(second))
      t.same(got, expected, `cut at ${cut} and ${second}`)
    }
  }
})

t.test('a reply of another kind is a protocol error, and nothing after it is read', async (t) => {
  const got: unknown[] = []
  const reader = new ReplyReader((v) => got.push(v), (m) => got.push(m), (kind) => got.push(`protocol ${kind}`))
  reader.feed(Buffer.from(':1\r\n$1\r\nx\r\n:2\r\n'))
  t.same(got, [1, 'protocol $'])
})

t.test('settings are copied from a plain client; Cluster, Sentinel and TLS clients get no lane', async (t) => {
  const plain = new Redis('redis://someone:pw@10.0.0.9:6380/4', { lazyConnect: true, keyPrefix: 'kp:', connectTimeout: 1234 })
  t.same(laneSettingsOf(plain), { host: '10.0.0.9', port: 6380, path: undefined, username: 'someone', password: 'pw', db: 4, keyPrefix: 'kp:', connectTimeoutMs: 1234 })
  const noAuth = laneSettingsOf(new Redis('redis://:@127.0.0.1:6379', { lazyConnect: true }))!
  t.equal(noAuth.password, undefined, 'an empty password means no AUTH, as in ioredis')
  t.equal(noAuth.username, undefined)
  t.equal(laneSettingsOf(new Redis({ path: '/tmp/redis.sock', lazyConnect: true }))!.path, '/tmp/redis.sock')
  t.equal(laneSettingsOf(new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true })), null)
  t.equal(laneSettingsOf(new Redis({ sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'main', lazyConnect: true })), null)
  t.equal(laneSettingsOf(new Redis({ tls: {}, lazyConnect: true })), null)
})

t.test('the plugin checks requests over the lane; ends and changes written through the shared client are seen at once', async (t) => {
  const app = await pluginApp(t, {}, (app) => {
    app.get('/p', { onRequest: app.authenticate }, async (request) => ({ user: request.auth!.userId }))
  })
  const lane = app.tokens.scriptLane!
  t.ok(lane.ready, 'ready once the app is')
  const { tokens } = await app.tokens.openSession({ userId: 'u1' })
  const shared = recordCommands(t, app.redis)
  const viaLane = recordLaneCalls(t, lane)

  const get = async () => await app.inject({ url: '/p', headers: bearer(tokens.access_token) })
  t.equal((await get()).statusCode, 200)
  t.equal(viaLane.length, 1, 'the verify script went over the lane')
  t.same(shared, [], 'and not over the shared client')

  await app.tokens.endSession('u1', tokens.session_id)
  t.ok(shared.includes('evalsha'), 'the logout went over the shared client')
  const after = await get()
  t.equal(after.json().code, 'AUTH_SESSION_REVOKED', 'the next check, over the lane, sees it')

  const admin = new Redis(REDIS_URL)
  t.teardown(() => admin.disconnect())
  const list = await admin.client('LIST') as string
  t.match(list, /name=fastify-jwt-sessions:verify/, 'the lane names itself in CLIENT LIST')
})

t.test("verifyConnection: 'shared' sends the check over the shared client, and no lane is opened", async (t) => {
  const app = await pluginApp(t, { verifyConnection: 'shared' }, (app) => {
    app.get('/p', { onRequest: app.authenticate }, async () => ({ ok: true }))
  })
  t.equal(app.tokens.scriptLane, null)
  const { tokens } = await app.tokens.openSession({ userId: 'u1' })
  const sent = recordCommands(t, app.redis)
  t.equal((await app.inject({ url: '/p', headers: bearer(tokens.access_token) })).statusCode, 200)
  t.same(sent, ['evalsha'])
})

t.test('verifyConnection takes only its two values', async (t) => {
  const app = Fastify()
  await app.register(fastifyRedis, { url: REDIS_URL, lazyConnect: true })
  await t.rejects(async () => { await app.register(tokenLifecycle, { jwt: { secret: TEST_SECRET }, verifyConnection: 'fast' as never }).ready() }, /verifyConnection must be 'dedicated' or 'shared'/)
  await app.close()
})

t.test("the shared client's key prefix, password and database are the lane's too", async (t) => {
  const server = await requirePassword(t, 'lane-pw')
  for (const url of [`redis://:lane-pw@127.0.0.1:${server.port}/3`, `redis://default:lane-pw@127.0.0.1:${server.port}/0`]) {
    const client = new Redis(url, { keyPrefix: 'kp:' })
    t.teardown(() => client.disconnect())
    await once(client, 'ready')
    const app = await appOn(t, client)
    t.ok(app.tokens.scriptLane!.ready, `lane ready with ${url.replace('lane-pw', '***')}`)
    const { tokens } = await app.tokens.openSession({ userId: 'u1' })
    const viaLane = recordCommands(t, app)
    t.equal((await app.inject({ url: '/p', headers: bearer(tokens.access_token) })).statusCode, 200, 'the session the shared client wrote is found')
    t.same(viaLane, ['evalsha'])
    const raw = new Redis(url)
    t.teardown(() => raw.disconnect())
    t.ok((await raw.keys('kp:*')).length > 0, 'stored under the key prefix')
  }
})

t.test('a Unix socket is used when the shared client uses one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fjs-sock-'))
  const path = join(dir, 'redis.sock')
  const server = await startRedisServer(t, ['--unixsocket', path])
  t.ok(server.port)
  const client = new Redis({ path })
  t.teardown(() => client.disconnect())
  await once(client, 'ready')
  const app = await appOn(t, client)
  t.ok(app.tokens.scriptLane!.ready)
  const { tokens } = await app.tokens.openSession({ userId: 'u1' })
  t.equal((await app.inject({ url: '/p', headers: bearer(tokens.access_token) })).statusCode, 200)
})

t.test('a wrong password: the lane warns once, stays down, retries, and calls go through the shared client', async (t) => {
  const server = await requirePassword(t, 'right')
  const { lane, lines } = await laneFor(t, { port: server.port, password: 'not-the-password' })
  t.notOk(lane.ready)
  await sleep(300) // a few retries with backoff
  const warnings = lines.filter((l) => l.level === 'warn')
  t.equal(warnings.length, 1, 'warned once for the outage, not per retry')
  t.match(warnings[0].reason, /WRONGPASS|invalid/i)
  t.notOk(JSON.stringify(lines).includes('not-the-password'), 'the password is never logged')

  const client = new Redis(`redis://:right@127.0.0.1:${server.port}`)
  t.teardown(() => client.disconnect())
  const call = lane.bind(client, { name: 'lane_test', lua: 'return 7' })
  t.equal(await call(0), 7, 'answered through the shared client')
})

t.test('NOSCRIPT (Redis restarted or SCRIPT FLUSH): the call is sent again as EVAL, once', async (t) => {
  const server = await startRedisServer(t)
  const { lane } = await laneFor(t, { port: server.port })
  const admin = new Redis(server.url)
  t.teardown(() => admin.disconnect())
  const lua = "return tonumber(ARGV[1]) + redis.call('EXISTS', KEYS[1])"
  const sha = await admin.script('LOAD', lua) as string
  t.equal(await lane.evalsha(sha, lua, 1, ['k', 41]), 41)
  await admin.script('FLUSH')
  t.equal(await lane.evalsha(sha, lua, 1, ['k', 1]), 1, 'answered after NOSCRIPT')
  t.same(await admin.script('EXISTS', sha), [1], 'EVAL loaded it again')
  await t.rejects(lane.evalsha('0'.repeat(40), 'return redis.call("NOPE")', 0, []), /Unknown Redis command|ERR/, 'a script error is the error')
  await t.rejects(lane.evalsha(sha, lua, 1, ['k', 'not a number']), /ERR/, 'a failing script rejects, the lane stays up')
  t.ok(lane.ready)
})

t.test('a settled call keeps nothing alive in the lane (no promotion of request state to the old generation)', async (t) => {
  const { lane } = await laneFor(t)
  // Fewer calls than the lane lets pile up before it drops the settled front
  // of its queue; made in a frame of their own, so that only the lane could
  // still hold one.
  const settle = async (count: number) => {
    const refs: Array<WeakRef<object>> = []
    for (let i = 0; i < count; i++) {
      const call = lane.evalsha('2'.repeat(40), 'return 1', 0, [])
      refs.push(new WeakRef(call))
      t.equal(await call, 1)
    }
    return refs
  }
  const refs = await settle(50)
  t.equal(await countCollected(refs), refs.length, 'every settled call could be collected')
})

t.test('a reply the lane does not read drops the connection: the call fails, the lane comes back', async (t) => {
  const { lane } = await laneFor(t)
  await t.rejects(lane.evalsha('0'.repeat(40), "return 'a string'", 0, []), /connection lost/)
  t.notOk(lane.ready)
  await until(() => lane.ready, 'the lane to reconnect')
  t.equal(await lane.evalsha('0'.repeat(40), 'return 5', 0, []), 5)
})

t.test('many calls in flight: each gets its own answer, in order, across batches', async (t) => {
  const { lane } = await laneFor(t)
  const lua = 'return tonumber(ARGV[1])'
  const sha = '1'.repeat(40)
  // Waves: calls made while a batch is unanswered go out together when it is.
  const answers = await Promise.all(Array.from({ length: 3000 }, async (_, i) => {
    if (i % 2 === 1) await sleep(0)
    return await lane.evalsha(sha, lua, 0, [i])
  }))
  t.same(answers, Array.from({ length: 3000 }, (_, i) => i))
})

t.test('Redis killed: calls in flight fail (503 through the plugin), the shared client takes over, the lane reconnects when Redis is back', async (t) => {
  const server = await startRedisServer(t)
  const client = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 50 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  await once(client, 'ready')
  const app = await appOn(t, client, { storeTimeout: '500ms' })
  const lane = app.tokens.scriptLane!
  const { tokens } = await app.tokens.openSession({ userId: 'u1' })
  const get = async () => await app.inject({ url: '/p', headers: bearer(tokens.access_token) })
  t.equal((await get()).statusCode, 200)

  server.pause()
  const inFlight = get()
  await sleep(50)
  server.kill()
  const failed = await inFlight
  t.equal(failed.statusCode, 503)
  t.equal(failed.json().code, 'AUTH_STORE_UNAVAILABLE')
  await until(() => !lane.ready, 'the lane to notice')
  t.equal((await get()).json().code, 'AUTH_STORE_UNAVAILABLE', 'fails closed while Redis is away')

  const restarted = spawn('redis-server', ['--port', String(server.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  t.teardown(() => { restarted.kill('SIGKILL') })
  await until(() => lane.ready && client.status === 'ready', 'the lane and the client to reconnect', 8000)
  t.equal((await get()).json().code, 'AUTH_SESSION_REVOKED', 'a restarted Redis without the data knows no session')
})

t.test('Redis back after an outage: the lane carries session checks within a second, before the shared client is back; shared-client calls still wait for it', async (t) => {
  const server = await startRedisServer(t)
  // A shared client that, once it lost Redis, waits a minute before trying again.
  const client = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 60_000 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  await once(client, 'ready')
  // The lane logs each refused connection attempt (at debug level): Redis
  // comes back just after the fifth, when the lane's back-off is at its longest.
  let refused = 0
  let fifthRefused!: () => void
  const fifth = new Promise<void>((resolve) => { fifthRefused = resolve })
  const stream = {
    write (line: string) {
      const { msg, reason } = JSON.parse(line) as { msg: string, reason?: string }
      if (msg === 'fastify-jwt-sessions: script lane error' && /ECONNREFUSED/.test(reason ?? '') && ++refused === 5) fifthRefused()
    }
  }
  const app = await appOn(t, client, {}, { logger: { level: 'debug', stream } })
  const lane = app.tokens.scriptLane!
  const { tokens } = await app.tokens.openSession({ userId: 'u1' })
  const get = async () => await app.inject({ url: '/p', headers: bearer(tokens.access_token) })
  t.equal((await get()).statusCode, 200)

  server.kill()
  await fifth
  t.equal((await get()).json().code, 'AUTH_STORE_UNAVAILABLE', 'fails closed while Redis is away')
  await server.restart()
  const answered = performance.now()
  let res = await get()
  while (res.statusCode === 503 && performance.now() < answered + 5000) {
    await sleep(5)
    res = await get()
  }
  const elapsed = Math.round(performance.now() - answered)
  t.equal(res.json().code, 'AUTH_SESSION_REVOKED', 'checked again: a restarted Redis without the data knows no session')
  t.ok(elapsed < 1000, `checked ${elapsed} ms after Redis answered PING`)
  t.ok(lane.ready, 'through the lane')
  t.equal(client.status, 'reconnecting', 'while the shared client is still away')
  await t.rejects(app.tokens.openSession({ userId: 'u1' }), { code: 'AUTH_STORE_UNAVAILABLE' }, 'a login needs the shared client')
})

t.test('a server that accepts and never answers: the handshake times out, and the lane keeps trying', async (t) => {
  const sockets: Socket[] = []
  const silent = createServer((socket) => { sockets.push(socket) })
  silent.listen(0, '127.0.0.1')
  await once(silent, 'listening')
  t.teardown(() => { for (const s of sockets) s.destroy(); silent.close() })
  const port = (silent.address() as { port: number }).port
  const { lane, lines } = await laneFor(t, { port, connectTimeoutMs: 100 })
  t.notOk(lane.ready, 'the first attempt ended without the lane')
  t.ok(lines.some((l) => l.level === 'debug' && /no answer/.test(l.reason!)))
  await until(() => sockets.length >= 2, 'a second attempt')
})

t.test('close: calls queued in this turn fail, later calls fail at once, and no reconnection follows', async (t) => {
  const { lane } = await laneFor(t)
  t.ok(lane.ready)
  const queued = lane.evalsha('0'.repeat(40), 'return 1', 0, [])
  lane.close()
  await t.rejects(queued, /connection lost/)
  await t.rejects(lane.evalsha('0'.repeat(40), 'return 1', 0, []), /not connected/)
  await sleep(150)
  t.notOk(lane.ready, 'still closed after the first backoff')
})

t.test('a port with nothing listening: the first attempt ends at once, without the lane', async (t) => {
  const started = Date.now()
  const { lane } = await laneFor(t, { port: await freePort() })
  t.notOk(lane.ready)
  t.ok(Date.now() - started < 1000, 'refused, not timed out')
})

t.test('a stalled Redis: calls held behind the unanswered write stop at MAX_HELD_CALLS, later ones fail at once', async (t) => {
  const server = await startRedisServer(t)
  const { lane } = await laneFor(t, { port: server.port })
  server.pause()
  const first = lane.evalsha('2'.repeat(40), 'return 1', 0, [])
  await sleep(20) // written and unanswered: from now on calls are held until it is answered
  const held = Array.from({ length: MAX_HELD_CALLS }, () => lane.evalsha('2'.repeat(40), 'return 2', 0, []))
  await t.rejects(lane.evalsha('2'.repeat(40), 'return 3', 0, []), /holds 50000 calls already/)
  server.resume()
  t.equal(await first, 1)
  const answers = await Promise.all(held)
  t.equal(answers.length, MAX_HELD_CALLS)
  t.ok(answers.every((a) => a === 2), 'the held calls go out once Redis answers again')
})
