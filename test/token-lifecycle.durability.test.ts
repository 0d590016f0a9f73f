import t from 'tap'
import { Redis } from 'ioredis'
import { once } from 'node:events'
import { bearer, login, pluginApp, recordCommands, storedSession } from './helpers/app.js'
import { customApp, refresh } from './helpers/refresh.js'
import { startRedisServer } from './helpers/redis-server.js'
import type { RedisProcess } from './helpers/redis-server.js'
import { infoField, nodeClient, until } from './helpers/replication.js'

type Test = { teardown: (fn: () => unknown) => void }

// Tests that wait for a replica's timeout give the store guard room (storeTimeout) far
// beyond it: on a loaded machine, the guard must not answer before the WAIT does.
// Logins that must be acknowledged get a WAIT timeout of seconds, not the default
// 200 ms: a WAIT returns as soon as the replica acknowledges, and on a loaded CI
// machine a live replica took longer than 200-300 ms (the login answered 503).
// Where the replica is paused, any timeout runs out.

interface Pair { primary: RedisProcess, replica: RedisProcess, primaryClient: Redis, replicaClient: Redis, caughtUp: () => Promise<void> }

/** A private primary with one replica, in sync. */
async function primaryWithReplica (t: Test): Promise<Pair> {
  const primary = await startRedisServer(t, ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'])
  const replica = await startRedisServer(t, ['--replicaof', '127.0.0.1', String(primary.port)])
  const primaryClient = nodeClient(t, primary.port)
  const replicaClient = nodeClient(t, replica.port)
  await until('the replica to sync', async () => infoField(await replicaClient.info('replication'), 'master_link_status') === 'up')
  /** Waits until the replica holds every write the primary made so far. */
  const caughtUp = async () => {
    const written = Number(infoField(await primaryClient.info('replication'), 'master_repl_offset'))
    await until('the replica to catch up', async () => Number(infoField(await replicaClient.info('replication'), 'slave_repl_offset')) >= written)
  }
  return { primary, replica, primaryClient, replicaClient, caughtUp }
}

t.test('with durability, a login and a rotation are answered once the replica holds them, and WAIT never goes over the shared client', async (t) => {
  const pair = await primaryWithReplica(t)
  const { app } = await customApp(t, { redisUrl: pair.primary.url, lifecycle: { storeTimeout: '10s', durability: { replicas: 1, timeout: '2s' } } })
  const shared = recordCommands(t, app)
  const durable = recordCommands(t, app.tokens.durableWrites!.client)

  const first = await login(app, 'alice')
  const atLogin = await storedSession(pair.replicaClient, app, 'alice', first.session_id)
  t.equal(atLogin?.generation, 1, 'the replica held the session when the login was answered')
  const next = await refresh(app, first.refresh_token)
  t.equal(next.statusCode, 200)
  const atRefresh = await storedSession(pair.replicaClient, app, 'alice', first.session_id)
  t.equal(atRefresh?.generation, 2, 'and the rotation when the refresh was answered')

  t.ok(durable.includes('wait'), 'the durable connection sent WAIT')
  t.notOk(shared.includes('wait'), 'the shared client never did')
})

t.test('a login no replica acknowledges in time answers 503 AUTH_STORE_UNAVAILABLE and leaves no session behind', async (t) => {
  const pair = await primaryWithReplica(t)
  const { app } = await customApp(t, { redisUrl: pair.primary.url, lifecycle: { storeTimeout: '10s', durability: { timeout: '2s' } } })
  await login(app, 'bob')
  pair.replica.pause()
  t.teardown(() => pair.replica.resume())

  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'alice-pass' } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE')
  t.same(await app.tokens.listSessions('alice'), [], 'the session it opened was ended before the answer')

  pair.replica.resume()
  await pair.caughtUp()
  t.same(await pair.replicaClient.hgetall(app.tokens.keys.sessions('alice')), {}, 'nor does the replica hold it once caught up')
  t.equal((await login(app, 'alice')).token_type, 'Bearer', 'a login succeeds again once the replica is back')
})

t.test('a master left with fewer replicas than asked still answers logins, after the timeout: no replica lacking the write could be promoted', async (t) => {
  const pair = await primaryWithReplica(t)
  const { app } = await customApp(t, { redisUrl: pair.primary.url, lifecycle: { storeTimeout: '5s', durability: { timeout: '100ms' } } })
  pair.replica.kill()
  await until('the primary to see its replica gone', async () => infoField(await pair.primaryClient.info('replication'), 'connected_slaves') === '0')
  const opened = await login(app, 'alice')
  t.ok(await storedSession(pair.primaryClient, app, 'alice', opened.session_id), 'answered, and the session is there')
})

t.test('a rotation no replica acknowledges in time is answered all the same, and its successor works', async (t) => {
  const pair = await primaryWithReplica(t)
  const { app } = await customApp(t, { redisUrl: pair.primary.url, lifecycle: { storeTimeout: '10s', durability: { timeout: '2s' } } })
  const first = await login(app, 'alice')
  pair.replica.pause()
  t.teardown(() => pair.replica.resume())

  const next = await refresh(app, first.refresh_token)
  t.equal(next.statusCode, 200, 'the master holds the successor: withholding it would make the presented token a reuse after the grace window')
  pair.replica.resume()
  await pair.caughtUp()
  const again = await refresh(app, next.json().refresh_token)
  t.equal(again.statusCode, 200, 'the successor rotates in turn')
  t.equal((await app.inject({ method: 'GET', url: '/api/me', headers: bearer(again.json().access_token) })).statusCode, 200)
})

t.test('a WAIT holds up only its own connection: checks over the shared client answer while a login waits for the replica', async (t) => {
  const pair = await primaryWithReplica(t)
  const { app } = await customApp(t, {
    redisUrl: pair.primary.url,
    lifecycle: { verifyConnection: 'shared', storeTimeout: '10s', durability: { timeout: '8s' } }
  })
  const first = await login(app, 'alice')
  pair.replica.pause()
  t.teardown(() => pair.replica.resume())

  const blocked = async () => /flags=b .*cmd=wait/.test(await pair.primaryClient.client('LIST') as string)
  const pending = login(app, 'bob')
  await until('a WAIT blocked on the primary', blocked)
  const checked = await app.inject({ method: 'GET', url: '/api/me', headers: bearer(first.access_token) })
  t.equal(checked.statusCode, 200, 'a check over the shared client answers')
  t.ok(await blocked(), 'while the login\'s WAIT is still blocked')

  pair.replica.resume()
  t.ok((await pending).access_token, 'an acknowledgement within the timeout answers the login')
})

t.test('a script error on the durable connection answers 503', async (t) => {
  const pair = await primaryWithReplica(t)
  const { app } = await customApp(t, { redisUrl: pair.primary.url, lifecycle: { durability: {} } })
  await pair.primaryClient.set(app.tokens.keys.sessions('alice'), 'not a hash')
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'alice-pass' } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE')
})

t.test('a lost durable connection answers logins 503', async (t) => {
  const pair = await primaryWithReplica(t)
  const { app } = await customApp(t, { redisUrl: pair.primary.url, lifecycle: { durability: {} } })
  const durable = app.tokens.durableWrites!.client
  const failed = once(durable, 'error')
  pair.primary.kill()
  await failed
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'alice-pass' } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE')
})

t.test('a lazy shared client still gets its durable connection connected before the app is ready, and closed with the app', async (t) => {
  const pair = await primaryWithReplica(t)
  const lazy = new Redis(pair.primary.url, { lazyConnect: true, enableOfflineQueue: false })
  t.teardown(() => { lazy.disconnect() })
  const app = await pluginApp(t, { redis: lazy, durability: { replicas: 1 } })
  const durable = app.tokens.durableWrites!.client
  t.equal(durable.status, 'ready', 'connected by the time the app is ready')
  const opened = await app.tokens.openSession({ userId: 'alice' })
  t.ok(await storedSession(pair.replicaClient, app, 'alice', opened.sessionId), 'opened, and on the replica')
  await app.close()
  await until('the durable connection to end', () => durable.status === 'end')
  t.pass('closed with the app')
})
