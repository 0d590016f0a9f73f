import t from 'tap'
import { Redis } from 'ioredis'
import { defineScript } from '../lib/redis.js'
import { startRedisServer } from './helpers/redis-server.js'

t.test('a script call on the shared client: EVALSHA, EVAL once when Redis does not know the script, errors as they are', async (t) => {
  const server = await startRedisServer(t)
  const client = new Redis(server.url, { keyPrefix: 'p:' })
  t.teardown(() => client.disconnect())
  const incr = defineScript(client, { name: 'incr_by', lua: "return redis.call('INCRBY', KEYS[1], ARGV[1])" })

  t.equal(await incr(1, 'n', 2), 2, 'a fresh server answers NOSCRIPT first: the call is made again with EVAL')
  t.equal(await incr(1, 'n', 3), 5, 'then EVALSHA finds it')
  t.equal(await client.get('n'), '5', 'the key got the client\'s key prefix (read back through the same prefix)')
  const raw = new Redis(server.url)
  t.teardown(() => raw.disconnect())
  t.equal(await raw.get('p:n'), '5', 'stored under the prefix')

  await client.script('FLUSH')
  t.equal(await incr(1, 'n', 1), 6, 'after SCRIPT FLUSH, EVAL once more')
  await t.rejects(incr(1, 'n', 'not a number'), /ERR/, 'a script\'s own error is the error, not retried as EVAL')
})
