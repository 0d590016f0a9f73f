import { Redis } from 'ioredis'
import t from 'tap'
import { REDIS_URL, pluginApp } from './helpers/app.js'

t.test('openSession checks a policy override before anything reaches Redis: a TypeError, the rule of sso-session\'s policies', async (t) => {
  const app = await pluginApp(t)
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  for (const policy of [{ mode: 'max', max: 0 }, { mode: 'max', max: 1.5 }, { mode: 'max', max: 1001 }, { mode: 'max' }, { mode: 'all' }, 'max:0', 42]) {
    await t.rejects(app.tokens.openSession({ userId: 'u1', policy: policy as never }), { name: 'TypeError', message: /^openSession: policy / }, JSON.stringify(policy))
  }
  t.equal(await redis.exists(app.tokens.keys.sessions('u1')), 0, 'no session was opened')
  const kept = await app.tokens.openSession({ userId: 'u1', policy: { mode: 'max', max: 1 } })
  const replacing = await app.tokens.openSession({ userId: 'u1', policy: { mode: 'max', max: 1 } })
  t.same(replacing.replaced.map((s) => s.sessionId), [kept.sessionId], 'a valid override applies')
  t.same((await app.tokens.openSession({ userId: 'u1', policy: 'off' as never })).replaced, [], 'in any form sso-session takes')
  t.same((await app.tokens.openSession({ userId: 'u1', policy: null as never })).replaced, [], 'null: no override (the default policy, off)')
})
