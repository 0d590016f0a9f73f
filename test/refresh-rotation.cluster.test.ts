import t from 'tap'
import { exampleApp, login, me } from './helpers/app.js'
import { refresh } from './helpers/refresh.js'
import { startRedisCluster } from './helpers/redis-server.js'

// The example server's own Cluster client (auto-pipelined, as the README
// recommends): a refresh sends the rotation script and two rate-limit
// counters in one event-loop turn, and their keys live in different slots.
t.test('refresh on a 3-master Redis Cluster: many users, each with concurrent refreshes of one token, converge on one successor', async (t) => {
  const clusterNodes = await startRedisCluster(t)
  // The refresh limit is per token family and per address: high enough for the burst below.
  const app = await exampleApp(t, { clusterNodes, sso: 'off', refreshRateMax: 1000, loginRateMax: 1000 })

  // The example's users, whose tags hash to slots on different masters, three sessions each.
  const users = ['alice', 'bob', 'root']
  const pairs = await Promise.all([...users, ...users, ...users].map((u, i) => login(app, u, { device_id: `d${i}` })))

  const rounds = await Promise.all(pairs.map(async (pair, i) => {
    const burst = 10 + (i % 11) // 10 to 20 concurrent refreshes of the same token
    const answers = await Promise.all(Array.from({ length: burst }, () => refresh(app, pair.refresh_token)))
    return { pair, answers }
  }))

  for (const { pair, answers } of rounds) {
    t.same(answers.map((a) => a.statusCode), answers.map(() => 200), `every concurrent refresh of ${pair.session_id} answered 200`)
    const successors = new Set(answers.map((a) => a.json().refresh_token as string))
    t.equal(successors.size, 1, 'one successor for all of them')
    const next = answers[0]!.json()
    t.equal((await me(app, next.access_token)).statusCode, 200, 'the successor\'s access token works')
    t.equal((await refresh(app, next.refresh_token)).statusCode, 200, 'and the successor rotates in turn')
  }
})
