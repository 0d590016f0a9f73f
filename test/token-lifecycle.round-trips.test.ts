import t from 'tap'
import { bearer, exampleApp, login, me, recordCommands } from './helpers/app.js'

t.test('an authenticated request costs exactly one Redis command: the verify script', async (t) => {
  const app = await exampleApp(t) // token-lifecycle + sso-session + replay-guard registered
  const pair = await login(app, 'alice', { device_type: 'phone' })
  t.equal((await me(app, pair.access_token)).statusCode, 200, 'warm-up: the script is cached server-side')
  const sent = recordCommands(t, app)

  for (let i = 0; i < 10; i++) t.equal((await me(app, pair.access_token)).statusCode, 200)
  t.same(sent, Array(10).fill('evalsha'), 'ten requests, ten EVALSHA, nothing else')

  sent.length = 0
  const guarded = await app.inject({ method: 'POST', url: '/api/transfer', headers: bearer(pair.access_token), payload: { amount: 1 } })
  t.equal(guarded.statusCode, 200)
  t.same(sent, ['evalsha'], 'a replay-guarded request is still one call')

  sent.length = 0
  await login(app, 'alice')
  t.same(sent, ['evalsha', 'evalsha'], 'login: the rate-limit counter, then session opening with SSO eviction in one call')
  sent.length = 0
  const denied = await me(app, pair.access_token)
  t.equal(denied.json().code, 'AUTH_SESSION_REPLACED')
  t.same(sent, ['evalsha'], 'a refused request costs the same single call')

  sent.length = 0
  t.equal((await me(app, 'garbage')).statusCode, 401)
  t.same(sent, [], 'a token that fails locally never reaches Redis')
})
