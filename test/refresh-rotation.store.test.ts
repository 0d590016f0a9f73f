import t from 'tap'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { Command } from 'ioredis'
import { REDIS_URL, exampleApp, login } from './helpers/app.js'
import { customApp, refresh, scanPrefix } from './helpers/refresh.js'

t.test('Redis holds no refresh token nor its secret part, and every key has a TTL', async (t) => {
  const app = await exampleApp(t, { refreshGrace: 0.2 })
  const secrets: string[] = []
  const remember = (token: string) => {
    const nonce = token.split('.')[4]
    secrets.push(token, nonce, Buffer.from(nonce, 'base64url').toString('hex'), Buffer.from(nonce, 'base64url').toString('base64'), token.split('.')[5])
  }
  const pair = await login(app, 'alice')
  remember(pair.refresh_token)
  let token = pair.refresh_token
  for (let i = 0; i < 3; i++) {
    const next = (await refresh(app, token)).json().refresh_token
    remember(next)
    token = next
  }
  await refresh(app, pair.refresh_token) // a grace hit or a reuse: both leave nothing behind
  await login(app, 'bob')
  const keys = await scanPrefix(app.tokens.keys.prefix)
  t.ok(keys.length >= 3)
  const raw = await new Redis(REDIS_URL)
  t.teardown(() => raw.quit())
  for (const k of keys) {
    t.ok(k.ttl > 0, `${k.key} has a TTL (${k.ttl})`)
    const bytes = k.type === 'hash' ? Object.values(await raw.hgetallBuffer(k.key)) : []
    for (const secret of secrets) {
      t.notOk(k.key.includes(secret), 'not in the key name')
      for (const v of k.values) t.notOk(v.includes(secret), `${k.key} holds no secret`)
      for (const b of bytes) t.notOk(b.includes(Buffer.from(secret, 'base64url')), `${k.key} holds no secret bytes`)
    }
  }
})

t.test('one refresh is one session script call (plus the two rate-limit counters)', async (t) => {
  const app = await exampleApp(t)
  const prefix = app.tokens.keys.prefix
  const pair = await login(app, 'alice')
  const r2 = (await refresh(app, pair.refresh_token)).json().refresh_token
  // Every command the app's shared client sends, with its keys (a refresh does
  // not use the script lane, which only carries session checks).
  const seen: string[] = []
  const client = app.tokens.redis as unknown as { sendCommand: (command: Command) => unknown }
  const original = client.sendCommand
  client.sendCommand = function (this: unknown, command: Command) {
    const args = command.args.map(String)
    const keys = command.name === 'evalsha' || command.name === 'eval' ? args.slice(2, 2 + Number(args[1])) : args.slice(0, 1)
    seen.push(`${command.name} ${keys.map((k) => k.replace(prefix, '')).join(' ')}`)
    return original.call(this, command)
  }
  t.teardown(() => { client.sendCommand = original })
  for (const [what, token] of [['rotation', r2], ['grace hit', pair.refresh_token]]) {
    seen.length = 0
    const res = await refresh(app, token)
    t.equal(res.statusCode, 200, what)
    const session = seen.filter((c) => c.includes(':{'))
    t.equal(session.length, 1, `${what}: one call touches the session: ${seen.join(', ')}`)
    t.match(session[0], /^evalsha :\{alice\}:s$/)
    t.equal(seen.filter((c) => c.includes(':rl:')).length, 2, `${what}: two rate-limit counters`)
    t.equal(seen.length, 3, `${what}: nothing else`)
  }
})

async function freePort (): Promise<number> {
  return await new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** A throwaway redis-server of the test's own, to kill. */
async function ownRedis (t: { teardown: (fn: () => unknown) => void }) {
  const port = await freePort()
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  t.teardown(() => { server.kill('SIGKILL') })
  const url = `redis://127.0.0.1:${port}`
  for (let i = 0; i < 50; i++) {
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null })
    probe.on('error', () => {})
    const up = await probe.connect().then(() => true, () => false)
    probe.disconnect()
    if (up) break
    await sleep(100)
  }
  return { url, kill: () => server.kill('SIGKILL') }
}

t.test('a dead Redis answers 503 AUTH_STORE_UNAVAILABLE at refresh and login, never a 500', async (t) => {
  const { url, kill } = await ownRedis(t)
  const { app } = await customApp(t, { redisUrl: url })
  const pair = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' } })).json()
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 200)
  kill()
  await sleep(300)
  const res = await refresh(app, 'garbage')
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'wrong' } })
  t.equal(login.statusCode, 503, 'no password check without the login rate limit')
  t.equal(login.json().code, 'AUTH_STORE_UNAVAILABLE')
})

t.test('a dead Redis answers 503 at the rotation itself when rate limits are off', async (t) => {
  const { url, kill } = await ownRedis(t)
  const { app } = await customApp(t, { redisUrl: url, refresh: { refreshRateLimit: false }, routes: { loginRateLimit: false } })
  const pair = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'bob', password: 'bob-pass' } })).json()
  kill()
  await sleep(300)
  const res = await refresh(app, pair.refresh_token)
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'AUTH_STORE_UNAVAILABLE')
})
