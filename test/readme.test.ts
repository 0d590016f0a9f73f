import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import t from 'tap'
import { cleanupPrefix } from './helpers/app.js'
import { REDIS_URL, uniquePrefix } from './helpers/env.js'
import { freePort } from './helpers/redis-server.js'
import { spawnTsServer } from './helpers/spawn.js'

t.test('the README quick start runs as written', async (t) => {
  const readme = readFileSync('README.md', 'utf8')
  const section = readme.slice(readme.indexOf('## Quick start'))
  const snippet = /```ts\n([\s\S]*?)```/.exec(section)![1]
  t.match(snippet, "from 'fastify-jwt-sessions'")
  // The package as users import it, resolved to this checkout's sources.
  // And its keys under a prefix of the test's own (the snippet uses the default 'auth').
  const port = await freePort()
  const prefix = uniquePrefix('readme')
  cleanupPrefix(t, prefix)
  t.match(snippet, 'await app.register(tokenLifecycle, { jwt: ')
  const dir = resolve('.tap', 'readme')
  mkdirSync(dir, { recursive: true })
  const file = resolve(dir, 'quickstart.ts')
  writeFileSync(file, snippet
    .replace("from 'fastify-jwt-sessions'", `from '${resolve('plugins/index.ts')}'`)
    .replace('await app.register(tokenLifecycle, { jwt: ', `await app.register(tokenLifecycle, { keyPrefix: '${prefix}', jwt: `))

  const { output } = await spawnTsServer(t, file, { PORT: String(port), REDIS_URL, AUTH_JWT_SECRET: 'readme-secret-readme-secret-readme-secret' }, 'Server listening')
  t.match(output(), 'Server listening')

  const base = `http://127.0.0.1:${port}`
  const post = (path: string, body: unknown) => fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const login = await post('/auth/login', { username: 'alice', password: 'alice-pass' })
  t.equal(login.status, 200)
  const pair = await login.json() as { access_token: string, refresh_token: string }
  const me = await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${pair.access_token}` } })
  t.same(await me.json(), { user: 'alice', roles: ['user'] })
  const refreshed = await post('/auth/refresh', { refresh_token: pair.refresh_token })
  t.equal(refreshed.status, 200)
  const logout = await fetch(`${base}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${pair.access_token}` } })
  t.equal(logout.status, 204)
  t.equal((await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${pair.access_token}` } })).status, 401)
})
