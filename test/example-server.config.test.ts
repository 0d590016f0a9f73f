import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Cluster, Redis } from 'ioredis'
import { createRedisClient, redisClientOptions } from '../example-server/app.js'
import { configFromEnv } from '../example-server/config.js'
import { spawnTsServer } from './helpers/spawn.js'

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'

function files (t: { teardown: (fn: () => void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'fjs-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const ca = join(dir, 'ca.pem')
  writeFileSync(ca, PEM)
  const notPem = join(dir, 'not.pem')
  writeFileSync(notPem, 'hello')
  return { ca, notPem, missing: join(dir, 'missing.pem') }
}

/** The client's resolved options; it is disconnected at once (nothing listens on port 1). */
function clientOptions (env: NodeJS.ProcessEnv) {
  const client = createRedisClient(configFromEnv(env))
  client.on('error', () => {})
  client.disconnect()
  return client
}

t.test('Redis deployments: defaults keep v1 behaviour', async (t) => {
  t.match(configFromEnv({}), {
    redisUrl: 'redis://127.0.0.1:6379', clusterNodes: null, sentinels: null, sentinelName: 'mymaster',
    redisCa: null, redisUsername: null, redisPassword: null
  })
})

t.test('REDIS_SENTINELS, REDIS_SENTINEL_NAME, REDIS_CA_FILE, REDIS_USERNAME and REDIS_PASSWORD are read', async (t) => {
  const { ca } = files(t)
  const config = configFromEnv({
    REDIS_SENTINELS: 'sentinel-a:26379, 10.0.0.2:26380,::1:26381', REDIS_SENTINEL_NAME: 'auth-primary',
    REDIS_CA_FILE: ca, REDIS_USERNAME: 'auth', REDIS_PASSWORD: 'p@ss:word'
  })
  t.same(config.sentinels, [{ host: 'sentinel-a', port: 26379 }, { host: '10.0.0.2', port: 26380 }, { host: '::1', port: 26381 }])
  t.match(config, { sentinelName: 'auth-primary', redisCa: PEM, redisUsername: 'auth', redisPassword: 'p@ss:word' })
})

t.test('bad values stop the start with a message naming the variable', async (t) => {
  const { ca, notPem, missing } = files(t)
  t.throws(() => configFromEnv({ REDIS_SENTINELS: 'sentinel-a' }), /REDIS_SENTINELS: expected host:port, got "sentinel-a"/)
  t.throws(() => configFromEnv({ REDIS_SENTINELS: 'a:1,' }), /REDIS_SENTINELS: expected host:port, got ""/)
  t.throws(() => configFromEnv({ REDIS_CLUSTER_NODES: 'a:0' }), /REDIS_CLUSTER_NODES: expected host:port, got "a:0"/)
  t.throws(() => configFromEnv({ REDIS_CLUSTER_NODES: 'a:65536' }), /REDIS_CLUSTER_NODES: expected host:port/)
  t.throws(() => configFromEnv({ REDIS_CA_FILE: missing }), /REDIS_CA_FILE: cannot read ".*missing.pem" \(ENOENT\)/)
  t.throws(() => configFromEnv({ REDIS_CA_FILE: notPem }), /REDIS_CA_FILE: ".*not.pem" holds no PEM certificate/)
  t.throws(() => configFromEnv({ REDIS_URL: 'http://127.0.0.1:6379' }), /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/)
  t.throws(() => configFromEnv({ REDIS_URL: '127.0.0.1:6379' }), /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/)
  t.throws(() => configFromEnv({ REDIS_URL: 'redis://' }), /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL with a host/)
  const leaked = t.throws(() => configFromEnv({ REDIS_URL: 'redi://user:secret-pw@host:1' })) as Error
  t.notMatch(leaked.message, 'secret-pw', 'the error never shows the password')
  t.match(leaked.message, '"redi://***@host:1"')
  t.throws(() => configFromEnv({ REDIS_CA_FILE: ca }), /REDIS_CA_FILE is set but REDIS_URL is not a rediss:\/\/ URL/)
  t.throws(() => configFromEnv({ REDIS_USERNAME: 'auth' }), /REDIS_USERNAME is set without a password/)
  t.throws(() => configFromEnv({ REDIS_USERNAME: 'auth', REDIS_SENTINELS: 'a:1', REDIS_URL: 'redis://x:pw@h:1' }), /REDIS_USERNAME is set without a password/,
    'a password in an unused REDIS_URL does not count')
  t.ok(configFromEnv({ REDIS_USERNAME: 'auth', REDIS_URL: 'redis://x:pw@h:1' }), 'the URL\'s password goes with REDIS_USERNAME')
  t.ok(configFromEnv({ REDIS_CA_FILE: ca, REDIS_SENTINELS: 'a:1' }), 'Sentinel with a CA: TLS without a URL scheme')
  t.ok(configFromEnv({ REDIS_CA_FILE: ca, REDIS_CLUSTER_NODES: 'a:1' }), 'Cluster with a CA: TLS without a URL scheme')
})

t.test('precedence: REDIS_CLUSTER_NODES, then REDIS_SENTINELS, then REDIS_URL', async (t) => {
  const all = { REDIS_URL: 'redis://127.0.0.1:1', REDIS_SENTINELS: '127.0.0.1:2', REDIS_CLUSTER_NODES: '127.0.0.1:3' }
  const cluster = clientOptions(all) as Cluster
  t.ok(cluster.isCluster, 'a Cluster client')
  const { REDIS_CLUSTER_NODES: _, ...rest } = all
  const sentinel = clientOptions(rest) as Redis
  t.same(sentinel.options.sentinels, [{ host: '127.0.0.1', port: 2 }])
  t.equal(sentinel.options.name, 'mymaster')
  const { REDIS_SENTINELS: __, ...url } = rest
  const plain = clientOptions(url) as Redis
  t.match(plain.options, { host: '127.0.0.1', port: 1, sentinels: null })
})

t.test('every client gets the example\'s options, the CA and the credentials', async (t) => {
  const { ca } = files(t)
  const tls = { ca: PEM }

  const cluster = clientOptions({ REDIS_CLUSTER_NODES: '127.0.0.1:1', REDIS_CA_FILE: ca, REDIS_USERNAME: 'auth', REDIS_PASSWORD: 'pw' }) as Cluster
  t.match(cluster.options, { enableOfflineQueue: false, enableAutoPipelining: true })
  t.match(cluster.options.redisOptions, { ...redisClientOptions, tls, username: 'auth', password: 'pw' }, 'every Cluster node: TLS and the ACL login')

  const sentinel = clientOptions({ REDIS_SENTINELS: '127.0.0.1:1', REDIS_SENTINEL_NAME: 'primary', REDIS_CA_FILE: ca, REDIS_PASSWORD: 'pw' }) as Redis
  t.match(sentinel.options, {
    ...redisClientOptions, name: 'primary', password: 'pw', tls, sentinelTLS: tls, enableTLSForSentinelMode: true
  }, 'Sentinel: TLS to the sentinels and to the data nodes')
  t.notOk(sentinel.options.username, 'a password alone logs in as the default user')
  t.notOk(sentinel.options.sentinelPassword, 'data-node credentials are not sent to the sentinels')
  const plainSentinel = clientOptions({ REDIS_SENTINELS: '127.0.0.1:1' }) as Redis
  t.match(plainSentinel.options, { enableTLSForSentinelMode: false, tls: undefined, sentinelTLS: undefined })

  const rediss = clientOptions({ REDIS_URL: 'rediss://127.0.0.1:1', REDIS_CA_FILE: ca }) as Redis
  t.match(rediss.options, { ...redisClientOptions, tls })
  const systemCa = clientOptions({ REDIS_URL: 'rediss://127.0.0.1:1' }) as Redis
  t.equal(systemCa.options.tls, true, 'rediss:// without REDIS_CA_FILE: TLS with the system\'s CAs')
  const plain = clientOptions({ REDIS_URL: 'redis://127.0.0.1:1' }) as Redis
  t.notOk(plain.options.tls, 'redis://: no TLS')
})

t.test('REDIS_USERNAME and REDIS_PASSWORD override the URL\'s credentials, each on its own', async (t) => {
  const url = 'redis://url-user:url%40pw@127.0.0.1:1/2'
  t.match((clientOptions({ REDIS_URL: url }) as Redis).options, { username: 'url-user', password: 'url@pw', db: 2 }, 'a URL logs in as its ACL user')
  t.match((clientOptions({ REDIS_URL: url, REDIS_USERNAME: 'env-user', REDIS_PASSWORD: 'env:p@ss/w?rd#' }) as Redis).options,
    { username: 'env-user', password: 'env:p@ss/w?rd#', db: 2, host: '127.0.0.1', port: 1 })
  t.match((clientOptions({ REDIS_URL: url, REDIS_PASSWORD: 'env-pw' }) as Redis).options, { username: 'url-user', password: 'env-pw' })
  t.match((clientOptions({ REDIS_URL: url, REDIS_USERNAME: 'env-user' }) as Redis).options, { username: 'env-user', password: 'url@pw' })
  t.match((clientOptions({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_USERNAME: 'u', REDIS_PASSWORD: 'p' }) as Redis).options, { username: 'u', password: 'p' })
})

t.test('`npm run example` with a bad value exits at once, with the message', async (t) => {
  const { child, output } = await spawnTsServer(t, 'example-server/server.ts', { REDIS_SENTINELS: 'sentinel-without-port' }, 'expected host:port')
  // A server that started after all would never exit by itself.
  if (!output().includes('expected host:port')) child.kill()
  const status = child.exitCode ?? await new Promise((resolve) => child.once('exit', resolve))
  t.not(status, 0, 'a non-zero exit status')
  t.match(output(), 'REDIS_SENTINELS: expected host:port, got "sentinel-without-port"')
})
