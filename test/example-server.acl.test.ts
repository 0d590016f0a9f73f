import { readFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import t from 'tap'
import type { Test } from 'tap'
import { uniquePrefix } from './helpers/env.js'
import { redisDeployment, runContractFlows } from './helpers/contract-flows.js'
import { makeTlsFiles, startRedisCluster, startRedisServer, startTlsRedisServer } from './helpers/redis-server.js'

const USER = 'fastify-jwt-sessions'
const PASSWORD = 'acl-test-password'

/** The README's `ACL SETUSER` line, as a list of arguments for this prefix and password. */
function readmeRules (t: Test, prefix: string): string[] {
  const readme = readFileSync('README.md', 'utf8')
  const line = /^ACL SETUSER (.*)$/m.exec(readme)![1]!
  const args = line.split(/\s+/)
  t.same(args.slice(0, 4), [USER, 'reset', 'on', '>CHANGE-ME'], 'the README\'s line starts from nothing')
  t.ok(args.includes('~auth:*') && args.includes('&auth:inv'), 'its key and channel patterns are those of the default prefix')
  return args.map((arg) => arg === '>CHANGE-ME' ? `>${PASSWORD}` : arg.replace(/^([~&])auth:/, `$1${prefix}:`))
}

/**
 * A connection as an administrator, after the README's user was created and
 * the default user turned off: no connection can fall back on it.
 */
async function applyRules (t: Test, port: number, rules: string[]): Promise<Redis> {
  const admin = new Redis({ port, host: '127.0.0.1' })
  t.teardown(() => admin.disconnect())
  await admin.call('ACL', 'SETUSER', ...rules)
  await admin.call('ACL', 'SETUSER', 'admin', 'on', '>admin-password', '~*', '&*', '+@all')
  await admin.call('AUTH', 'admin', 'admin-password')
  await admin.call('ACL', 'SETUSER', 'default', 'off')
  return admin
}

/** Every command or key the server refused since it started (ACL LOG), as `reason:object`. */
async function refusals (admin: Redis): Promise<string[]> {
  const log = await admin.call('ACL', 'LOG') as Array<Array<string | number>>
  return log.map((entry) => {
    const field = (name: string) => entry[entry.indexOf(name) + 1]
    return `${field('reason')}:${field('object')}`
  })
}

t.test('an ACL user with exactly the README\'s rule set runs every flow, the script lane included (redis://user:password@)', async (t) => {
  const server = await startRedisServer(t)
  const prefix = uniquePrefix('acl')
  const admin = await applyRules(t, server.port, readmeRules(t, prefix))
  const app = await runContractFlows(t, { ...redisDeployment({ REDIS_URL: `redis://${USER}:${PASSWORD}@127.0.0.1:${server.port}` }), keyPrefix: prefix })

  t.ok(app.tokens.scriptLane?.ready, 'the script lane logged in as the user')
  const clients = await admin.client('LIST') as string
  t.match(clients, new RegExp(`name=fastify-jwt-sessions:verify .*user=${USER}`), 'and is named in CLIENT LIST')
  t.notMatch(clients, /user=default/, 'no connection is the default user\'s')
  t.same(await refusals(admin), [], 'nothing was refused')
})

t.test('REDIS_USERNAME and REDIS_PASSWORD override the URL\'s credentials; over TLS (rediss://user:password@)', async (t) => {
  const files = await makeTlsFiles(t)
  const server = await startTlsRedisServer(t, files)
  const prefix = uniquePrefix('acl')
  const admin = await applyRules(t, server.port, readmeRules(t, prefix))
  const wrong = `rediss://someone:wrong-password@127.0.0.1:${server.tlsPort}`
  await runContractFlows(t, {
    ...redisDeployment({ REDIS_URL: wrong, REDIS_CA_FILE: files.caFile, REDIS_USERNAME: USER, REDIS_PASSWORD: PASSWORD }),
    keyPrefix: prefix
  })
  t.same(await refusals(admin), [], 'nothing was refused')
})

t.test('on a Redis Cluster, the README\'s rule set and the two it names for a Cluster', async (t) => {
  const nodes = await startRedisCluster(t)
  const prefix = uniquePrefix('acl')
  const rules = [...readmeRules(t, prefix), '+cluster|slots', '+cluster|info']
  const admins = await Promise.all(nodes.map((node) => applyRules(t, node.port, rules)))
  await runContractFlows(t, {
    ...redisDeployment({ REDIS_CLUSTER_NODES: nodes.map((n) => `${n.host}:${n.port}`).join(','), REDIS_USERNAME: USER, REDIS_PASSWORD: PASSWORD }),
    keyPrefix: prefix
  })
  for (const admin of admins) t.same(await refusals(admin), [], `nothing was refused on node ${admin.options.port}`)
})
