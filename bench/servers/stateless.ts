/**
 * Variant "stateless": @fastify/jwt HS256 verify as its README shows it
 * (`request.jwtVerify()`), nothing else: fast, but nothing is revocable.
 * With the argument `cache`, fast-jwt's verified-token cache is on (10,000
 * entries, as in this project): the fairest stateless ceiling.
 */
import fastifyJwt from '@fastify/jwt'
import Fastify from 'fastify'
import { randomBytes } from 'node:crypto'
import { BENCH_SECRET, meBody, POOL_SIZE, serve, TOKEN_TTL_S } from './common.js'

const app = Fastify({ logger: false })
await app.register(fastifyJwt, { secret: BENCH_SECRET, sign: { algorithm: 'HS256', expiresIn: TOKEN_TTL_S }, verify: { algorithms: ['HS256'], ...(process.argv[2] === 'cache' ? { cache: 10_000 } : {}) } })
app.get('/api/me', {
  onRequest: async (request) => { await request.jwtVerify() }
}, async (request) => {
  const u = request.user as { sub: string, sid: string, roles: string[] }
  return meBody(u.sub, u.sid, u.roles)
})
await serve(app, async () => Array.from({ length: POOL_SIZE }, (_, i) =>
  app.jwt.sign({ sub: `bench-${i}`, sid: randomBytes(12).toString('base64url'), jti: randomBytes(12).toString('base64url'), cv: 1, roles: ['user'] })))
