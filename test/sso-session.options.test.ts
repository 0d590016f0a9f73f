import t from 'tap'
import ssoSession, { parsePolicy } from '../plugins/sso-session/index.js'
import { bearer, pluginApp } from './helpers/app.js'

t.test('policies parse from strings and objects; anything else is refused at register time', async (t) => {
  t.same(parsePolicy('single'), { mode: 'single' })
  t.same(parsePolicy('device-type'), { mode: 'device-type' })
  t.same(parsePolicy('off'), { mode: 'off' })
  t.same(parsePolicy('max:5'), { mode: 'max', max: 5 })
  t.same(parsePolicy({ mode: 'max', max: 2 }), { mode: 'max', max: 2 })
  t.same(parsePolicy({ mode: 'single' }), { mode: 'single' })
  for (const bad of ['max:0', 'max:1001', 'max:x', 'many', { mode: 'max', max: 1.5 }, { mode: 'nope' }, 7, null]) {
    t.throws(() => parsePolicy(bad as never), /sso-session: policy/, JSON.stringify(bad))
  }
  await t.rejects(pluginApp(t, {}, (app) => { app.register(ssoSession, { policy: 'max:0' as never }) }), /max must be an integer from 1 to 1000/)
  await t.rejects(pluginApp(t, {}, (app) => { app.register(ssoSession, { onReplaced: 'x' as never }) }), /onReplaced must be a function/)
  await t.rejects(pluginApp(t, {}, (app) => { app.register(ssoSession, { policyFor: 1 as never }) }), /policyFor must be a function/)
})

t.test('policyFor overrides the policy per login (admins exempt), and an explicit policy beats both', async (t) => {
  const seen: unknown[] = []
  const app = await pluginApp(t, {}, (app) => {
    app.register(ssoSession, {
      policy: 'single',
      policyFor: ({ userId, claims, device }) => {
        seen.push({ userId, claims, device })
        return (claims.roles as string[] | undefined)?.includes('admin') ? 'off' : undefined
      }
    })
    app.get('/p', { onRequest: app.authenticate }, async () => ({ ok: true }))
  })
  const status = async (token: string) => (await app.inject({ url: '/p', headers: bearer(token) })).statusCode

  const admin1 = await app.tokens.openSession({ userId: 'root', claims: { roles: ['admin'] }, device: { id: 'x', type: 'web' } })
  const admin2 = await app.tokens.openSession({ userId: 'root', claims: { roles: ['admin'] } })
  t.equal(await status(admin1.tokens.access_token), 200, 'admins keep every session')
  t.equal(await status(admin2.tokens.access_token), 200)
  t.same(seen[0], { userId: 'root', claims: { roles: ['admin'] }, device: { id: 'x', type: 'web', name: undefined } })

  const user1 = await app.tokens.openSession({ userId: 'u', claims: { roles: ['user'] } })
  const user2 = await app.tokens.openSession({ userId: 'u', claims: { roles: ['user'] } })
  t.equal(await status(user1.tokens.access_token), 401, 'others get the app policy')
  t.same(user2.replaced.map((r) => r.sessionId), [user1.sessionId])

  const user3 = await app.tokens.openSession({ userId: 'u', policy: { mode: 'off' } })
  t.equal(await status(user2.tokens.access_token), 200, 'explicit policy on the call wins')
  t.equal(await status(user3.tokens.access_token), 200)
})

t.test('a policyFor answer that is not a policy fails that login', async (t) => {
  const app = await pluginApp(t, {}, (app) => { app.register(ssoSession, { policyFor: () => 'sometimes' as never }) })
  await t.rejects(app.tokens.openSession({ userId: 'u' }), /policyFor\(\) result must be/)
})
