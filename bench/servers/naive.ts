/**
 * Variant "naive": what the seeds did. Verify the JWT, then one awaited Redis
 * call per check: is the session live (HGETALL), is the claims version current
 * (GET), is the token's jti on the revocation list (SISMEMBER). Three round
 * trips per request, a plain ioredis client, no scripts.
 */
import fastifyJwt from '@fastify/jwt'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { randomBytes } from 'node:crypto'
import { BENCH_SECRET, inBatches, meBody, POOL_SIZE, REDIS_URL, serve, TOKEN_TTL_S } from './common.js'

const redis = new Redis(REDIS_URL)
const app = Fastify({ logger: false })
app.addHook('onClose', async () => { await redis.quit() })
await app.register(fastifyJwt, { secret: BENCH_SECRET, sign: { algorithm: 'HS256', expiresIn: TOKEN_TTL_S }, verify: { algorithms: ['HS256'] } })

interface Claims { sub: string, sid: string, jti: string, cv: number, roles: string[] }

app.get('/api/me', {
  onRequest: async (request, reply) => {
    const c = await request.jwtVerify<Claims>()
    const session = await redis.hgetall(`naive:sess:${c.sid}`)
    if (!session.user || session.revoked === '1' || Number(session.expires) <= Date.now()) return reply.code(401).send({ code: 'AUTH_SESSION_REVOKED' })
    const cv = await redis.get(`naive:cv:${c.sub}`)
    if (cv !== String(c.cv)) return reply.code(401).send({ code: 'AUTH_TOKEN_STALE' })
    if (await redis.sismember('naive:revoked', c.jti) === 1) return reply.code(401).send({ code: 'AUTH_SESSION_REVOKED' })
  }
}, async (request) => {
  const u = request.user as Claims
  return meBody(u.sub, u.sid, u.roles)
})

await serve(app, async () => inBatches(POOL_SIZE, 50, async (i) => {
  const sub = `bench-${i}`
  const sid = randomBytes(12).toString('base64url')
  const now = Date.now()
  await redis.hset(`naive:sess:${sid}`, { user: sub, device: 'phone-1', created: now, seen: now, expires: now + 86_400_000 })
  await redis.expire(`naive:sess:${sid}`, 86_400)
  await redis.set(`naive:cv:${sub}`, '1', 'EX', 86_400)
  return app.jwt.sign({ sub, sid, jti: randomBytes(12).toString('base64url'), cv: 1, roles: ['user'] })
}))
