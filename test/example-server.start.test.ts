import { readFileSync } from 'node:fs'
import t from 'tap'
import { configFromEnv } from '../example-server/config.js'
import { freePort } from './helpers/redis-server.js'
import { spawnTsServer } from './helpers/spawn.js'
import { REDIS_URL, uniquePrefix } from './helpers/env.js'

t.test('configuration comes from the environment, with the contract\'s defaults', async (t) => {
  const defaults = configFromEnv({})
  t.match(defaults, {
    port: 3000, host: '127.0.0.1', redisUrl: 'redis://127.0.0.1:6379', clusterNodes: null, keyPrefix: 'auth',
    jwtSecretGenerated: true, accessTtl: 300, refreshTtl: 1_209_600, sessionMaxAge: 2_592_000, refreshGrace: 10,
    sso: 'single', refreshRateMax: 10, refreshRateWindow: 60, loginRateMax: 10, loginRateWindow: 60, localCache: false
  })
  t.ok(Buffer.byteLength(defaults.jwtSecret) >= 32, 'a generated secret is long enough')
  t.not(configFromEnv({}).jwtSecret, defaults.jwtSecret, 'and random')
  const custom = configFromEnv({
    PORT: '4000', AUTH_JWT_SECRET: 's'.repeat(32), AUTH_ACCESS_TTL: '60', AUTH_SSO: 'max:3',
    REDIS_CLUSTER_NODES: '127.0.0.1:7000, ::1:7001', AUTH_LOCAL_CACHE: 'on'
  })
  t.match(custom, { port: 4000, jwtSecret: 's'.repeat(32), jwtSecretGenerated: false, accessTtl: 60, sso: 'max:3', localCache: true })
  t.same(custom.clusterNodes, [{ host: '127.0.0.1', port: 7000 }, { host: '::1', port: 7001 }])
  t.throws(() => configFromEnv({ AUTH_ACCESS_TTL: '0' }), /AUTH_ACCESS_TTL must be an integer >= 1/)
  t.throws(() => configFromEnv({ PORT: 'abc' }), /PORT must be an integer/)
  t.throws(() => configFromEnv({ REDIS_CLUSTER_NODES: 'nohost' }), /expected host:port/)
  t.throws(() => configFromEnv({ AUTH_LOCAL_CACHE: 'yes' }), /AUTH_LOCAL_CACHE must be on or off/)
})

t.test('`npm run example` starts the server, says where it listens and which Redis it uses, and warns about a generated secret', async (t) => {
  const port = await freePort()
  // The command `npm run example` runs (npm itself would not pass SIGTERM on for the exit check).
  const pkg = JSON.parse(readFileSync('package.json', 'utf8'))
  t.equal(pkg.scripts.example, 'node --import tsx example-server/server.ts')
  const { child, output } = await spawnTsServer(t, 'example-server/server.ts', {
    PORT: String(port), REDIS_URL, AUTH_KEY_PREFIX: uniquePrefix('start'), AUTH_JWT_SECRET: '', AUTH_LOCAL_CACHE: 'on', LOG_LEVEL: 'info'
  }, 'listening on')
  t.match(output(), `listening on http://127.0.0.1:${port} using Redis redis://127.0.0.1:6379`)
  t.match(output(), 'AUTH_JWT_SECRET is not set')
  t.notMatch(output(), 'not implemented', 'AUTH_LOCAL_CACHE=on is implemented')

  const login = await fetch(`http://127.0.0.1:${port}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'alice-pass' }) })
  t.equal(login.status, 200)
  const { access_token: token } = await login.json() as { access_token: string }
  t.notMatch(output(), token, 'tokens are never logged')
  const me = await fetch(`http://127.0.0.1:${port}/api/me`, { headers: { authorization: `Bearer ${token}` } })
  t.same(await me.json(), { user_id: 'alice', session_id: JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid, roles: ['user'] })

  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exits cleanly on SIGTERM')
})
