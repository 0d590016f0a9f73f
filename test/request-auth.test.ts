import t from 'tap'
import { authOrNull } from '../plugins/index.js'
import { kAuth } from '../lib/request-auth.js'
import { bearer, exampleApp, login, pluginApp } from './helpers/app.js'

t.test('request.auth on a route authenticate does not protect is a 500 naming the route', async (t) => {
  const app = await exampleApp(t)
  app.get('/open/:id', async (request) => ({ user: request.auth.userId }))
  const pair = await login(app, 'alice')
  // A token on the request changes nothing: authenticate never ran.
  const res = await app.inject({ method: 'GET', url: '/open/7', headers: bearer(pair.access_token) })
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'AUTH_NOT_AUTHENTICATED')
  t.match(res.json().message, 'request.auth read on GET /open/:id')
  t.match(res.json().message, 'authOrNull(request)')
})

t.test('outside any route (the not-found handler) the error names the URL', async (t) => {
  const app = await pluginApp(t, {}, (app) => { app.setNotFoundHandler(async (request) => ({ user: request.auth.userId })) })
  const res = await app.inject({ method: 'GET', url: '/nowhere' })
  t.equal(res.statusCode, 500)
  t.match(res.json(), { code: 'AUTH_NOT_AUTHENTICATED', message: /^request\.auth read on GET \/nowhere,/ })
})

t.test('authOrNull: null where authenticate did not pass, the caller where it did (the same object request.auth gives)', async (t) => {
  const app = await exampleApp(t)
  const seen: Array<{ url: string, auth: unknown }> = []
  app.addHook('onResponse', async (request) => { seen.push({ url: request.url, auth: authOrNull(request) }) })
  app.get('/maybe', async (request) => ({ user: authOrNull(request)?.userId ?? null }))
  app.get('/mine', { onRequest: app.authenticate }, async (request) => ({ same: request.auth === authOrNull(request), user: request.auth.userId }))
  const pair = await login(app, 'alice')

  t.same((await app.inject({ method: 'GET', url: '/maybe', headers: bearer(pair.access_token) })).json(), { user: null })
  t.same((await app.inject({ method: 'GET', url: '/mine', headers: bearer(pair.access_token) })).json(), { same: true, user: 'alice' })
  // A refused token leaves no caller behind for the hooks that follow.
  t.equal((await app.inject({ method: 'GET', url: '/mine', headers: bearer('not-a-token') })).statusCode, 401)

  const byUrl = (url: string) => seen.filter((s) => s.url === url).map((s) => s.auth === null ? null : (s.auth as { userId: string }).userId)
  t.same(byUrl('/maybe'), [null])
  t.same(byUrl('/mine'), ['alice', null])
})

t.test('the caller slot is declared on every request (one request shape), null until authenticate passes', async (t) => {
  const app = await exampleApp(t)
  app.get('/shape', async (request) => ({ own: Object.hasOwn(request, kAuth), value: (request as unknown as Record<symbol, unknown>)[kAuth] }))
  t.same((await app.inject({ method: 'GET', url: '/shape' })).json(), { own: true, value: null })
})
