/**
 * The sources of a fresh TypeScript app that installed the packed package
 * (test/packed-package.test.ts writes them into a temporary directory). It is
 * what a new user would write: strict TypeScript with skipLibCheck off, its
 * own @fastify/rate-limit (global, a small max, one route with its own limit)
 * and its own @fastify/jwt with routes of its own, and our routes under
 * /api/auth. Kept as text: in the repository's own tsconfig the name
 * 'fastify-jwt-sessions' would not resolve to the packed build.
 *
 * ORDER picks how the app is put together:
 * - `without-sessions`: only the host's own plugins and routes, the baseline;
 * - `host-first`: the host's plugins, then ours, then the host's routes;
 * - `host-last`: ours first, then the host's plugins and routes.
 */

export const appPackageJson = {
  name: 'fresh-host-app',
  private: true,
  type: 'module'
}

export const appTsconfig = {
  compilerOptions: {
    target: 'ES2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    strict: true,
    skipLibCheck: false,
    types: ['node'],
    rootDir: 'src',
    outDir: 'build'
  },
  include: ['src']
}

export const serverSource = `import fastifyJwt from '@fastify/jwt'
import fastifyRateLimit from '@fastify/rate-limit'
import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { authRoutes, refreshRotation, tokenLifecycle } from 'fastify-jwt-sessions'

// Our claims, typed as the README says: exact types, not optional ones.
declare module 'fastify-jwt-sessions' {
  interface SessionClaims { roles: string[] }
}

// The host's own @fastify/jwt, typed as @fastify/jwt documents.
declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { name: string }
    user: { name: string }
  }
}

type Order = 'without-sessions' | 'host-first' | 'host-last'
const order = process.env.ORDER as Order
const users = new Map([['alice', { password: 'alice-pass', roles: ['user'] }]])

async function hostPlugins (app: FastifyInstance): Promise<void> {
  // Every route of the app limited, each route counted on its own.
  await app.register(fastifyRateLimit, {
    global: true,
    max: 3,
    timeWindow: '1 minute',
    keyGenerator: (request) => request.ip + ' ' + String(request.routeOptions.url)
  })
  await app.register(fastifyJwt, { secret: 'the host app secret, its own, 32+ bytes' })
}

async function sessionPlugins (app: FastifyInstance): Promise<void> {
  await app.register(fastifyRedis, { url: process.env.REDIS_URL, enableOfflineQueue: false })
  await app.register(tokenLifecycle, {
    keyPrefix: process.env.KEY_PREFIX,
    jwt: { secret: 'the sessions secret, not the host one' }
  })
  await app.register(refreshRotation, {
    route: '/api/auth/refresh',
    loadClaims: async (userId) => {
      const user = users.get(userId)
      return user ? { roles: user.roles } : null
    }
  })
  await app.register(authRoutes, {
    prefix: '/api/auth',
    verifyCredentials: async (username, password) => {
      const user = users.get(username)
      return user && user.password === password ? { userId: username, claims: { roles: user.roles } } : null
    }
  })
  app.get('/api/me', { onRequest: app.authenticate }, async (request) => {
    const roles: string[] = request.auth.claims.roles
    return { user_id: request.auth.userId, roles }
  })
}

function hostRoutes (app: FastifyInstance): void {
  app.get('/app/ping', async () => ({ pong: true }))
  app.post('/app/strict', { config: { rateLimit: { max: 2, timeWindow: '1 minute' } } }, async () => ({ ok: true }))
  app.get('/app/token', async () => ({ token: app.jwt.sign({ name: 'host-user' }) }))
  app.get('/app/whoami', async (request) => {
    await request.jwtVerify()
    return { name: request.user.name }
  })
  // What the host's own plugins decorate, and names ours once leaked.
  app.get('/app/decorators', async () => ({
    instance: ['jwt', 'rateLimit'].filter((name) => app.hasDecorator(name)),
    request: ['user', 'jwtVerify', 'jwtDecode', 'sessionsJwtVerify'].filter((name) => app.hasRequestDecorator(name)),
    reply: ['jwtSign', 'sessionsJwtSign'].filter((name) => app.hasReplyDecorator(name)),
    jwt: Object.keys(app.jwt).sort()
  }))
}

const app = Fastify()
// Paths only: no URL here carries a token.
app.addHook('onResponse', async (request, reply) => {
  console.log('request ' + request.method + ' ' + request.url + ' ' + reply.statusCode)
})
if (order === 'host-first') {
  await hostPlugins(app)
  await sessionPlugins(app)
} else if (order === 'host-last') {
  await sessionPlugins(app)
  await hostPlugins(app)
} else {
  await hostPlugins(app)
}
hostRoutes(app)
const address = await app.listen({ host: '127.0.0.1', port: 0 })
console.log('listening ' + address)
`

export const clientSource = `import { createAuthClient } from 'fastify-jwt-sessions/client'

const origin = process.argv[2]
// The ready-made routes are mounted under /api/auth: the client is told so.
const client = createAuthClient({ baseUrl: origin, authPrefix: '/api/auth' })
const me = async () => {
  const response = await client.fetch('/api/me')
  return { status: response.status, body: await response.json() as unknown }
}

const session = await client.login({ username: 'alice', password: 'alice-pass' })
const first = await client.getAccessToken()
const meBefore = await me()
const refreshed = await client.refresh()
const second = await client.getAccessToken()
const meAfter = await me()
await client.logout()
// The ended session's last access token, presented by hand (never printed).
const afterLogout = await fetch(origin + '/api/me', { headers: { authorization: 'Bearer ' + String(second) } })
console.log('result ' + JSON.stringify({
  userId: session.userId,
  meBefore,
  refreshed,
  rotated: first !== null && second !== null && first !== second,
  meAfter,
  afterLogout: afterLogout.status,
  sessionAfterLogout: await client.session()
}))
client.close()
`

/**
 * The root of a second program, on its own: an app without @fastify/jwt.
 * @fastify/jwt's declarations happen to put `FastifyReply` in scope of every
 * `declare module 'fastify'`, so in the app above a declaration of ours that
 * names it without importing it compiles; here it does not. It imports every
 * entry point of the package, and checks that `fastify.authenticate`'s reply
 * is a real type, not `any`.
 */
export function plainSource (entryPoints: string[]): string {
  return `${entryPoints.map((name, i) => `import * as entry${i} from '${name}'`).join('\n')}
import Fastify from 'fastify'

type IsAny<T> = 0 extends 1 & T ? true : false
const app = Fastify()
const replyIsTyped: IsAny<Parameters<typeof app.authenticate>[1]> = false
export { replyIsTyped, ${entryPoints.map((_, i) => `entry${i}`).join(', ')} }
`
}

